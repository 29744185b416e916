"""cxr_local's HTTP server on loopback with a recording stand-in for the Lambda invoke: routing, limits, keep-alive."""
from __future__ import annotations

import base64
import http.client
import json
import threading

import pytest

from cxr_local.apigw import PAYLOAD_LIMIT_BYTES, Router
from cxr_local.http_api import ApiServer
from cxr_local.template import Route

ROUTES = [Route("POST", "/v1/jobs", "Submit"), Route("GET", "/v1/jobs/{id}", "Poll")]


@pytest.fixture
def server(tmp_path):
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "index.html").write_text("<h1>cxr</h1>")
    (tmp_path / "secret.txt").write_text("outside the web root")
    events = []

    def invoke(function, event, request_id):
        events.append((function, event))
        if event["rawPath"].endswith("/boom"):
            raise RuntimeError("handler crashed")
        body = base64.b64decode(event["body"]) if event.get("isBase64Encoded") else (event.get("body") or "").encode()
        return {"statusCode": 201, "headers": {"X-Function": function}, "body": json.dumps({"bytes": len(body)})}

    api = ApiServer(("127.0.0.1", 0), Router(ROUTES), invoke, stage="local", static_root=tmp_path / "web",
                    api_id="test", account_id="123456789012", access_log=False)
    threading.Thread(target=api.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield api, events
    api.shutdown()
    api.server_close()


def _connection(api):
    return http.client.HTTPConnection("127.0.0.1", api.server_address[1], timeout=10)


def _request(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def test_routes_reach_the_function_with_a_v2_event_over_one_keep_alive_connection(server):
    api, events = server
    conn = _connection(api)
    status, headers, body = _request(conn, "POST", "/v1/jobs?x=1", b"\x89PNG\x00\xff", {"Content-Type": "image/png"})
    assert status == 201 and json.loads(body) == {"bytes": 6} and headers["X-Function"] == "Submit"
    status, _, _ = _request(conn, "GET", "/v1/jobs/42")
    assert status == 201
    function, event = events[-1]
    assert function == "Poll" and event["pathParameters"] == {"id": "42"} and event["routeKey"] == "GET /v1/jobs/{id}"
    assert events[0][1]["isBase64Encoded"] is True and events[0][1]["queryStringParameters"] == {"x": "1"}
    _, event = events[-1]
    assert event["requestContext"]["stage"] == "$default"
    _request(conn, "GET", "/local/v1/jobs/7")  # the deployed URL form keeps its stage, as on API Gateway
    assert events[-1][1]["rawPath"] == "/local/v1/jobs/7" and events[-1][1]["requestContext"]["stage"] == "local"


def test_unknown_route_404_wrong_method_405_crash_500_all_json(server):
    api, _ = server
    conn = _connection(api)
    for method, path, status, code in [("GET", "/v1/nothing", 404, "NOT_FOUND"),
                                       ("DELETE", "/v1/jobs/1", 405, "METHOD_NOT_ALLOWED"),
                                       ("GET", "/v1/jobs/boom", 500, "INTERNAL_ERROR")]:
        got, headers, body = _request(conn, method, path)
        assert got == status and headers["Content-Type"] == "application/json"
        assert json.loads(body)["code"] == code and json.loads(body)["error"]


def test_oversize_body_is_413_before_the_function_runs(server):
    api, events = server
    conn = _connection(api)
    status, _, body = _request(conn, "POST", "/v1/jobs", b"x" * (PAYLOAD_LIMIT_BYTES + 1),
                               {"Content-Type": "image/png"})
    assert status == 413 and json.loads(body)["code"] == "PAYLOAD_TOO_LARGE" and events == []
    status, _, _ = _request(conn, "POST", "/v1/jobs", b"ok", {"Content-Type": "image/png"})  # connection still usable
    assert status == 201


def test_chunked_upload_is_reassembled(server):
    api, events = server
    conn = _connection(api)
    conn.request("POST", "/v1/jobs", body=iter([b"abc", b"defg"]), headers={"Content-Type": "image/png"},
                 encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 201 and json.loads(response.read()) == {"bytes": 7}


def test_static_web_client_files_and_no_escape(server):
    api, _ = server
    conn = _connection(api)
    status, headers, body = _request(conn, "GET", "/")
    assert status == 200 and body == b"<h1>cxr</h1>" and headers["Content-Type"] == "text/html"
    status, _, _ = _request(conn, "GET", "/../secret.txt")
    assert status == 404
    status, _, _ = _request(conn, "GET", "/%2e%2e/secret.txt")
    assert status == 404


def test_body_past_lambdas_invoke_limit_is_413_though_under_the_gateway_quota(server):
    """5 MB of binary is 6.7 MB of base64 event: Lambda refuses it, so the adapter answers 413 as AWS would."""
    api, events = server
    conn = _connection(api)
    status, _, body = _request(conn, "POST", "/v1/jobs", b"\x00" * (5 * 1024 * 1024), {"Content-Type": "image/png"})
    assert status == 413 and json.loads(body)["code"] == "PAYLOAD_TOO_LARGE" and events == []
    status, _, body = _request(conn, "POST", "/v1/jobs", b"\x00" * (4 * 1024 * 1024), {"Content-Type": "image/png"})
    assert status == 201 and json.loads(body) == {"bytes": 4 * 1024 * 1024}


def _raw(api, payload: bytes) -> tuple[int, dict, bytes]:
    import socket

    with socket.create_connection(("127.0.0.1", api.server_address[1]), timeout=10) as sock:
        sock.sendall(payload)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def test_the_servers_own_refusals_are_json_too(server):
    api, events = server
    cases = {431: b"GET /v1/jobs/1 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
             414: b"GET /v1/jobs/" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
             501: b"BREW /v1/jobs/1 HTTP/1.1\r\nHost: x\r\n\r\n",
             505: b"GET /v1/jobs/1 HTTP/2.0\r\nHost: x\r\n\r\n", 400: b"GARBAGE\r\n\r\n"}
    for status, payload in cases.items():
        got, headers, body = _raw(api, payload)
        assert got == status and headers["Content-Type"] == "application/json", (status, got, body[:200])
        assert json.loads(body)["code"] and json.loads(body)["error"]
    assert not events


def test_head_finds_no_route_as_on_http_api_but_static_files_answer_it(server):
    api, events = server
    conn = _connection(api)
    status, headers, body = _request(conn, "HEAD", "/v1/jobs/1")
    assert status == 404 and headers["Content-Type"] == "application/json" and body == b"" and not events
    assert int(headers["Content-Length"]) > 0  # the length of the JSON a GET-like answer would carry
    assert _request(conn, "HEAD", "/")[0] == 200


def test_header_values_reach_the_function_trimmed(server):
    api, events = server
    _request(_connection(api), "GET", "/v1/jobs/1", headers={"x-api-key": "key-1 \t", "X-Other": "v"})
    assert events[-1][1]["headers"]["x-api-key"] == "key-1"


def test_cors_as_the_template_declares_it(tmp_path):
    from cxr_local.apigw import Cors

    origin = "https://viewer.example.org"
    cors = Cors((origin,), ("GET", "POST", "OPTIONS"), ("content-type", "x-api-key"), ("retry-after",), 600)
    invoked = []

    def invoke(function, event, request_id):
        invoked.append(event)
        return {"statusCode": 200, "headers": {"Access-Control-Allow-Origin": "*"}, "body": "{}"}

    api = ApiServer(("127.0.0.1", 0), Router(ROUTES), invoke, stage="local", static_root=None, api_id="t",
                    account_id="123456789012", access_log=False, cors=cors)
    threading.Thread(target=api.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        conn = _connection(api)
        status, headers, _ = _request(conn, "OPTIONS", "/v1/jobs", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key"})
        assert status == 204 and headers["Access-Control-Allow-Origin"] == origin and not invoked
        assert "x-api-key" in headers["Access-Control-Allow-Headers"] and headers["Access-Control-Max-Age"] == "600"
        status, headers, _ = _request(conn, "GET", "/v1/jobs/1", headers={"Origin": origin})
        assert headers["Access-Control-Allow-Origin"] == origin and headers["Access-Control-Expose-Headers"] == "retry-after"
        _, headers, _ = _request(conn, "GET", "/v1/jobs/1", headers={"Origin": "https://evil.example"})
        assert not any(name.lower().startswith("access-control") for name in headers)  # the function's "*" too
    finally:
        api.shutdown()
        api.server_close()


def test_stopping_answers_requests_in_hand_and_refuses_new_ones(tmp_path):
    release, started = threading.Event(), threading.Event()

    def invoke(function, event, request_id):
        started.set()
        release.wait(10)
        return {"statusCode": 201, "body": "{}"}

    api = ApiServer(("127.0.0.1", 0), Router(ROUTES), invoke, stage="local", static_root=None, api_id="t",
                    account_id="123456789012", access_log=False)
    threading.Thread(target=api.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    idle = _connection(api)
    release.set()
    assert _request(idle, "GET", "/v1/jobs/warm-up")[0] == 201  # opens a keep-alive connection
    release.clear()
    answers = []
    busy = threading.Thread(target=lambda: answers.append(_request(_connection(api), "POST", "/v1/jobs", b"x")[0]))
    started.clear()
    busy.start()
    assert started.wait(10)
    api.stop_accepting()
    assert not api.drain(0.2)  # still in hand
    status, headers, body = _request(idle, "GET", "/v1/jobs/2")  # a keep-alive connection opened before
    assert status == 503 and json.loads(body)["code"] == "SERVICE_UNAVAILABLE"
    release.set()
    busy.join(10)
    assert answers == [201] and api.drain(5)
    api.server_close()


def test_a_body_that_trickles_past_its_deadline_gets_408_and_the_connection_closes(server, monkeypatch):
    import socket
    import time

    from cxr_local import http_api

    monkeypatch.setattr(http_api, "BODY_TIMEOUT_S", 1.0)
    api, events = server
    with socket.create_connection(("127.0.0.1", api.server_address[1]), timeout=10) as sock:
        sock.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nx")
        began = time.monotonic()
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408") and b"REQUEST_TIMEOUT" in answer, answer[:200]
    assert time.monotonic() - began < 5 and events == []
