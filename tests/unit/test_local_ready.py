"""The local stack waits on GET /v1/ops/ready: it retries until ready and refuses to start if never ready."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cxr_local.readiness import wait_ready


def serve(statuses: list[int]):
    """A loopback server answering the given statuses in turn (the last one forever); returns (url, seen)."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("x-api-key"))
            status = statuses[min(len(seen), len(statuses)) - 1]
            body = b'{"status": "not_ready", "checks": {"queue": {"ok": false}}}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1/ops/ready", seen


def test_waits_until_ready_with_the_operator_key():
    server, url, seen = serve([503, 503, 200])
    try:
        assert wait_ready(url, {"x-api-key": "op"}, timeout_s=30) == 200
    finally:
        server.shutdown()
    assert seen == ["op", "op", "op"]


def test_a_stack_that_never_gets_ready_does_not_start():
    server, url, _ = serve([503])
    try:
        with pytest.raises(RuntimeError, match="not ready .* 503 .*queue"):
            wait_ready(url, {}, timeout_s=0.5)
    finally:
        server.shutdown()
