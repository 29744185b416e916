"""STOW-RS request bodies: Content-Length or chunked (Orthanc's default), bounded as the bytes arrive.

The gateway's image ships without the local stack, so this is its own reader; the framing rules are those of the
local stack's API (`cxr_local.http_body`): anything a proxy could read differently is refused."""
from __future__ import annotations

import re

_DIGITS = re.compile(rb"[0-9]{1,19}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
MAX_LINE_BYTES = 4096  # a chunk-size line with its extensions, or a trailer field
MAX_TRAILER_FIELDS = 100


class BodyTooLarge(Exception):
    """The declared or streamed size passed the limit (413)."""


class MalformedBody(Exception):
    """Framing a proxy could read differently, broken chunks, or a body that ended early (400)."""


def read_body(headers, rfile, limit: int) -> bytes | None:
    """The body by its framing headers; None when there are none (411). A chunked body is refused as soon as its
    running size passes `limit`, before the chunk that would pass it is read."""
    lengths, codings = headers.get_all("Content-Length") or [], headers.get_all("Transfer-Encoding") or []
    if codings:
        if [part.strip().lower() for value in codings for part in value.split(",")] != ["chunked"]:
            raise MalformedBody(f"unsupported Transfer-Encoding {', '.join(codings)!r}: only chunked")
        if lengths:
            raise MalformedBody("both Content-Length and Transfer-Encoding: chunked")
        return read_chunked(rfile, limit)
    if not lengths:
        return None
    values = {part.strip() for value in lengths for part in value.split(",")}
    if len(values) != 1 or not _DIGITS.fullmatch(next(iter(values)).encode()):
        raise MalformedBody(f"malformed Content-Length {', '.join(lengths)!r}: expected one decimal number")
    length = int(next(iter(values)))
    if length > limit:
        raise BodyTooLarge(length)
    return _exactly(rfile, length)


def _exactly(rfile, length: int) -> bytes:
    data = rfile.read(length) if length else b""
    if len(data) != length:
        raise MalformedBody("the body ended before its declared length")
    return data


def _line(rfile) -> bytes:
    line = rfile.readline(MAX_LINE_BYTES + 1)
    if len(line) > MAX_LINE_BYTES:
        raise MalformedBody("chunk size or trailer line too long")
    if not line.endswith(b"\n"):
        raise MalformedBody("the body ended inside the chunk framing")
    return line.rstrip(b"\r\n")


def read_chunked(rfile, limit: int) -> bytes:
    body = bytearray()
    while True:
        size_text = _line(rfile).split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size_text):
            raise MalformedBody(f"malformed chunk size {size_text[:32].decode('latin-1')!r}")
        size = int(size_text, 16)
        if size == 0:
            for _ in range(MAX_TRAILER_FIELDS):  # trailer fields, ignored, then the final empty line
                if not _line(rfile):
                    return bytes(body)
            raise MalformedBody("too many trailer fields")
        if len(body) + size > limit:
            raise BodyTooLarge(None)
        body += _exactly(rfile, size)
        if _line(rfile):
            raise MalformedBody("chunk data longer than its size")
