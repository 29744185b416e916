"""events/*.json through the real Lambda handlers against moto: submit -> infer (SQS sample) -> poll, as `sam local invoke` would."""
from __future__ import annotations

import json
import subprocess
import textwrap

import pytest

from tests.integration.conftest import REPO, python_with

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCRIPT = textwrap.dedent("""
    import importlib.util, json, sys
    from pathlib import Path

    def handler(function):
        spec = importlib.util.spec_from_file_location(f"{function}_app", Path("functions") / function / "app.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.lambda_handler

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "sample", 512, "req-1"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:sample"

    def event(name, **replace):
        text = Path("events", name).read_text()
        for old, new in replace.items():
            text = text.replace(old, new)
        return json.loads(text)

    submit, poll, infer = handler("submit"), handler("poll"), handler("infer")
    out = {}
    created = submit(event("submit_png.json"), Context())
    out["submit"] = created["statusCode"]
    job = json.loads(created["body"])
    out["submit_multipart"] = submit(event("submit_multipart.json"), Context())["statusCode"]
    sample_id = json.loads(event("infer_sqs.json")["Records"][0]["body"])["job_id"]
    sqs = event("infer_sqs.json")
    body = json.loads(sqs["Records"][0]["body"])
    from cxr_core.bootstrap import runtime
    body.update(job_id=job["id"], model_id=runtime().jobs.get_job(job["id"]).model_id)
    sqs["Records"][0]["body"] = json.dumps(body)
    out["infer"] = infer(sqs, Context())
    got = poll(event("poll_get_job.json", **{sample_id: job["id"]}), Context())
    out["poll_status"], out["job_status"] = got["statusCode"], json.loads(got["body"])["status"]
    result = poll(event("poll_get_result.json", **{sample_id: job["id"]}), Context())
    out["result_status"], out["result_labels"] = result["statusCode"], len(json.loads(result["body"]).get("output", {}))
    out["health"] = poll(event("ops_health.json"), Context())["statusCode"]
    ready = poll(event("ops_ready.json"), Context())
    out["ready"] = [ready["statusCode"], json.loads(ready["body"])]
    out["recovery"] = infer(event("infer_recovery_schedule.json"), Context())
    print("RESULT " + json.dumps(out))
""")


def test_sample_events_drive_the_real_handlers_end_to_end(stack_env):
    command, env = python_with({**stack_env, "AUTH_MODE": "none", "POWERTOOLS_METRICS_DISABLED": "true",
                                "POWERTOOLS_TRACE_DISABLED": "true"})
    done = subprocess.run(command + ["-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["submit"] in (200, 201)
    assert out["submit_multipart"] == 200  # the same image again: the job just created (or its cached result)
    assert out["infer"] == {"batchItemFailures": []}
    assert (out["poll_status"], out["job_status"]) == (200, "COMPLETED")
    assert (out["result_status"], out["result_labels"]) == (200, 18)
    assert out["health"] == 200
    assert out["ready"][0] == 200 and out["ready"][1]["status"] == "ready", out["ready"]
    assert set(out["recovery"]) == {"requeued", "failed"}
