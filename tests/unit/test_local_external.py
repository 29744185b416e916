"""--aws-endpoint: which endpoints the local stack accepts, and LocalStack's discovery through localstack-client."""
from __future__ import annotations

import pytest

from cxr_local.external import resolve_endpoint


@pytest.mark.parametrize("url", ["https://dynamodb.us-east-1.amazonaws.com", "https://sqs.eu-west-1.amazonaws.com/",
                                 "https://s3.cn-north-1.amazonaws.com.cn", "https://sqs.us-east-2.api.aws",
                                 "http://AMAZONAWS.COM"])
def test_real_aws_endpoints_are_refused(url):
    with pytest.raises(SystemExit, match="refusing to create resources on real AWS"):
        resolve_endpoint(url)


@pytest.mark.parametrize("url", ["ftp://localhost:4566", "localhost:4566", "http://"])
def test_malformed_endpoints_are_refused(url):
    with pytest.raises(SystemExit, match="expected http"):
        resolve_endpoint(url)


def test_emulator_endpoints_are_taken_as_given():
    assert resolve_endpoint("http://127.0.0.1:4566/") == "http://127.0.0.1:4566"
    assert resolve_endpoint("http://notamazonaws.com.example:5000") == "http://notamazonaws.com.example:5000"


def test_localstack_is_found_through_localstack_client(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("USE_SSL", raising=False)
    monkeypatch.delenv("LOCALSTACK_HOST", raising=False)
    assert resolve_endpoint("localstack") == "http://localhost:4566"
    monkeypatch.setenv("LOCALSTACK_HOST", "10.0.0.7:4599")
    assert resolve_endpoint("localstack") == "http://10.0.0.7:4599"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://sqs.us-east-1.amazonaws.com")  # discovery, then the same refusal
    with pytest.raises(SystemExit, match="refusing"):
        resolve_endpoint("localstack")
