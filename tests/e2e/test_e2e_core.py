"""Issue 2 end to end: real HTTP against `python -m cxr_local`, real sample X-rays, seed-client polling."""
from __future__ import annotations

import io
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from PIL import Image

from .conftest import XRAYS, assert_json_error, wait_for_terminal_status

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def local_stack(fresh_stack):
    """This module's own stack: its first upload of each real sample must be a new job, whatever ran before."""
    return fresh_stack


LABEL_COUNT = 18
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".dcm": "application/dicom"}
# each sample is uploaded by exactly one case, so its first upload is a new job and its second a cache hit
SAMPLES = [("00000001_000.png", "multipart"), ("16747_3_1.jpg", "raw"), ("siim_pneumothorax_sample.dcm", "raw"),
           ("00027426_000.png", "raw"), ("Fake_MONOHR1.dcm", "multipart")]


def post_image(http, base_url, data: bytes, filename: str, how: str):
    media_type = MEDIA_TYPES[filename[filename.rindex("."):]]
    if how == "multipart":
        return http.post(f"{base_url}/v1/jobs", files={"image": (filename, data, media_type)}, timeout=30)
    return http.post(f"{base_url}/v1/jobs", data=data, headers={"Content-Type": media_type}, timeout=30)


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.parametrize(("filename", "how"), SAMPLES)
def test_upload_poll_result_then_cache_hit(local_stack, http, filename, how):
    base_url = local_stack.url
    data = (XRAYS / filename).read_bytes()

    created = post_image(http, base_url, data, filename, how)
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["status"] == "QUEUED" and uuid.UUID(job["id"]) and _iso(job["created_at"]).tzinfo is not None

    final, elapsed = wait_for_terminal_status(http, base_url, job["id"])
    assert final["status"] == "COMPLETED", final
    assert final["id"] == job["id"] and _iso(final["updated_at"]) >= _iso(final["created_at"])

    result = http.get(f"{base_url}/v1/jobs/{job['id']}/result", timeout=10)
    assert result.status_code == 200, result.text
    body = result.json()
    assert body["job_id"] == job["id"]
    assert len(body["output"]) == LABEL_COUNT
    assert all(0.0 <= p <= 1.0 for p in body["output"].values()), body["output"]
    assert body["top_label"] == max(body["output"], key=body["output"].get)
    assert body["model"]["weights"] == "random-init", body["model"]  # never silently pretend to be real
    assert body["model"]["name"] == "densenet121-res224-all" and body["model"]["weights_sha256"]

    other_way = "raw" if how == "multipart" else "multipart"
    again = post_image(http, base_url, data, filename, other_way)
    assert again.status_code == 200, again.text
    hit = again.json()
    assert hit["status"] == "COMPLETED" and hit["cached"] is True
    assert hit["result"]["output"] == body["output"]
    assert hit["result"]["model"]["weights_sha256"] == body["model"]["weights_sha256"]


def test_identical_uploads_racing_make_one_job(local_stack, http):
    """8 identical uploads at once: one 201; the rest answer with that job, or (if it finished meanwhile) its result."""
    data = _new_png_bytes(seed=1)
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: post_image(http, local_stack.url, data, "race.png", "raw"),
                                  range(8)))
    statuses = [(r.status_code, r.text) for r in responses]
    assert all(r.status_code in (200, 201) for r in responses), statuses
    created = [r.json() for r in responses if r.status_code == 201]
    assert len(created) == 1, statuses
    job_id = created[0]["id"]
    final, _ = wait_for_terminal_status(http, local_stack.url, job_id)
    assert final["status"] == "COMPLETED"
    output = http.get(f"{local_stack.url}/v1/jobs/{job_id}/result", timeout=10).json()["output"]
    for body in (r.json() for r in responses if r.status_code == 200):
        if body["id"] != job_id:  # a straggler that arrived after the job completed: a cache hit of it
            assert body["status"] == "COMPLETED" and body["cached"] is True, body
            assert body["result"]["output"] == output
    assert sum(r.json()["id"] == job_id for r in responses) >= 2, statuses  # the race did overlap


def test_unknown_job_is_404(base_url, http):
    missing = uuid.uuid4()
    assert_json_error(http.get(f"{base_url}/v1/jobs/{missing}", timeout=10), 404)
    assert_json_error(http.get(f"{base_url}/v1/jobs/{missing}/result", timeout=10), 404)


def test_unknown_route_and_wrong_method(base_url, http):
    assert_json_error(http.get(f"{base_url}/v2/nothing", timeout=10), 404, "NOT_FOUND")
    assert_json_error(http.delete(f"{base_url}/v1/jobs", timeout=10), 405)


def test_bad_uploads_are_json_errors_and_write_nothing(local_stack, http):
    base_url = local_stack.url
    before = _stored_counts(local_stack)
    png = (XRAYS / "00000001_000.png").read_bytes()
    # not an image, whatever the header claims: 415
    assert_json_error(http.post(f"{base_url}/v1/jobs", data=b"hello, not an x-ray",
                                headers={"Content-Type": "text/plain"}, timeout=10), 415)
    assert_json_error(http.post(f"{base_url}/v1/jobs", data=b"%PDF-1.4 not an x-ray" * 20,
                                headers={"Content-Type": "image/png"}, timeout=10), 415)
    assert_json_error(http.post(f"{base_url}/v1/jobs", files={"image": ("notes.txt", b"plain text", "text/plain")},
                                timeout=10), 415)
    # a PNG that cannot be decoded: 422
    assert_json_error(http.post(f"{base_url}/v1/jobs", data=png[:len(png) // 3],
                                headers={"Content-Type": "image/png"}, timeout=10), 422)
    assert_json_error(http.post(f"{base_url}/v1/jobs", data=png[:8] + bytes(2000),
                                headers={"Content-Type": "image/png"}, timeout=10), 422)
    # no image: 400
    assert_json_error(http.post(f"{base_url}/v1/jobs", files={"file": ("x.png", png, "image/png")}, timeout=10), 400)
    assert_json_error(http.post(f"{base_url}/v1/jobs", data=b"", headers={"Content-Type": "image/png"},
                                timeout=10), 400)
    # over the 10 MB limit: 413, before anything is read into a handler
    oversize = png + bytes(10 * 1024 * 1024)
    assert_json_error(http.post(f"{base_url}/v1/jobs", data=oversize, headers={"Content-Type": "image/png"},
                                timeout=30), 413)
    assert_json_error(http.post(f"{base_url}/v1/jobs", files={"image": ("big.png", oversize, "image/png")},
                                timeout=30), 413)
    assert _stored_counts(local_stack) == before


def _stored_counts(stack) -> dict:
    resources = stack.info["resources"]
    s3, dynamodb, sqs = stack.aws("s3"), stack.aws("dynamodb"), stack.aws("sqs")
    counts = {f"s3:{bucket}": s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0)
              for bucket in resources["buckets"].values()}
    # the rate-limit counters change with every request by design; the data tables must not
    counts.update({f"dynamodb:{table}": dynamodb.scan(TableName=table, Select="COUNT")["Count"]
                   for logical_id, table in resources["tables"].items() if logical_id != "RateLimitsTable"})
    counts.update({f"sqs:{url}": int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"][
        "ApproximateNumberOfMessages"]) for url in resources["queues"].values()})
    return counts


def _new_png_bytes(seed: int) -> bytes:
    """The sample PNG with a few pixels changed: a new SHA-256, still a real radiograph."""
    image = Image.open(XRAYS / "00000001_000.png")
    image.load()
    rng = random.Random(seed)
    for _ in range(5):
        xy = (rng.randrange(image.width), rng.randrange(image.height))
        image.putpixel(xy, (image.getpixel(xy) + rng.randrange(1, 255)) % 256)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
