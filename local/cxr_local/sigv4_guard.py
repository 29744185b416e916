"""SigV4 in front of moto: every request must be signed by the stack's own identity, presigned URLs as S3 checks them.

moto's IAM mode (INITIAL_NO_AUTH_ACTION_COUNT) checks header signatures only: a presigned URL carries no
Authorization header (moto's check fails on it), and moto never looks at X-Amz-Expires. This WSGI middleware
recomputes the signature with botocore's own signers for both forms (header and query string), so an edited
path, method, signed header or query parameter, a stale date, an expired URL or a foreign key is refused. As S3
does, a presigned request's x-amz-* headers must all be signed, and an x-amz-checksum-sha256 must match the body.
A refusal never reads the body: unsigned or foreign requests are refused from their headers, and a body is read
only up to what its request may carry (the signed Content-Length of a presigned PUT, else MAX_BODY_BYTES).
"""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import secrets
import string
import time
from base64 import b64encode
from calendar import timegm
from dataclasses import dataclass
from typing import Callable
from urllib.parse import parse_qsl

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_SECONDS = 15 * 60  # S3's RequestTimeTooSkewed
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
ACCESS_KEY_ENV, SECRET_KEY_ENV = "CXR_MOTO_ACCESS_KEY_ID", "CXR_MOTO_SECRET_ACCESS_KEY"
MAX_BODY_BYTES = 256 * 1024 * 1024  # a request whose length is not signed (moto's own clients send far less)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Identity:
    access_key_id: str
    secret_access_key: str

    @classmethod
    def new(cls) -> "Identity":
        """A random key pair in AWS's shape (AKIA + 16 upper-case letters and digits)."""
        alphabet = string.ascii_uppercase + "234567"
        return cls("AKIA" + "".join(secrets.choice(alphabet) for _ in range(16)), secrets.token_urlsafe(30))


class Denied(Exception):
    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _amz_epoch(stamp: str) -> int:
    try:
        return timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise Denied("AccessDenied", f"malformed X-Amz-Date {stamp!r}") from None


def _fields(authorization: str) -> dict[str, str]:
    parts = {}
    for item in authorization[len(ALGORITHM):].split(","):
        name, _, value = item.strip().partition("=")
        parts[name] = value
    return parts


def _headers(environ: dict) -> dict[str, str]:
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


def _expected_signature(identity: Identity, method: str, host: str, raw_path: str, query: str, headers: dict,
                        signed: list[str], body: bytes, region: str, service: str, stamp: str, presigned: bool) -> str:
    missing = [name for name in signed if name not in headers]
    if missing:
        raise Denied("SignatureDoesNotMatch", f"signed header(s) {missing} not sent")
    url = f"http://{host}{raw_path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, headers={name: headers[name] for name in signed}, data=body)
    request.context["timestamp"] = stamp
    credentials = Credentials(identity.access_key_id, identity.secret_access_key)
    if presigned:
        signer = (S3SigV4QueryAuth if service == "s3" else SigV4QueryAuth)(credentials, service, region, 0)
    else:
        signer = (S3SigV4Auth if service == "s3" else SigV4Auth)(credentials, service, region)
    canonical = signer.canonical_request(request)
    return signer.signature(signer.string_to_sign(request, canonical), request)


def verify(identity: Identity, environ: dict, body: bytes | Callable[[], bytes], now: float | None = None) -> bytes:
    """Raise Denied unless the request is SigV4-signed (header or presigned query) by identity, in time; return the
    body. A callable body is read only once everything that does not need it has passed."""
    now = time.time() if now is None else now
    read = body if callable(body) else (lambda: body)
    headers = _headers(environ)
    method = environ["REQUEST_METHOD"]
    raw_uri = environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
    raw_path, _, query = raw_uri.partition("?")
    host = headers.get("host", "")
    authorization = headers.get("authorization", "")
    params = dict(parse_qsl(query, keep_blank_values=True))
    if authorization.startswith(ALGORITHM + " "):
        fields = _fields(authorization)
        credential, signature = fields.get("Credential", ""), fields.get("Signature", "")
        signed = [name for name in fields.get("SignedHeaders", "").split(";") if name]
        stamp = headers.get("x-amz-date", "")
        if abs(now - _amz_epoch(stamp)) > MAX_SKEW_SECONDS:
            raise Denied("RequestTimeTooSkewed", "the request time differs too much from the server's")
        presigned = False
    elif params.get("X-Amz-Algorithm") == ALGORITHM:
        credential, signature = params.get("X-Amz-Credential", ""), params.get("X-Amz-Signature", "")
        signed = [name for name in params.get("X-Amz-SignedHeaders", "").split(";") if name]
        stamp = params.get("X-Amz-Date", "")
        try:
            expires = int(params.get("X-Amz-Expires", ""))
        except ValueError:
            raise Denied("AuthorizationQueryParametersError", "X-Amz-Expires must be a number") from None
        issued = _amz_epoch(stamp)
        if not 0 < expires <= MAX_PRESIGN_SECONDS or issued - now > MAX_SKEW_SECONDS:
            raise Denied("AuthorizationQueryParametersError", "X-Amz-Expires or X-Amz-Date out of range")
        if now > issued + expires:
            raise Denied("AccessDenied", "Request has expired")
        presigned = True
        query = "&".join(pair for pair in query.split("&") if not pair.startswith("X-Amz-Signature="))
    else:
        raise Denied("AccessDenied", "this endpoint accepts only requests signed with SigV4 by the local stack")
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise Denied("AuthorizationHeaderMalformed", "malformed credential scope")
    key_id, day, region, service, _ = parts
    if not hmac.compare_digest(key_id, identity.access_key_id):
        raise Denied("InvalidAccessKeyId", "the AWS access key id does not exist in our records")
    if day != stamp[:8] or "host" not in signed:
        raise Denied("SignatureDoesNotMatch", "the credential date or the signed headers are wrong")
    unsigned = sorted(name for name in headers if name.startswith("x-amz-") and name not in signed)
    if presigned and unsigned:
        raise Denied("AccessDenied", f"There were headers present in the request which were not signed: {unsigned}")
    content_sha = headers.get("x-amz-content-sha256", "")
    # the signature covers the body through its hash: the signed header's, else the body's own (read only now)
    payload = b"" if presigned or "x-amz-content-sha256" in signed else read()
    expected = _expected_signature(identity, method, host, raw_path, query, headers, signed, payload, region,
                                   service, stamp, presigned)
    if not hmac.compare_digest(expected, signature):
        raise Denied("SignatureDoesNotMatch", "the request signature we calculated does not match the signature "
                                              "you provided")
    data = read() if presigned or "x-amz-content-sha256" in signed else payload
    if not presigned and _HEX64.match(content_sha) and hashlib.sha256(data).hexdigest() != content_sha:
        raise Denied("XAmzContentSHA256Mismatch", "the body does not match x-amz-content-sha256")
    checksum = headers.get("x-amz-checksum-sha256")
    if checksum is not None and b64encode(hashlib.sha256(data).digest()).decode() != checksum:
        raise Denied("BadDigest", "The SHA256 you specified did not match the calculated checksum.", 400)
    return data


def _body_reader(environ: dict) -> Callable[[], bytes]:
    """Reads the body once, when asked; past MAX_BODY_BYTES (declared or streamed) a 413, before holding it."""
    def read() -> bytes:
        if "body" not in cache:
            stream = environ["wsgi.input"]
            if environ.get("wsgi.input_terminated"):
                data = stream.read(MAX_BODY_BYTES + 1)
            else:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                if length > MAX_BODY_BYTES:
                    raise Denied("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", 413)
                data = stream.read(length) if length > 0 else b""
            if len(data) > MAX_BODY_BYTES:
                raise Denied("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", 413)
            cache["body"] = data
        return cache["body"]

    cache: dict[str, bytes] = {}
    return read


def _denial(environ: dict, error: Denied) -> tuple[str, list[tuple[str, str]], bytes]:
    if environ.get("HTTP_X_AMZ_TARGET"):  # JSON protocols (DynamoDB, SQS)
        body = json.dumps({"__type": error.code, "message": error.message}).encode()
        return _STATUS[error.status], [("Content-Type", "application/x-amz-json-1.0")], body
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{error.code}</Code>'
            f"<Message>{error.message}</Message></Error>").encode()
    return _STATUS[error.status], [("Content-Type", "application/xml")], body


_STATUS = {400: "400 Bad Request", 403: "403 Forbidden", 413: "413 Request Entity Too Large"}


class SigV4Guard:
    """WSGI middleware: only requests verify() accepts reach the wrapped application (moto)."""

    def __init__(self, app, identity: Identity) -> None:
        self.app, self.identity = app, identity

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "OPTIONS" and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
            return self.app(environ, start_response)  # a CORS preflight: S3 answers it from the bucket's rules, unsigned
        try:
            body = verify(self.identity, environ, _body_reader(environ))
        except Denied as error:
            status, headers, payload = _denial(environ, error)
            # the unread rest of a refused body must not be taken for the next request
            start_response(status, headers + [("Content-Length", str(len(payload))), ("Connection", "close")])
            return [payload]
        if environ.get("HTTP_X_AMZ_CHECKSUM_SHA256") and "HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM" not in environ:
            # verified above; S3 keeps such a checksum with the object (HeadObject returns it), moto only when an
            # SDK names the algorithm, which a presigned PUT from a browser or requests does not
            environ["HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM"] = "SHA256"
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input_terminated"] = False
        return self.app(environ, start_response)
