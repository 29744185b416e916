"""Issue 25 items 1, 8, 9 over raw sockets against the running stack: body framing, size limit before any auth,
read deadlines and a bounded worker pool, no software versions, no echo of a huge path."""
from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import psutil
import pytest

from cxr_local.apigw import PAYLOAD_LIMIT_BYTES
from cxr_local.http_api import HEADER_TIMEOUT_S, WORKER_THREADS

pytestmark = pytest.mark.e2e


def connect(stack, timeout_s: float = 15) -> socket.socket:
    parts = urlsplit(stack.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=timeout_s)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response (Content-Length framed, as the API always answers)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without an answer after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside the body"
        body += chunk
    return int(lines[0].split()[1]), headers, body


def exchange(stack, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send a request head (no key: nothing reaches auth) and what follows it, and read the answer without
    closing our side: a server that waits for the client's close would time the test out."""
    with connect(stack) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        return read_response(sock)


def assert_json(status: int, headers: dict, body: bytes, expected: int, code: str) -> None:
    assert status == expected, (status, body)
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["code"] == code


@pytest.mark.parametrize("value", ["-1", "abc", "1e3", "+5", "5, 6"])
def test_malformed_content_length_is_400_json(local_stack, value):
    status, headers, body = exchange(local_stack, f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: {value}\r\n"
                                                  "Content-Type: image/png\r\n", b"12345")
    assert_json(status, headers, body, 400, "BAD_REQUEST")


@pytest.mark.parametrize("size_line", [b"-1", b"zz", b"0x10", b""])
def test_malformed_chunk_size_is_400_json(local_stack, size_line):
    status, headers, body = exchange(local_stack, "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                                  "Content-Type: image/png\r\n", size_line + b"\r\nabcd\r\n")
    assert_json(status, headers, body, 400, "BAD_REQUEST")


def test_declared_oversize_is_413_at_once_before_any_body(local_stack):
    began = time.monotonic()
    status, headers, body = exchange(local_stack, f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\n"
                                                  f"Content-Length: {PAYLOAD_LIMIT_BYTES + 1}\r\n")
    assert_json(status, headers, body, 413, "PAYLOAD_TOO_LARGE")
    assert time.monotonic() - began < 5


def test_streamed_oversize_is_413_before_the_body_ends_and_memory_stays_flat(local_stack):
    api = psutil.Process(local_stack.info["pid"])
    rss_before = api.memory_info().rss
    chunk = b"x" * (1 << 20)
    with connect(local_stack) as sock:
        sock.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(PAYLOAD_LIMIT_BYTES // len(chunk) + 2):  # never the terminating 0 chunk
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except OSError:  # the server answered and closed while we were still sending
            pass
        status, headers, body = read_response(sock)
    assert_json(status, headers, body, 413, "PAYLOAD_TOO_LARGE")
    assert api.memory_info().rss - rss_before < 3 * PAYLOAD_LIMIT_BYTES


def test_idle_and_slow_header_connections_are_closed(local_stack):
    with connect(local_stack, timeout_s=HEADER_TIMEOUT_S + 10) as idle, \
            connect(local_stack, timeout_s=HEADER_TIMEOUT_S + 10) as slow:
        slow.sendall(b"GET /v1/ops/health HTTP/1.1\r\nHost: x\r\n")
        began = time.monotonic()
        deadline = began + HEADER_TIMEOUT_S + 8
        while time.monotonic() < deadline:  # one header byte a second keeps no connection alive
            try:
                slow.sendall(b"X")
            except OSError:
                break
            time.sleep(1)
        assert idle.recv(1) == b""  # closed by the server, without an answer
        answer = b""
        try:
            while chunk := slow.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        assert time.monotonic() - began < HEADER_TIMEOUT_S + 8
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_many_idle_connections_do_not_make_threads(local_stack):
    api = psutil.Process(local_stack.info["pid"])
    before = api.num_threads()
    sockets = [connect(local_stack) for _ in range(300)]
    try:
        end = time.monotonic() + 2  # sampled while the server accepts them all: a bound, not an event to await
        most = before
        while time.monotonic() < end:
            most = max(most, api.num_threads())
        assert most - before <= WORKER_THREADS, (before, most)
    finally:
        for sock in sockets:
            sock.close()


@pytest.mark.parametrize("path", ["/v1/nowhere/", "/v1/jobs/", "/v1/jobs/x/result?id="])
def test_no_server_version_and_no_huge_echo(local_stack, path):
    key = local_stack.auth_headers.get("x-api-key", "")
    status, headers, body = exchange(local_stack, f"GET {path}{'a' * 9000} HTTP/1.1\r\nHost: x\r\nx-api-key: {key}\r\n")
    assert status in (400, 404) and len(body) < 1024, (status, len(body))
    assert "python" not in headers.get("server", "").lower() and "/" not in headers.get("server", "")
