"""cxr CLI against a scripted HTTP server on loopback: headers, retries, and the exit code for each API outcome."""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cxr_cli import exit_codes
from cxr_cli.__main__ import main
from cxr_cli.api import Client

JOB = "0b8e6a64-5f0e-4c4b-9d1c-2f4f3c1e9a10"
OUTPUT = {f"label{i:02d}": i / 17 for i in range(18)}
RESULT = {"job_id": JOB, "top_label": "label17", "output": OUTPUT,
          "model": {"name": "densenet121-res224-all", "weights": "random-init"}}


class ScriptedApi(ThreadingHTTPServer):
    """Answers each (method, path) with the next scripted reply; the last one repeats. Records every request."""
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.replies: dict[tuple[str, str], list[tuple[int, dict, dict]]] = {}
        self.requests: list[tuple[str, str, dict, bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def script(self, method: str, path: str, *replies) -> None:
        self.replies[(method, path)] = [r if len(r) == 3 else (*r, {}) for r in replies]


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedApi

    def log_message(self, *args) -> None:
        pass

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append((self.command, self.path, dict(self.headers), body))
        queue = self.server.replies.get((self.command, self.path.split("?")[0])) or [(404, {"error": "no route", "code": "NOT_FOUND"}, {})]
        status, payload, headers = queue.pop(0) if len(queue) > 1 else queue[0]
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


@pytest.fixture
def api():
    server = ScriptedApi()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    return path


def cxr(api, *args: str) -> int:
    return main([*args, "--endpoint", api.url])


def test_api_key_is_sent_as_x_api_key_only_when_given(api, monkeypatch):
    monkeypatch.delenv("CXR_API_KEY", raising=False)
    api.script("GET", f"/v1/jobs/{JOB}", (200, {"id": JOB, "status": "QUEUED"}))
    assert cxr(api, "status", JOB) == exit_codes.OK
    assert cxr(api, "status", JOB, "--api-key", "k-123") == exit_codes.OK
    monkeypatch.setenv("CXR_API_KEY", "k-env")
    assert cxr(api, "status", JOB) == exit_codes.OK
    keys = [{k.lower(): v for k, v in headers.items()}.get("x-api-key") for _, _, headers, _ in api.requests]
    assert keys == [None, "k-123", "k-env"]


def test_throttled_requests_are_retried_after_retry_after(api):
    api.script("GET", f"/v1/jobs/{JOB}", (429, {"error": "slow down", "code": "THROTTLED"}, {"Retry-After": "0.2"}),
               (503, {"error": "busy", "code": "SERVICE_UNAVAILABLE"}, {"Retry-After": "0.1"}),
               (200, {"id": JOB, "status": "COMPLETED"}))
    slept = []
    job = Client(api.url, sleep=slept.append).job(JOB)
    assert job["status"] == "COMPLETED" and slept == [0.2, 0.1]


def test_submit_sends_raw_bytes_with_the_sniffed_type_and_wait_reports_a_failed_job(api, png, capsys):
    api.script("POST", "/v1/jobs", (201, {"id": JOB, "status": "QUEUED", "created_at": "t"}))
    api.script("GET", f"/v1/jobs/{JOB}", (200, {"id": JOB, "status": "IN_PROGRESS"}),
               (200, {"id": JOB, "status": "FAILED", "error": "poison image"}))
    assert cxr(api, "submit", str(png), "--wait", "--timeout", "10") == exit_codes.JOB_FAILED
    method, path, headers, body = api.requests[0]
    assert (method, path, headers["Content-Type"], body) == ("POST", "/v1/jobs", "image/png", png.read_bytes())
    captured = capsys.readouterr()
    assert "FAILED" in captured.out and "poison image" in captured.err


def test_result_of_a_failed_job_exits_1_and_of_a_running_job_exits_6(api, capsys):
    not_ready = (409, {"error": "not yet", "code": "RESULT_NOT_READY"})
    api.script("GET", f"/v1/jobs/{JOB}/result", not_ready)
    api.script("GET", f"/v1/jobs/{JOB}", (200, {"id": JOB, "status": "FAILED", "error": "bad pixels"}),
               (200, {"id": JOB, "status": "QUEUED"}))
    assert cxr(api, "result", JOB) == exit_codes.JOB_FAILED
    assert "bad pixels" in capsys.readouterr().err
    assert cxr(api, "result", JOB) == exit_codes.NOT_READY
    assert "QUEUED" in capsys.readouterr().err


def test_waiting_past_the_timeout_exits_4(api):
    api.script("GET", f"/v1/jobs/{JOB}", (200, {"id": JOB, "status": "QUEUED"}))
    assert cxr(api, "status", JOB, "--wait", "--timeout", "0.3") == exit_codes.TIMEOUT


def test_unknown_job_exits_5_but_a_wrong_route_is_an_api_error(api):
    api.script("GET", f"/v1/jobs/{JOB}", (404, {"error": "no job", "code": "JOB_NOT_FOUND"}))
    assert cxr(api, "status", JOB) == exit_codes.NOT_FOUND
    assert main(["status", JOB, "--endpoint", api.url + "/wrong-stage"]) == exit_codes.API_ERROR


def test_cached_answer_prints_its_result_without_waiting(api, png, capsys):
    api.script("POST", "/v1/jobs", (200, {"id": JOB, "status": "COMPLETED", "cached": True, "result": RESULT}))
    assert cxr(api, "submit", str(png), "--json") == exit_codes.OK
    record = json.loads(capsys.readouterr().out)
    assert record["cached"] is True and record["result"] == RESULT and record["exit_code"] == 0
    assert [r[0] for r in api.requests] == ["POST"]  # no polling for an answer already in hand


def test_wait_long_polls_with_the_wait_parameter(api):
    api.script("GET", f"/v1/jobs/{JOB}", (200, {"id": JOB, "status": "COMPLETED"}))
    assert cxr(api, "status", JOB, "--wait", "--timeout", "60") == exit_codes.OK
    assert [path for _, path, _, _ in api.requests] == [f"/v1/jobs/{JOB}?wait=20"]


def test_a_server_that_ignores_wait_is_not_polled_in_a_tight_loop(api):
    api.script("GET", f"/v1/jobs/{JOB}", (200, {"id": JOB, "status": "QUEUED"}), (200, {"id": JOB, "status": "QUEUED"}),
               (200, {"id": JOB, "status": "COMPLETED"}))
    slept = []
    job = Client(api.url, sleep=slept.append).wait(JOB, 60)
    assert job["status"] == "COMPLETED" and slept == [0.2, 0.2 * 1.5]


def test_small_files_go_inline_and_large_ones_through_a_presigned_upload(api, tmp_path):
    small, large = tmp_path / "small.png", tmp_path / "large.dcm"
    small.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    large.write_bytes(b"\x00" * 128 + b"DICM" + b"\x01" * 400)
    api.script("POST", "/v1/uploads", (201, {"upload_id": "u-1", "method": "PUT", "url": f"{api.url}/bucket/u-1",
                                             "headers": {"Content-Type": "application/dicom"}}))
    api.script("PUT", "/bucket/u-1", (200, {}))
    api.script("POST", "/v1/jobs", (201, {"id": JOB, "status": "QUEUED", "created_at": "t"}))
    assert main(["--inline-limit", "300", "--endpoint", api.url, "submit", str(small), str(large)]) == exit_codes.OK
    calls = [(method, path, headers.get("Content-Type"), body) for method, path, headers, body in api.requests]
    assert ("POST", "/v1/jobs", "image/png", small.read_bytes()) in calls
    assert ("PUT", "/bucket/u-1", "application/dicom", large.read_bytes()) in calls
    declared = json.dumps({"content_type": "application/dicom", "size": len(large.read_bytes()),
                           "sha256": hashlib.sha256(large.read_bytes()).hexdigest()}).encode()
    assert ("POST", "/v1/uploads", "application/json", declared) in calls
    assert ("POST", "/v1/jobs", "application/json", b'{"upload_id": "u-1"}') in calls
    assert len(calls) == 4


def test_connection_options_before_the_command_and_an_endpoint_without_scheme(api, capsys):
    api.script("GET", f"/v1/jobs/{JOB}", (200, {"id": JOB, "status": "QUEUED"}))
    host = api.url.removeprefix("http://")
    assert main(["--endpoint", host, "--api-key", "k-front", "status", JOB]) == exit_codes.OK
    assert main(["--endpoint", "http://wrong:1", "status", JOB, "--endpoint", api.url]) == exit_codes.OK  # after wins
    assert {k.lower(): v for k, v in api.requests[0][2].items()}["x-api-key"] == "k-front"
    assert main(["--endpoint", "ftp://x", "status", JOB]) == exit_codes.USAGE
    assert "expected http://HOST" in capsys.readouterr().err
