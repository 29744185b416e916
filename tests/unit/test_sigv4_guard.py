"""The local stack's moto guard: only SigV4 by the stack's identity, presigned URLs checked as S3 checks them."""
import io
import time
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from cxr_local.sigv4_guard import Denied, Identity, SigV4Guard, verify

STACK = Identity.new()
ENDPOINT = "http://127.0.0.1:4566"


def environ(method: str, url: str, headers: dict, body: bytes = b"") -> dict:
    parts = urlsplit(url)
    env = {"REQUEST_METHOD": method, "REQUEST_URI": parts.path + (f"?{parts.query}" if parts.query else ""),
           "PATH_INFO": parts.path, "QUERY_STRING": parts.query, "wsgi.input": io.BytesIO(body),
           "CONTENT_LENGTH": str(len(body)), "HTTP_HOST": parts.netloc}
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        env[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    return env


def signed_dynamodb(identity: Identity, body: bytes = b'{"TableName": "cxr-local-jobs"}') -> tuple[dict, bytes]:
    request = AWSRequest("POST", ENDPOINT + "/", data=body, headers={
        "X-Amz-Target": "DynamoDB_20120810.Scan", "Content-Type": "application/x-amz-json-1.0"})
    SigV4Auth(Credentials(identity.access_key_id, identity.secret_access_key), "dynamodb", "us-east-1").add_auth(request)
    return environ("POST", request.url, dict(request.headers.items()), body), body


def presigned_put(identity: Identity, key: str = "uploads/client-a/0123", expires: int = 60) -> str:
    s3 = boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id=identity.access_key_id,
                      aws_secret_access_key=identity.secret_access_key, config=Config(signature_version="s3v4"))
    return s3.generate_presigned_url("put_object", ExpiresIn=expires, HttpMethod="PUT", Params={
        "Bucket": "images", "Key": key, "ContentType": "application/dicom", "ServerSideEncryption": "AES256"})


PUT_HEADERS = {"Content-Type": "application/dicom", "x-amz-server-side-encryption": "AES256"}


def test_requests_signed_by_the_stack_identity_pass():
    env, body = signed_dynamodb(STACK)
    verify(STACK, env, body)
    verify(STACK, environ("PUT", presigned_put(STACK), PUT_HEADERS, b"DICM"), b"DICM")


@pytest.mark.parametrize("case", ["unsigned", "foreign key", "body edited", "stale"])
def test_anything_else_is_refused(case):
    env, body = signed_dynamodb(Identity.new() if case == "foreign key" else STACK)
    if case == "unsigned":
        env.pop("HTTP_AUTHORIZATION")
    if case == "body edited":
        body = b'{"TableName": "cxr-local-api-keys"}'
    with pytest.raises(Denied):
        verify(STACK, env, body, now=time.time() + (3600 if case == "stale" else 0))


@pytest.mark.parametrize("case", ["expired", "path edited", "method", "content type", "signature dropped"])
def test_a_presigned_put_is_checked_like_s3(case):
    url = presigned_put(STACK)
    method, headers, now = "PUT", dict(PUT_HEADERS), time.time()
    if case == "expired":
        now += 61
    elif case == "path edited":
        url = url.replace("uploads/client-a/0123", "images/" + "a" * 64)
    elif case == "method":
        method = "DELETE"
    elif case == "content type":
        headers["Content-Type"] = "image/png"
    else:
        url = url.split("&X-Amz-Signature=")[0]
    with pytest.raises(Denied):
        verify(STACK, environ(method, url, headers, b"DICM"), b"DICM", now=now)


def test_the_middleware_answers_403_without_calling_moto():
    called = []
    guard = SigV4Guard(lambda env, start: called.append(env) or [b"moto"], STACK)
    statuses = []
    env, _ = signed_dynamodb(Identity.new())
    assert b"InvalidAccessKeyId" in b"".join(guard(env, lambda status, headers: statuses.append(status)))
    assert statuses == ["403 Forbidden"] and not called
    env, body = signed_dynamodb(STACK)
    assert guard(env, lambda status, headers: statuses.append(status)) == [b"moto"]
    assert called[0]["wsgi.input"].read() == body


def test_only_a_cors_preflight_reaches_moto_unsigned():
    """S3 answers a browser's preflight of a presigned PUT from the bucket's CORS rules, without a signature."""
    seen = []

    def app(env, start_response):
        seen.append(env["REQUEST_METHOD"])
        start_response("200 OK", [])
        return [b""]

    guard = SigV4Guard(app, STACK)
    url = presigned_put(STACK)
    statuses = []
    preflight = environ("OPTIONS", url, {"Origin": "http://127.0.0.1:8080", "Access-Control-Request-Method": "PUT"})
    guard(preflight, lambda status, headers: statuses.append(status))
    guard(environ("OPTIONS", url, {"Origin": "http://127.0.0.1:8080"}), lambda status, headers: statuses.append(status))
    assert seen == ["OPTIONS"] and statuses[0].startswith("200") and statuses[1].startswith("403")
