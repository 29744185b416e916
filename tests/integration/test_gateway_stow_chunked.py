"""STOW-RS with `Transfer-Encoding: chunked` (Orthanc's default) over a raw socket: accepted as a Content-Length body
is, refused with 413 as soon as the streamed size passes the limit, 400 JSON for broken chunk framing."""
from __future__ import annotations

import http.client
import io
import json
import socket
import uuid

import pydicom
import pytest

from cxr_gateway import stow as stow_module
from tests.gateway_support import study
from tests.integration.test_gateway_dicom import TOKEN, gateway, spooled  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration
BOUNDARY = uuid.uuid4().hex


def multipart(parts: list[bytes]) -> bytes:
    return b"".join(f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n"
                    for part in parts) + f"--{BOUNDARY}--\r\n".encode()


def head(extra: str = "Transfer-Encoding: chunked\r\n") -> bytes:
    return ("POST /studies HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/dicom+json\r\n"
            f"x-api-key: {TOKEN}\r\n"
            f'Content-Type: multipart/related; type="application/dicom"; boundary={BOUNDARY}\r\n{extra}\r\n').encode()


def chunked(body: bytes, sizes: list[int]) -> bytes:
    """body in chunks of the given sizes (the last repeated), lower- and upper-case hex, an extension and a trailer."""
    out, offset, index = b"", 0, 0
    while offset < len(body):
        size = sizes[min(index, len(sizes) - 1)]
        piece = body[offset:offset + size]
        size_line = f"{len(piece):x}" if index % 2 else f"{len(piece):X};note=x"
        out += size_line.encode() + b"\r\n" + piece + b"\r\n"
        offset, index = offset + len(piece), index + 1
    return out + b"0\r\nX-Trailer: ignored\r\n\r\n"


def exchange(gateway, *sends: bytes, shut_write: bool = False) -> tuple[int, dict, dict]:  # noqa: F811
    with socket.create_connection(("127.0.0.1", gateway.http_port), timeout=30) as sock:
        for data in sends:
            sock.sendall(data)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, dict(response.getheaders()), json.loads(response.read())


def test_a_chunked_stow_is_accepted_like_a_content_length_one(gateway):  # noqa: F811
    routed = study()
    status, headers, body = exchange(gateway, head(), chunked(multipart([routed["frontal"], routed["lateral"]]),
                                                              [1, 7, 65536, 4093]))
    assert status == 200 and headers["Content-Type"] == "application/dicom+json", body
    assert len(body["00081199"]["Value"]) == 2
    (stored,) = spooled(gateway)
    assert stored == routed["frontal"]
    assert pydicom.dcmread(io.BytesIO(stored)).ViewPosition == "PA"


def test_a_chunked_body_past_the_limit_is_refused_before_the_rest_is_sent(gateway, monkeypatch):  # noqa: F811
    monkeypatch.setattr(stow_module, "MAX_BODY_BYTES", 64 * 1024)
    first = b"x" * (40 * 1024)
    # the second chunk's size line passes the limit: 413 comes back though its data is never sent
    status, headers, body = exchange(gateway, head(), f"{len(first):x}\r\n".encode() + first + b"\r\n",
                                     f"{40 * 1024:x}\r\n".encode())
    assert (status, body["code"]) == (413, "PAYLOAD_TOO_LARGE") and headers["Connection"] == "close"
    assert headers["Content-Type"] == "application/json" and spooled(gateway) == []


@pytest.mark.parametrize(("framing", "shut_write"), [
    (b"zz\r\nabc\r\n0\r\n\r\n", False),  # not a hex size
    (b"-3\r\nabc\r\n0\r\n\r\n", False),  # a sign
    (b"3\r\nabcdef\r\n0\r\n\r\n", False),  # data longer than its size
    (b"a\r\nabc", True),  # the client stops inside a chunk
], ids=["bad hex", "signed size", "data past its size", "cut short"])
def test_broken_chunk_framing_is_a_400_json_error(gateway, framing, shut_write):  # noqa: F811
    status, headers, body = exchange(gateway, head(), framing, shut_write=shut_write)
    assert (status, body["code"]) == (400, "BAD_REQUEST") and body["error"].startswith("malformed request body")
    assert headers["Content-Type"] == "application/json" and spooled(gateway) == []


@pytest.mark.parametrize(("extra", "status"), [
    ("Transfer-Encoding: gzip, chunked\r\n", 400),
    ("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400),
    ("", 411),
], ids=["another coding", "both headers", "neither header"])
def test_framing_headers_a_proxy_could_read_differently_are_refused(gateway, extra, status):  # noqa: F811
    answer_status, _, body = exchange(gateway, head(extra), b"0\r\n\r\n", shut_write=True)
    assert answer_status == status and body["code"] == ("LENGTH_REQUIRED" if status == 411 else "BAD_REQUEST")
