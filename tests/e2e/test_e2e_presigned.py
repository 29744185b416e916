"""Issue 25 items 4 and 5 against the running stack: its AWS endpoint refuses before reading a body, a presigned PUT
is bounded by its signed size and SHA-256 and carries no unsigned x-amz-* header, and an upload makes one job, ever."""
from __future__ import annotations

import base64
import hashlib
import socket
import time
from urllib.parse import urlsplit

import psutil
import pytest
import requests

from tests.images import perturbed_png

from .conftest import assert_json_error, wait_for_terminal_status

pytestmark = pytest.mark.e2e


def grant(local_stack, http, data: bytes, **declared) -> dict:
    response = http.post(f"{local_stack.url}/v1/uploads",
                         json={"content_type": "image/png", "size": len(data), **declared}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def test_an_unsigned_huge_put_is_refused_before_its_body_is_read(local_stack):
    moto = next(child for child in psutil.Process(local_stack.process.pid).children(recursive=True)
                if "cxr_local.moto_server" in " ".join(child.cmdline()))
    rss_before = moto.memory_info().rss
    parts = urlsplit(local_stack.moto_endpoint)
    began = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
        sock.sendall(f"PUT /any-bucket/key HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {400 << 20}\r\n"
                     f"x-amz-acl: public-read\r\n\r\n".encode())
        # answered from the headers alone, before any of the declared 400 MB arrives (sending a part first raced
        # with the refusal: the guard answers and closes, and the client's send then met a closed socket)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
    assert time.monotonic() - began < 10
    assert moto.memory_info().rss - rss_before < 64 << 20


def test_a_presigned_put_is_held_to_its_signed_size_sha256_and_headers(local_stack, http):
    data = perturbed_png(2502)
    assert_json_error(http.post(f"{local_stack.url}/v1/uploads", json={"content_type": "image/png"},
                                timeout=30), 400)  # the size is required: it is signed into the URL
    sized = grant(local_stack, http, data)
    longer = requests.put(sized["url"], data=data + b"\0" * 1024, headers=sized["headers"], timeout=30)
    assert longer.status_code == 403, longer.text  # Content-Length is signed
    for extra in ({"x-amz-acl": "public-read"}, {"x-amz-meta-patient": "Doe^Jane"}):
        unsigned = requests.put(sized["url"], data=data, headers={**sized["headers"], **extra}, timeout=30)
        assert unsigned.status_code == 403 and "not signed" in unsigned.text, unsigned.text
    hashed = grant(local_stack, http, data, sha256=hashlib.sha256(data).hexdigest())
    assert "x-amz-checksum-sha256" in hashed["headers"]
    swapped = bytes(reversed(data))  # same length, other bytes
    refused = requests.put(hashed["url"], data=swapped, headers=hashed["headers"], timeout=30)
    assert refused.status_code == 400 and "BadDigest" in refused.text, refused.text
    assert requests.put(hashed["url"], data=data, headers=hashed["headers"], timeout=30).status_code == 200


def test_an_upload_id_is_claimed_once_ever(local_stack, http):
    data = perturbed_png(2503)
    upload = grant(local_stack, http, data)
    assert requests.put(upload["url"], data=data, headers=upload["headers"], timeout=30).status_code == 200
    first = http.post(f"{local_stack.url}/v1/jobs", json={"upload_id": upload["upload_id"]}, timeout=60)
    assert first.status_code in (200, 201), first.text
    # the URL still lives: the same bytes PUT again must not make a second job
    assert requests.put(upload["url"], data=data, headers=upload["headers"], timeout=30).status_code == 200
    second = http.post(f"{local_stack.url}/v1/jobs", json={"upload_id": upload["upload_id"]}, timeout=60)
    assert_json_error(second, 409, "UPLOAD_ALREADY_USED")


def test_an_upload_sent_with_its_sha256_is_keyed_by_the_checksum_s3_verified(local_stack, http):
    """Issue 28: S3 keeps the SHA-256 it verified at the PUT with the object, so the claim takes the cache key from
    it instead of hashing the upload again; the job's key is still the upload's SHA-256 and it scores as ever."""
    data = perturbed_png(2504)
    digest = hashlib.sha256(data).hexdigest()
    upload = grant(local_stack, http, data, sha256=digest)
    assert requests.put(upload["url"], data=data, headers=upload["headers"], timeout=30).status_code == 200
    bucket = next(iter(local_stack.info["resources"]["buckets"].values()))
    listed = local_stack.aws("s3").list_objects_v2(Bucket=bucket, Prefix="uploads/")["Contents"]
    key = next(item["Key"] for item in listed if item["Key"].endswith(upload["upload_id"]))
    head = local_stack.aws("s3").head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == digest  # kept with the object, as S3 keeps it
    created = http.post(f"{local_stack.url}/v1/jobs", json={"upload_id": upload["upload_id"]}, timeout=60)
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    tables = local_stack.info["resources"]["tables"]
    item = local_stack.aws("dynamodb").get_item(TableName=tables["JobsTable"], Key={"job_id": {"S": job_id}})["Item"]
    assert item["image_sha256"]["S"] == digest
    status, _ = wait_for_terminal_status(http, local_stack.url, job_id)
    assert status["status"] == "COMPLETED", status
