"""Issue 7 hostile-input corpus over real HTTP: each upload gets its documented answer, rejects write nothing, no crash."""
from __future__ import annotations

import json
import math
from pathlib import Path

import psutil
import pytest

from cxr_local.waiting import wait_until
from .conftest import assert_json_error, wait_for_terminal_status

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".dcm": "application/dicom", ".txt": "text/plain",
               ".html": "text/html", ".pdf": "application/pdf", ".zip": "application/zip", ".gif": "image/gif",
               ".bmp": "image/bmp", ".tiff": "image/tiff", ".bin": "application/octet-stream"}
REJECTED = sorted(name for name, expected in MANIFEST.items() if expected["status"] >= 400)
ACCEPTED = sorted(name for name, expected in MANIFEST.items() if expected["status"] < 400 and "final" not in expected)
# issue 28: submit checks structure only; damage that only a full decode finds is accepted and FAILED at infer
FAILED_AT_INFER = sorted(name for name, expected in MANIFEST.items() if expected.get("final") == "FAILED")
LIMIT = 10 * 1024 * 1024


def corpus_bytes(name: str) -> bytes:
    return (CORPUS / "files" / name).read_bytes()


def media_type(name: str) -> str:
    return MEDIA_TYPES[name[name.rindex("."):]]


def auth(stack) -> dict:
    """The local stack's documented dev key, once the stack has one (issue 7 auth); nothing before."""
    key = stack.info.get("dev_api_key") or stack.info.get("api_key")
    return {"x-api-key": key} if key else {}


# what a job is made of; auth and rate-limit tables legitimately change on every request
JOB_DATA = {"JobsTable", "ResultsTable", "ImagesBucket", "JobsQueue", "JobsDeadLetterQueue"}


def stored_counts(stack) -> dict:
    """Objects, items and messages (visible + in flight + delayed) in every resource a job is made of."""
    resources = stack.info["resources"]
    s3, dynamodb, sqs = stack.aws("s3"), stack.aws("dynamodb"), stack.aws("sqs")
    counts = {logical: s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0)
              for logical, bucket in resources["buckets"].items()}
    counts.update({logical: dynamodb.scan(TableName=table, Select="COUNT", ConsistentRead=True)["Count"]
                   for logical, table in resources["tables"].items() if logical in JOB_DATA})
    for logical, url in resources["queues"].items():
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        counts[logical] = sum(int(attributes[key]) for key in (
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"))
    return counts


def wait_until_quiet(stack, timeout_s: float = 60) -> dict:
    """Counts once two reads a moment apart agree (no job of an earlier test still moving through the queue)."""
    reads = [stored_counts(stack)]

    def quiet() -> dict | None:
        reads.append(stored_counts(stack))
        return reads[-1] if reads[-1] == reads[-2] and not reads[-1].get("JobsQueue") else None

    return wait_until(quiet, timeout_s, interval_s=0.3, what=lambda: f"stack quiet; last counts {reads[-1]}")


def service_pids(stack) -> dict[int, str]:
    """The stack's descendants (moto, worker supervisor, worker processes) by pid, with their command lines."""
    parent = psutil.Process(stack.process.pid)
    return {child.pid: " ".join(child.cmdline()) for child in parent.children(recursive=True) if child.is_running()}


def tracebacks(stack) -> int:
    logs = [stack.log_path, *(Path(path) for path in stack.info.get("logs", {}).values())]
    return sum(path.read_text(errors="replace").count("Traceback") for path in logs if path.exists())


@pytest.fixture(scope="module")
def baseline(local_stack):
    """What must not change over the whole corpus: the service's processes and the crash count in its logs."""
    return {"pids": service_pids(local_stack), "tracebacks": tracebacks(local_stack)}


def post(http, stack, data: bytes, name: str, how: str, content_type: str | None = None):
    url = f"{stack.url}/v1/jobs"
    if how == "multipart":
        return http.post(url, files={"image": (name, data, content_type or media_type(name))}, headers=auth(stack),
                         timeout=60)
    return http.post(url, data=data, headers={"Content-Type": content_type or media_type(name), **auth(stack)},
                     timeout=60)


@pytest.mark.parametrize(("name", "how"), [pytest.param(name, how, id=f"{name}-{how}") for name in REJECTED
                                           for how in ("raw", "multipart")])
def test_rejected_upload_gets_its_json_error_and_writes_nothing(local_stack, http, baseline, name, how):
    expected = MANIFEST[name]
    before = wait_until_quiet(local_stack)
    # the declared type says PNG whatever the bytes are: the format is decided from the bytes
    response = post(http, local_stack, corpus_bytes(name), name, how, content_type="image/png")
    body = assert_json_error(response, expected["status"], expected["code"])
    assert "Traceback" not in body["error"] and len(body["error"]) < 500, body
    assert stored_counts(local_stack) == before


def _non_corpus_rejections(sample: bytes):
    boundary = "hostile-boundary-7"
    part = ('--{b}\r\nContent-Disposition: form-data; name="{n}"; filename="x.png"\r\n'
            'Content-Type: image/png\r\n\r\n').format
    two_images = (part(b=boundary, n="image").encode() + sample + b"\r\n"
                  + part(b=boundary, n="image").encode() + sample[::-1] + f"\r\n--{boundary}--\r\n".encode())
    empty_image = part(b=boundary, n="image").encode() + f"\r\n--{boundary}--\r\n".encode()
    multipart = f"multipart/form-data; boundary={boundary}"
    oversize = sample + bytes(LIMIT + 1 - len(sample))
    return {
        "empty-raw": (b"", "image/png", 400),
        "empty-multipart-field": (empty_image, multipart, 400),
        "multipart-without-image-field": (part(b=boundary, n="file").encode() + sample + f"\r\n--{boundary}--\r\n"
                                          .encode(), multipart, 400),
        "multipart-two-image-fields": (two_images, multipart, 400),
        "multipart-without-boundary": (two_images, "multipart/form-data", 400),
        "multipart-boundary-not-in-body": (sample, multipart, 400),
        "over-limit-raw": (oversize, "image/png", 413),
        "over-limit-multipart": (part(b=boundary, n="image").encode() + oversize + f"\r\n--{boundary}--\r\n".encode(),
                                 multipart, 413),
    }


NON_CORPUS = sorted(_non_corpus_rejections(b"").keys())


@pytest.mark.parametrize("case", NON_CORPUS)
def test_malformed_request_gets_its_json_error_and_writes_nothing(local_stack, http, baseline, case):
    data, content_type, status = _non_corpus_rejections(corpus_bytes("grey8.png"))[case]
    before = wait_until_quiet(local_stack)
    response = http.post(f"{local_stack.url}/v1/jobs", data=data,
                         headers={"Content-Type": content_type, **auth(local_stack)}, timeout=60)
    assert_json_error(response, status)
    assert stored_counts(local_stack) == before


def _assert_result(stack, http, job_id: str) -> dict:
    final, _ = wait_for_terminal_status(http, stack.url, job_id)
    assert final["status"] == "COMPLETED", final
    result = http.get(f"{stack.url}/v1/jobs/{job_id}/result", headers=auth(stack), timeout=10).json()
    output = result["output"]
    assert len(output) == 18 and all(isinstance(p, float) and 0.0 <= p <= 1.0 and not math.isnan(p)
                                     for p in output.values()), result
    assert result["top_label"] == max(output, key=output.get)
    return result


@pytest.mark.parametrize("name", ACCEPTED)
def test_legitimate_image_is_accepted_and_gets_a_result(local_stack, http, baseline, name):
    response = post(http, local_stack, corpus_bytes(name), name, "raw")
    assert response.status_code in (200, 201), (response.status_code, response.text)
    _assert_result(local_stack, http, response.json()["id"])


@pytest.mark.parametrize(("name", "declared"), [("grey8.png", "application/dicom"), ("rgb.jpg", "text/plain"),
                                                ("dicom_voi_lut.dcm", "image/jpeg"), ("grey16.png", None)])
def test_valid_bytes_under_a_wrong_content_type_are_judged_by_their_bytes(local_stack, http, baseline, name, declared):
    how = "multipart" if declared is None else "raw"
    response = post(http, local_stack, corpus_bytes(name), name, how, content_type=declared or "application/pdf")
    assert response.status_code in (200, 201), (response.status_code, response.text)
    _assert_result(local_stack, http, response.json()["id"])


@pytest.mark.parametrize("name", FAILED_AT_INFER)
def test_damage_only_a_decode_finds_is_accepted_and_fails_its_job_at_the_first_delivery(local_stack, http, baseline,
                                                                                          name):
    expected = MANIFEST[name]
    response = post(http, local_stack, corpus_bytes(name), name, "raw")
    assert response.status_code == 201, (response.status_code, response.text)
    job_id = response.json()["id"]
    final, _ = wait_for_terminal_status(http, local_stack.url, job_id)
    assert final["status"] == "FAILED" and final["error"].startswith(expected["code"] + ": "), final
    item = local_stack.aws("dynamodb").get_item(TableName=local_stack.info["resources"]["tables"]["JobsTable"],
                                                Key={"job_id": {"S": job_id}}, ConsistentRead=True)["Item"]
    assert item["attempts"]["N"] == "1"  # failed for good at once: no retry loop


def test_exif_orientation_is_ignored_like_torchxrayvision(local_stack, http, baseline):
    """skimage/torchxrayvision read stored pixel order; the EXIF tag must not change the scores."""
    results = []
    for name in ("exif_rotated.jpg", "exif_stripped.jpg"):
        response = post(http, local_stack, corpus_bytes(name), name, "raw")
        assert response.status_code in (200, 201), response.text
        results.append(_assert_result(local_stack, http, response.json()["id"])["output"])
    assert results[0] == pytest.approx(results[1], abs=1e-6)


def test_no_service_process_crashed_or_restarted(local_stack, baseline):
    """Runs last in this module: every moto/worker pid of before the corpus still there (InferPath=lambda may add an
    execution environment for the backlog), and no new traceback in any log."""
    now = service_pids(local_stack)
    assert {pid: now.get(pid) for pid in baseline["pids"]} == baseline["pids"]
    assert tracebacks(local_stack) == baseline["tracebacks"]
