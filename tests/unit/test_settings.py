"""Settings read from the environment: defaults that depend on other settings."""
import os

import pytest

from cxr_core.config import read_settings


@pytest.mark.parametrize("engine, batch, expected", [
    ("torch-cuda", "8", 8), ("onnxruntime-cuda", "32", 8), ("torch-cuda", "4", 4),
    ("onnxruntime", "8", min(8, len(os.sched_getaffinity(0)))), ("torch", "1", 1)])
def test_decode_threads_default_to_one_per_image_on_a_gpu_and_one_per_vcpu_on_the_cpu(engine, batch, expected):
    """Issue 28: on the CPU the decode threads share the cores with the forward pass (8 on 2 vCPUs cost ~6 CPU ms
    per clinical job); a GPU worker wants one per image to keep the GPU fed."""
    assert read_settings({"MODEL_ENGINE": engine, "INFER_BATCH_SIZE": batch}).decode_threads == expected


def test_decode_threads_set_explicitly_win():
    assert read_settings({"MODEL_ENGINE": "onnxruntime", "DECODE_THREADS": "6"}).decode_threads == 6


@pytest.mark.parametrize("endpoint, unsigned", [("http://127.0.0.1:4566", True), ("https://s3.example", False),
                                                (None, False)])
def test_s3_over_plain_http_signs_no_payload_hash_as_aws_over_https_does(endpoint, unsigned, monkeypatch):
    """Over HTTPS with a checksum header botocore signs UNSIGNED-PAYLOAD; over plain HTTP (the local stack) it would
    hash every body for the signature, a SHA-256 pass per 10 MB put that AWS never pays. No request is sent here."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest

    from cxr_core.bootstrap import Runtime

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    environment = {"AWS_ENDPOINT_URL": endpoint} if endpoint else {}
    s3 = Runtime(read_settings(environment)).s3
    assert (s3.meta.config.s3 or {}).get("payload_signing_enabled") is (False if unsigned else None)
    if unsigned:
        request = AWSRequest(method="PUT", url=f"{endpoint}/bucket/key", data=b"x" * 1024)
        request.context["client_config"] = s3.meta.config
        assert S3SigV4Auth(None, "s3", "us-east-1")._should_sha256_sign_payload(request) is False
