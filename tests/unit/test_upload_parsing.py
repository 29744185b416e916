"""Request body parsing: multipart field `image`, raw bytes, base64 bodies, limits."""
import base64

import pytest

from cxr_core.domain import ServiceError
from cxr_core.http import status_of
from cxr_core.request_body import body_bytes, parse_upload

IMAGE = b"\x89PNG\r\n\x1a\n\x00\x01binary\r\n--not-a-boundary\r\n"


def multipart(fields, boundary="XyZ"):
    body = b""
    for name, filename, content in fields:
        body += f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"".encode()
        if filename:
            body += f"; filename=\"{filename}\"\r\nContent-Type: image/png".encode()
        body += b"\r\n\r\n" + content + b"\r\n"
    return f"multipart/form-data; boundary={boundary}", body + f"--{boundary}--\r\n".encode()


def test_multipart_image_field_keeps_binary_bytes_exactly():
    content_type, body = multipart([("note", None, b"hi"), ("image", "x.png", IMAGE)])
    upload = parse_upload(content_type, body, 1000)
    assert upload.data == IMAGE and upload.filename == "x.png"


def test_raw_body_is_the_image():
    assert parse_upload("image/png", IMAGE, 1000).data == IMAGE


@pytest.mark.parametrize("content_type, body, status", [
    ("image/png", b"", 400),
    (*multipart([("file", "x.png", IMAGE)]), 400),
    (*multipart([("image", "a.png", IMAGE), ("image", "b.png", IMAGE)]), 400),
    ("multipart/form-data", b"--x\r\n", 400),
    ("image/png", b"x" * 1001, 413),
    (*multipart([("image", "x.png", b"x" * 1001)]), 413),
])
def test_bad_bodies_are_client_errors(content_type, body, status):
    with pytest.raises(ServiceError) as raised:
        parse_upload(content_type, body, 1000)
    assert status_of(raised.value) == status and raised.value.message


def test_base64_body_is_decoded_and_garbage_is_rejected():
    assert body_bytes(base64.b64encode(IMAGE).decode(), True) == IMAGE
    with pytest.raises(ServiceError):
        body_bytes("***", True)
