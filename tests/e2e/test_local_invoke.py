"""`python -m cxr_local invoke` / `env-json` against the running local stack: every event in events/ through the
function template.yaml routes it to, each in a fresh process, as `sam local invoke` would (without Docker)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import REPO, wait_for_terminal_status

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
EVENTS = REPO / "events"
FUNCTION_OF_PREFIX = {"submit": "SubmitFunction", "poll": "PollFunction", "ops": "PollFunction",
                      "infer": "InferFunction"}
PARALLEL = 2
SAMPLE_JOB_ID = "3f6c1c8e-2d4b-4f7e-9a51-0c8f2b7d6e14"  # events/generate.py's JOB_ID


def ready_file(stack) -> Path:
    return stack.log_path.parent / "ready.json"


def start_invoke(stack, function: str, event: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cxr_local", "invoke", function, "-e", str(event),
                             "--ready-file", str(ready_file(stack)), *extra],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> tuple[int, dict, str]:
    out, err = process.communicate(timeout=240)
    return process.returncode, json.loads(out) if out.strip() else {}, err


def body(response: dict) -> dict:
    return json.loads(response["body"])


def test_every_event_runs_through_its_function_against_the_stack(local_stack, tmp_path):
    rc, created, err = finish(start_invoke(local_stack, "SubmitFunction", EVENTS / "submit_png.json"))
    assert rc == 0 and created["statusCode"] in (200, 201), (created, err[-2000:])  # the events' key is the stack's
    assert "Memory Size: 1024 MB" in err and "REPORT RequestId" in err  # SubmitFunction's MemorySize, sam's report
    job_id = body(created)["id"]
    with requests.Session() as http:
        http.headers.update(local_stack.auth_headers)
        wait_for_terminal_status(http, local_stack.url, job_id)  # the stack's own worker ran it

    calls = {}
    for path in sorted(EVENTS.glob("*.json")):
        if path.name not in ("submit_png.json", "submit_delete_job.json"):  # the erasure runs last, below
            event = tmp_path / path.name
            event.write_text(path.read_text().replace(SAMPLE_JOB_ID, job_id))
            calls[path.name] = (FUNCTION_OF_PREFIX[path.name.split("_")[0]], event)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"Records": [{"messageId": "m-1"}]}))  # no body: the handler raises
    calls["broken"] = ("InferFunction", broken)
    results, names = {}, list(calls)
    for start in range(0, len(names), PARALLEL):  # two at a time: more would starve each other past the timeouts
        running = {name: start_invoke(local_stack, *calls[name]) for name in names[start:start + PARALLEL]}
        results.update({name: finish(process) for name, process in running.items()})

    for name, (rc, response, err) in results.items():
        if name != "broken":
            assert rc == 0, (name, response, err[-2000:])
    ok = {name: response for name, (_, response, _) in results.items()}
    assert ok["ops_health.json"]["statusCode"] == 200
    assert ok["ops_metrics.json"]["statusCode"] == 200
    assert ok["ops_dlq.json"]["statusCode"] == 200
    assert ok["poll_get_job.json"]["statusCode"] == 200 and body(ok["poll_get_job.json"])["status"] == "COMPLETED"
    result = body(ok["poll_get_result.json"])
    assert ok["poll_get_result.json"]["statusCode"] == 200 and len(result["output"]) == 18
    multipart = ok["submit_multipart.json"]
    assert multipart["statusCode"] == 200 and body(multipart)["cached"] is True  # the same image: a cache hit
    upload = ok["submit_upload.json"]
    assert upload["statusCode"] == 201 and body(upload)["method"] == "PUT"
    assert local_stack.moto_endpoint in body(upload)["url"]  # a presigned URL on the stack's endpoint
    assert ok["infer_sqs.json"] == {"batchItemFailures": []}  # already done by the stack's worker: acknowledged
    assert set(ok["infer_recovery_schedule.json"]) == {"requeued", "failed"}
    rc, error, _ = results["broken"]
    assert rc == 1 and error["errorType"] == "KeyError" and error["stackTrace"]
    drawn = ok["poll_get_heatmap.json"]
    assert drawn["statusCode"] == 200 and drawn["isBase64Encoded"], drawn  # a PNG over the stored model input
    models = ok["submit_list_models.json"]
    assert models["statusCode"] == 200 and body(models)["default"], models
    listed = ok["poll_list_jobs.json"]
    assert listed["statusCode"] == 200 and job_id in {job["id"] for job in body(listed)["jobs"]}
    erase = tmp_path / "submit_delete_job.json"
    erase.write_text((EVENTS / "submit_delete_job.json").read_text().replace(SAMPLE_JOB_ID, job_id))
    rc, erased, err = finish(start_invoke(local_stack, "SubmitFunction", erase))
    assert rc == 0 and erased["statusCode"] == 204, (erased, err[-2000:])


def test_env_json_is_what_the_stack_wrote_and_invoke_applies_it_as_sam_does(local_stack, tmp_path):
    written = json.loads((ready_file(local_stack).with_name("env.json")).read_text())
    printed = subprocess.run([sys.executable, "-m", "cxr_local", "env-json", "--ready-file",
                              str(ready_file(local_stack))], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert printed.returncode == 0 and json.loads(printed.stdout) == written
    port = local_stack.moto_endpoint.rsplit(":", 1)[1]
    assert written["Parameters"]["AWS_ENDPOINT_URL"] == f"http://host.docker.internal:{port}"
    assert written["PollFunction"]["JOBS_TABLE"] == "cxr-local-jobs"
    assert written["SubmitFunction"]["QUEUE_URL"] == f"http://host.docker.internal:{port}/123456789012/cxr-local-jobs"
    assert "cannot reach it" in printed.stderr  # loopback-only stack: the --host 0.0.0.0 advice

    # reachable here: the same file for a "Docker host" of 127.0.0.1, with one override SAM would apply
    env_json = tmp_path / "env.json"
    done = subprocess.run([sys.executable, "-m", "cxr_local", "env-json", "--ready-file", str(ready_file(local_stack)),
                           "--docker-host", "127.0.0.1", "-o", str(env_json)], cwd=REPO, timeout=120)
    assert done.returncode == 0
    document = json.loads(env_json.read_text())
    document["PollFunction"]["JOBS_TABLE"] = "cxr-no-such-table"
    document["Parameters"]["NOT_DECLARED"] = "ignored, as by sam"
    env_json.write_text(json.dumps(document))
    rc, response, err = finish(start_invoke(local_stack, "PollFunction", EVENTS / "poll_get_job.json",
                                            "--env-vars", str(env_json)))
    assert rc == 0 and response["statusCode"] >= 500, (response, err[-2000:])  # the override reached the handler
    rc, response, _ = finish(start_invoke(local_stack, "PollFunction", EVENTS / "poll_get_job.json"))
    assert rc == 0 and response["statusCode"] == 404  # without it: the template's table, no such job
