"""Auth, per-client isolation, rate limiting and the presigned upload flow, over real HTTP on the local stack."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pydicom
import pytest
import requests

from tests.e2e.conftest import REPO, start_stack, wait_for_terminal_status
from tests.images import SAMPLE_FILES, perturbed_png

pytestmark = pytest.mark.e2e


def admin(stack, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return subprocess.run([sys.executable, "-m", "cxr_core.admin", "--stack", str(stack.ready_file), "keys", *args],
                          cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=True)


@pytest.fixture(scope="module")
def client_key(local_stack) -> str:
    created = json.loads(admin(local_stack, "create", "--client", "hospital-b").stdout)
    assert created["api_key"] != created["key_hash"]
    return created["api_key"]


def test_every_v1_route_but_health_wants_a_key(local_stack, http):
    url = local_stack.url
    assert requests.get(f"{url}/v1/ops/health", timeout=10).status_code == 200
    for method, path in [("POST", "/v1/jobs"), ("POST", "/v1/uploads"), ("GET", "/v1/jobs/x"),
                         ("GET", "/v1/jobs/x/result"), ("GET", "/v1/ops/metrics"), ("GET", "/v1/ops/dlq"),
                         ("GET", "/v1/ops/ready")]:
        for headers in ({}, {"x-api-key": "not-a-key"}):
            response = requests.request(method, url + path, headers=headers, timeout=10)
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["code"] == "UNAUTHORIZED"


def test_the_stack_started_ready_and_readiness_looks_at_every_dependency(local_stack, http):
    assert local_stack.info["ready_status"] == 200 and "ready" in local_stack.info["phases_s"]
    response = http.get(f"{local_stack.url}/v1/ops/ready", timeout=30)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["status"] == "ready" and report["model"]["model_id"]
    assert {"jobs_table", "results_table", "api_keys_table", "images_bucket", "queue", "dead_letter_queue",
            "model"} <= set(report["checks"])
    assert all(check["ok"] for check in report["checks"].values()), report


def test_a_client_sees_only_its_own_jobs_and_no_ops(local_stack, http, client_key):
    url = local_stack.url
    mine = http.post(f"{url}/v1/jobs", files={"image": ("a.png", perturbed_png(9101))}, timeout=30).json()
    other = {"x-api-key": client_key}
    assert requests.get(f"{url}/v1/jobs/{mine['id']}", headers=other, timeout=10).status_code == 404
    assert requests.get(f"{url}/v1/ops/dlq", headers=other, timeout=10).status_code == 403
    assert requests.get(f"{url}/v1/ops/ready", headers=other, timeout=10).status_code == 403
    theirs = requests.post(f"{url}/v1/jobs", headers=other, files={"image": ("b.png", perturbed_png(9102))},
                           timeout=30)
    assert theirs.status_code == 201
    assert requests.get(f"{url}/v1/jobs/{theirs.json()['id']}", headers=other, timeout=10).status_code == 200


def big_dicom(path) -> bytes:
    """A 3000x2500 16-bit MONOCHROME2 DICOM (~15 MB): over API Gateway's inline limits."""
    ds = pydicom.dcmread(SAMPLE_FILES["dicom"])
    rng = np.random.default_rng(7)
    pixels = (np.linspace(0, 4095, 2500 * 3000).reshape(2500, 3000) + rng.integers(0, 64, (2500, 3000)))
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return path.read_bytes()


def test_large_dicom_goes_through_a_presigned_upload(local_stack, http, tmp_path):
    url = local_stack.url
    data = big_dicom(tmp_path / "big.dcm")
    assert len(data) > 10 * 1024 * 1024
    inline = http.post(f"{url}/v1/jobs", data=data, headers={"Content-Type": "application/dicom"}, timeout=60)
    assert inline.status_code == 413 and inline.json()["code"] == "PAYLOAD_TOO_LARGE"
    grant = http.post(f"{url}/v1/uploads", json={"content_type": "application/dicom", "size": len(data)}, timeout=30)
    assert grant.status_code == 201, grant.text
    grant = grant.json()
    put = requests.put(grant["url"], data=data, headers=grant["headers"], timeout=120)
    assert put.status_code == 200, put.text
    job = http.post(f"{url}/v1/jobs", json={"upload_id": grant["upload_id"]}, timeout=120)
    assert job.status_code == 201, job.text
    status, _ = wait_for_terminal_status(http, url, job.json()["id"])
    assert status["status"] == "COMPLETED", status
    result = http.get(f"{url}/v1/jobs/{job.json()['id']}/result", timeout=30).json()
    assert len(result["output"]) == 18
    again = http.post(f"{url}/v1/jobs", json={"upload_id": grant["upload_id"]}, timeout=30)
    assert again.status_code == 400  # an upload is used once (its object is gone)


@pytest.fixture(scope="module")
def strict_stack(tmp_path_factory):
    """A second stack with a tiny rate limit and no key cache, so limits and revocations show at once."""
    stack = start_stack(tmp_path_factory.mktemp("strict"), "--env", "RATE_LIMIT_PER_MINUTE=3",
                        "--env", "AUTH_CACHE_SECONDS=0", workers=0)
    yield stack
    assert stack.stop() == 0


def test_rate_limit_answers_429_with_retry_after(strict_stack):
    with requests.Session() as session:
        session.headers.update(strict_stack.auth_headers)
        codes = [session.post(f"{strict_stack.url}/v1/jobs", files={"image": ("x.png", perturbed_png(9200 + i))},
                              timeout=30) for i in range(5)]
    assert [r.status_code for r in codes[:3]] == [201, 201, 201]
    limited = codes[3]
    assert limited.status_code == 429 and limited.json()["code"] == "THROTTLED"
    assert 1 <= int(limited.headers["Retry-After"]) <= 61


def test_a_revoked_key_stops_working(strict_stack):
    created = json.loads(admin(strict_stack, "create", "--client", "short-lived").stdout)
    headers = {"x-api-key": created["api_key"]}
    url = f"{strict_stack.url}/v1/jobs/no-such-job"
    assert requests.get(url, headers=headers, timeout=10).status_code == 404
    admin(strict_stack, "revoke", created["key_hash"])
    assert requests.get(url, headers=headers, timeout=10).status_code == 401
    listed = json.loads(admin(strict_stack, "list").stdout)
    assert all("api_key" not in entry for entry in listed)  # only hashes are stored
    assert [e for e in listed if e["key_hash"] == created["key_hash"]][0]["revoked_at"]


def test_stored_dicom_and_logs_keep_no_patient_identity(local_stack, http):
    import hashlib
    data = SAMPLE_FILES["dicom"].read_bytes()
    patient_id = str(pydicom.dcmread(SAMPLE_FILES["dicom"]).PatientID).encode()
    response = http.post(f"{local_stack.url}/v1/jobs", data=data,
                         headers={"Content-Type": "application/dicom"}, timeout=30)
    assert response.status_code in (200, 201), response.text
    s3 = local_stack.aws("s3")
    [bucket] = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    stored = s3.get_object(Bucket=bucket, Key=f"images/{hashlib.sha256(data).hexdigest()}")
    body = stored["Body"].read()
    assert patient_id in data and patient_id not in body
    assert stored["ServerSideEncryption"] == "AES256"
    status, _ = wait_for_terminal_status(http, local_stack.url, response.json()["id"])
    assert status["status"] == "COMPLETED"
    logs = [path for path in local_stack.log_path.parent.rglob("*") if path.is_file()]
    assert logs and not [path for path in logs if patient_id in path.read_bytes()]  # API, workers, moto
