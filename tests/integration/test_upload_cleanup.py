"""Every answer to a presigned upload's job, refusals included, deletes the uploaded object (PHI with it)."""
from __future__ import annotations

import json
import subprocess
import textwrap

import pytest

from tests.integration.conftest import REPO, python_with

pytestmark = pytest.mark.integration

SCRIPT = textwrap.dedent("""
    import base64, importlib.util, io, json, os, sys
    from pathlib import Path
    import pydicom, requests
    from tests.images import XRAYS

    spec = importlib.util.spec_from_file_location("submit_app", Path("functions/submit/app.py"))
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    from cxr_core.bootstrap import runtime

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "submit", 512, "req-1"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:submit"

    template = json.loads(Path("events/submit_png.json").read_text())

    def call(path, body):
        event = json.loads(json.dumps(template))
        event.update(body=json.dumps(body), isBase64Encoded=False, routeKey=f"POST {path}", rawPath=f"/dev{path}")
        event["requestContext"]["http"]["path"] = f"/dev{path}"
        event["headers"]["content-type"] = "application/json"
        return app.lambda_handler(event, Context())

    ds = pydicom.dcmread(XRAYS / "siim_pneumothorax_sample.dcm")
    ds.PatientName, ds.PatientID = "Doe^Jane", "PHI-123456"
    buffer = io.BytesIO()
    ds.save_as(buffer)
    phi = buffer.getvalue()
    cases = {"empty": b"", "too_large": phi + b"\\0" * 200_000, "not_an_image": b"PatientName=Doe^Jane " * 50,
             "truncated": phi[: len(phi) // 2], "valid": phi}
    answers = {}
    for case in sys.argv[1].split(","):
        granted = call("/v1/uploads", {"content_type": "application/dicom", "size": len(cases[case])})
        grant = json.loads(granted["body"])
        if granted["statusCode"] != 201:  # an empty or oversize upload is refused at the grant: nothing stored
            answers[case] = [granted["statusCode"], grant.get("code"), None]
            continue
        assert requests.put(grant["url"], data=cases[case], headers=grant["headers"]).ok
        key = grant["url"].split("?")[0].split("/", 4)[4]
        assert runtime().images.head(key).size == len(cases[case])
        response = call("/v1/jobs", {"upload_id": grant["upload_id"]})
        answers[case] = [response["statusCode"], json.loads(response["body"]).get("code"),
                         getattr(runtime().images.head(key), "size", None)]
    answers["null"] = call("/v1/jobs", {"upload_id": None})["statusCode"]
    print("ANSWERS " + json.dumps(answers))
""")


def run(stack_env, cases: str, **env) -> dict:
    command, environ = python_with({**stack_env, "AUTH_MODE": "none", "RATE_LIMIT_PER_MINUTE": "0",
                                    "MAX_PRESIGNED_UPLOAD_BYTES": "200000", **env})
    done = subprocess.run([*command, "-c", SCRIPT, cases], cwd=REPO, env=environ, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.split("ANSWERS ", 1)[1])


def test_refused_uploads_are_deleted_like_accepted_ones(stack_env):
    answers = run(stack_env, "empty,too_large,not_an_image,truncated,valid")
    assert answers.pop("null") == 400
    assert {case: status for case, (status, _, _) in answers.items()} == {
        "empty": 400, "too_large": 413, "not_an_image": 415, "truncated": 422, "valid": 201}
    assert all(size is None for _, _, size in answers.values()), answers


def test_an_upload_refused_while_dynamodb_is_down_is_deleted_too(stack_env):
    answers = run(stack_env, "valid", AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:9")  # nothing listens there
    assert answers["valid"][:2] == [503, "SERVICE_UNAVAILABLE"] and answers["valid"][2] is None, answers
