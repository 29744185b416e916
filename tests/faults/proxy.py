"""A fault-injecting HTTP proxy between the service and moto: AWS errors, throttling and dropped connections on demand.

Requests are classified by service (the SigV4 credential scope) and operation (X-Amz-Target for DynamoDB and SQS's
JSON protocol, method + path for S3). Rules are set at run time through the control path /__faults__:
  POST   /__faults__  {"rules": [{"service": "sqs", "operation": "SendMessage", "fault": "500", "times": 5}]}
  GET    /__faults__  -> {"rules": [...remaining...], "injected": {"sqs.SendMessage:500": 5}, "seen": {...}}
  DELETE /__faults__  clears the rules (counters stay).
A rule: service ("s3" | "dynamodb" | "sqs" | "*"), operation ("*" or a name), fault ("500" InternalError,
"503" SlowDown/ServiceUnavailable, "throttle" 400 ThrottlingException, "drop" close before forwarding,
"drop_after" forward then close without answering: the call took effect but the client never hears so, "delay"
forward after "seconds" (keeps work in flight for kill tests), "conflict" a DynamoDB transaction cancelled with
TransactionConflict for each of its "items" (default 2)), and
either "times" (the next N matching requests) or "probability" (0..1, until cleared).
Run standalone: `python -m tests.faults.proxy --upstream http://127.0.0.1:5000 --port 0 --ready-file F`.
"""
from __future__ import annotations

import argparse
import http.client
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from tests.faults.fault_rules import FaultRules, classify, error_response

CONTROL_PATH = "/__faults__"
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "content-length"}


class FaultProxy(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, upstream: str, host: str = "127.0.0.1", port: int = 0, seed: int = 0) -> None:
        target = urlsplit(upstream)
        self.upstream = (target.hostname, target.port or 80)
        self.rules = FaultRules(seed)
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]}:{self.server_address[1]}"

    def start(self) -> "FaultProxy":
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultProxy

    def log_message(self, *_args) -> None:  # quiet: the counters tell the story
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _control(self, body: bytes) -> None:
        rules = self.server.rules
        try:
            if self.command == "POST":
                rules.set(json.loads(body or b"{}").get("rules", []))
            elif self.command == "DELETE":
                rules.set([])
        except (ValueError, TypeError) as error:
            self._reply(400, {"Content-Type": "application/json"}, json.dumps({"error": str(error)}).encode())
            return
        self._reply(200, {"Content-Type": "application/json"}, json.dumps(rules.state()).encode())

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def _handle(self) -> None:
        body = self._body()
        if self.path.split("?")[0] == CONTROL_PATH:
            self._control(body)
            return
        service, operation = classify(self.command, self.path, self.headers)
        rule = self.server.rules.pick(service, operation) or {}
        fault = rule.get("fault")
        if fault == "delay":
            time.sleep(float(rule.get("seconds", 1.0)))
        if fault == "drop":
            self._drop()
            return
        if fault in ("500", "503", "throttle", "conflict"):
            self._reply(*error_response(service, fault, int(rule.get("items", 2))))
            return
        try:
            status, headers, payload = self._forward(body)
        except OSError as error:
            self._reply(502, {"Content-Type": "text/plain"}, f"upstream unreachable: {error}".encode())
            return
        if fault == "drop_after":
            self._drop()
            return
        self._reply(status, {k: v for k, v in headers if k.lower() not in _HOP_BY_HOP}, payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _handle


class ProxyControl:
    """Client for a proxy's control path."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _call(self, method: str, payload: dict | None = None) -> dict:
        target = urlsplit(self.url)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        try:
            body = json.dumps(payload).encode() if payload is not None else None
            connection.request(method, CONTROL_PATH, body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = json.loads(response.read())
            if response.status != 200:
                raise ValueError(answer)
            return answer
        finally:
            connection.close()

    def set(self, *rules: dict) -> dict:
        return self._call("POST", {"rules": list(rules)})

    def clear(self) -> dict:
        return self._call("DELETE")

    def state(self) -> dict:
        return self._call("GET")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:5000 (moto)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="seed of the probability rules")
    parser.add_argument("--ready-file", type=Path, help="write {'url': ...} here once listening")
    args = parser.parse_args(argv)
    proxy = FaultProxy(args.upstream, args.host, args.port, args.seed)
    if args.ready_file:
        args.ready_file.write_text(json.dumps({"url": proxy.url}))
    print(f"fault proxy {proxy.url} -> {args.upstream}", flush=True)
    try:
        proxy.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
