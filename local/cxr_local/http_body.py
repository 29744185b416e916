"""Request body framing for the local HTTP API: strict Content-Length and chunked parsing, bounded by the gateway
quota as the bytes arrive (a 413 never waits for the end of an oversize body), and per-connection read deadlines."""
from __future__ import annotations

import re
import socket
import threading
import time
from typing import BinaryIO

_DIGITS = re.compile(rb"[0-9]{1,19}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
MAX_CHUNK_LINE = 4096  # a chunk-size line with its extensions; longer is malformed


class FramingError(Exception):
    """Malformed framing (400): a Content-Length or chunk size that is not a plain number, conflicting headers."""


class BodyTooLarge(Exception):
    """The declared or streamed size passed the limit (413); args[0]: the declared length, or None when streamed."""


class ReadTimedOut(Exception):
    """The connection's read deadline passed (408), or the client closed before the body ended."""


def declared_length(content_length: list[str], transfer_encoding: list[str]) -> int | None:
    """The Content-Length the headers declare (None: chunked); FramingError for anything else a proxy could
    read differently (a sign, an exponent, a list of differing values, both headers, an unknown coding)."""
    if transfer_encoding:
        codings = [part.strip().lower() for value in transfer_encoding for part in value.split(",")]
        if codings != ["chunked"]:
            raise FramingError(f"unsupported Transfer-Encoding {', '.join(transfer_encoding)!r}: only chunked")
        if content_length:
            raise FramingError("both Content-Length and Transfer-Encoding: chunked")
        return None
    values = {part.strip() for value in content_length for part in value.split(",")}
    if not values:
        return 0
    if len(values) != 1 or not _DIGITS.fullmatch(next(iter(values)).encode()):
        raise FramingError(f"malformed Content-Length {', '.join(content_length)!r}: expected one decimal number")
    return int(next(iter(values)))


def read_exactly(rfile: BinaryIO, length: int) -> bytes:
    data = rfile.read(length) if length else b""
    if len(data) != length:
        raise ReadTimedOut("the body ended before its declared length")
    return data


def read_chunked(rfile: BinaryIO, limit: int) -> bytes:
    """A chunked body, refused (BodyTooLarge) as soon as its chunks pass `limit`: memory stays below it."""
    chunks, total = [], 0
    while True:
        line = rfile.readline(MAX_CHUNK_LINE + 1)
        if not line.endswith(b"\n"):
            raise ReadTimedOut("the body ended inside a chunk size") if len(line) <= MAX_CHUNK_LINE else \
                FramingError("chunk size line too long")
        size_text = line.split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size_text):
            raise FramingError(f"malformed chunk size {size_text[:32].decode('latin-1')!r}")
        size = int(size_text, 16)
        if size == 0:
            for _ in range(100):  # trailer fields, then the final empty line
                if rfile.readline(MAX_CHUNK_LINE + 1) in (b"\r\n", b"\n", b""):
                    return b"".join(chunks)
            raise FramingError("too many trailer fields")
        total += size
        if total > limit:
            raise BodyTooLarge(None)
        chunks.append(read_exactly(rfile, size))
        if rfile.readline(3) not in (b"\r\n", b"\n"):
            raise FramingError("chunk data longer than its size")


def discard(rfile: BinaryIO, length: int) -> bool:
    """Read and drop `length` bytes in 1 MB steps (memory stays flat); False when the client stopped sending."""
    while length > 0:
        chunk = rfile.read(min(length, 1 << 20))
        if not chunk:
            return False
        length -= len(chunk)
    return True


class Deadlines:
    """One reaper thread for every connection's read deadline: past it, the socket's read side is shut, so the
    handler's blocked read returns and the connection closes (no timer thread per connection)."""

    def __init__(self, tick_s: float = 0.2) -> None:
        self._lock = threading.Lock()
        self._armed: dict[socket.socket, tuple[float, list[bool]]] = {}
        self._tick_s = tick_s
        threading.Thread(target=self._reap, name="http-deadlines", daemon=True).start()

    def arm(self, sock: socket.socket, seconds: float) -> list[bool]:
        """(Re)start the socket's deadline; the returned one-item list turns True once it passed."""
        expired = [False]
        with self._lock:
            self._armed[sock] = (time.monotonic() + seconds, expired)
        return expired

    def expire_all(self) -> None:
        """Every armed deadline passes now (a stopping server: idle keep-alive connections close at once)."""
        with self._lock:
            self._armed = {sock: (0.0, flag) for sock, (_, flag) in self._armed.items()}

    def disarm(self, sock: socket.socket) -> None:
        with self._lock:
            self._armed.pop(sock, None)

    def _reap(self) -> None:
        while True:
            time.sleep(self._tick_s)
            now = time.monotonic()
            with self._lock:
                due = [(sock, flag) for sock, (deadline, flag) in self._armed.items() if deadline <= now]
                for sock, _ in due:
                    del self._armed[sock]
            for sock, flag in due:
                flag[0] = True
                try:
                    sock.shutdown(socket.SHUT_RD)
                except OSError:
                    pass
