"""A threaded HTTP/1.1 server that plays API Gateway for the template's HttpApi routes (plus static web files)."""
from __future__ import annotations

import logging
import mimetypes
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

from .apigw import (LAMBDA_INVOKE_LIMIT_BYTES, PAYLOAD_LIMIT_BYTES, Cors, HttpResponse, Router, build_event,
                    error_response, event_too_large_for_lambda, map_result)
from .http_body import (BodyTooLarge, Deadlines, FramingError, ReadTimedOut, declared_length, discard,
                        read_chunked, read_exactly)
from .lambdas import LambdaError

log = logging.getLogger("cxr_local.http")

_DRAIN_LIMIT_BYTES = 64 * 1024 * 1024  # an oversize body up to this is read and dropped after the 413 (no reset)
HEADER_TIMEOUT_S = 10.0  # request line and headers, and an idle keep-alive connection's wait for its next request
BODY_TIMEOUT_S = 30.0  # the whole body (10 MB at the gateway quota: ~350 KB/s at least)
WORKER_THREADS = 64  # connections served at once; more wait (their header deadline running) for a free thread


class ApiServer(HTTPServer):
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], router: Router, invoke: Callable[[str, dict, str], object],
                 stage: str, static_root: Path | None, api_id: str, account_id: str, access_log: bool,
                 cors: Cors | None = None) -> None:
        super().__init__(address, _Handler)
        self.deadlines = Deadlines()
        self._pool = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="http")
        self.router, self.invoke, self.stage, self.cors = router, invoke, stage, cors
        self.static_root = static_root.resolve() if static_root and static_root.is_dir() else None
        self.api_id, self.account_id, self.access_log = api_id, account_id, access_log
        self.stopping = False
        self._active = 0
        self._idle = threading.Condition()

    def process_request(self, request, client_address) -> None:
        """A bounded pool serves connections (not a thread each): 1,000 idle sockets cost no thread, and each
        is closed once its header deadline passes, waiting or not."""
        self.deadlines.arm(request, HEADER_TIMEOUT_S)
        self._pool.submit(self._serve_connection, request, client_address)

    def _serve_connection(self, request, client_address) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - one broken connection never stops the server
            self.handle_error(request, client_address)
        finally:
            self.deadlines.disarm(request)
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        self.deadlines.expire_all()  # idle connections' threads return, so the process exits without waiting
        self._pool.shutdown(wait=False, cancel_futures=True)

    @contextmanager
    def in_flight(self):
        with self._idle:
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def stop_accepting(self) -> None:
        """No new connections, and requests that arrive on open ones get 503; those in hand carry on."""
        self.stopping = True
        self.shutdown()

    def drain(self, timeout_s: float) -> bool:
        """Wait until the requests in hand are answered; False if some still run after timeout_s."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout_s)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: ApiServer
    _expired = [False]

    def version_string(self) -> str:
        return "cxr-local"  # no software versions in the Server header

    def handle_one_request(self) -> None:
        self._expired = self.server.deadlines.arm(self.connection, HEADER_TIMEOUT_S)
        super().handle_one_request()

    def do_GET(self) -> None: self._dispatch()  # noqa: E704
    def do_POST(self) -> None: self._dispatch()  # noqa: E704
    def do_PUT(self) -> None: self._dispatch()  # noqa: E704
    def do_PATCH(self) -> None: self._dispatch()  # noqa: E704
    def do_DELETE(self) -> None: self._dispatch()  # noqa: E704
    def do_OPTIONS(self) -> None: self._dispatch()  # noqa: E704
    def do_HEAD(self) -> None: self._dispatch()  # noqa: E704

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        if self.server.access_log:
            log.info("%s %s", self.address_string(), format % args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (431, 414, 501, 505, malformed requests) in the API's JSON error shape."""
        try:
            status = HTTPStatus(code)
            name, phrase = status.name, status.phrase
        except ValueError:
            name, phrase = "ERROR", "Error"
        self.close_connection = True
        if self._expired[0]:
            code, name, phrase, message = 408, "REQUEST_TIMEOUT", "Request Timeout", None
        if not getattr(self, "command", None):
            self.command = ""
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":  # unparsed yet: answer with a status line
            self.request_version = "HTTP/1.1"
        self._send(error_response(code, name, message or phrase))

    def _dispatch(self) -> None:
        with self.server.in_flight():
            if self._expired[0]:  # the header deadline passed while the headers trickled in
                self.send_error(408)
                return
            body = self._body()  # framing and size before routing and before any function (auth) runs
            if body is None:
                return
            if self.server.stopping:
                self.close_connection = True
                self._send(error_response(503, "SERVICE_UNAVAILABLE", "the local stack is stopping"))
                return
            self._route(body)

    def _route(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        raw_path, raw_query = parts.path or "/", parts.query
        route_path, stage = raw_path, "$default"
        prefix = f"/{self.server.stage}/"
        if raw_path.startswith(prefix):  # the deployed URL form: https://host/<stage>/v1/...
            route_path, stage = raw_path[len(prefix) - 1:], self.server.stage
        cors = self.server.cors
        origin = self.headers.get("Origin")
        if cors and self.command == "OPTIONS" and self.headers.get("Access-Control-Request-Method"):
            # a preflight: API Gateway answers it itself, no route or function involved
            self._send(cors.preflight(origin))
            return
        match, path_known = self.server.router.match(self.command, unquote(route_path))
        if match is None:
            response = self._static(route_path) if self.command in ("GET", "HEAD") and not path_known else None
            if response is None:
                # HTTP API has no implicit HEAD: a method no route declares finds no route
                response = (error_response(405, "METHOD_NOT_ALLOWED", f"{self.command} not allowed on {route_path}")
                            if path_known and self.command != "HEAD"
                            else error_response(404, "NOT_FOUND", f"no route for {self.command} {_short(route_path)}"))
            self._send(cors.decorate(response, origin) if cors else response)
            return
        request_id = str(uuid.uuid4())
        event = build_event(method=self.command, raw_path=raw_path, raw_query=raw_query,
                            headers=list(self.headers.items()), body=body, match=match,
                            source_ip=self.client_address[0], stage=stage, api_id=self.server.api_id,
                            account_id=self.server.account_id, domain_name=_host_without_port(self.headers.get("Host")),
                            port=self.server.server_address[1],
                            request_id=request_id)
        if event_too_large_for_lambda(event):
            self._send(error_response(413, "PAYLOAD_TOO_LARGE",
                                      f"request too large for a Lambda invocation ({LAMBDA_INVOKE_LIMIT_BYTES} bytes "
                                      "of event; binary bodies are base64-encoded): use a presigned upload"))
            return
        began = time.perf_counter()
        try:
            result = self.server.invoke(match.route.function, event, request_id)
            response = map_result(result)
        except LambdaError as error:
            log.error("%s failed (request %s):\n%s", match.route.function, request_id, error)
            response = (error_response(504, "GATEWAY_TIMEOUT", "the function timed out") if error.timed_out
                        else error_response(500, "INTERNAL_ERROR", "Internal Server Error"))
        except Exception:  # noqa: BLE001 - a crashing Lambda is a 500, as on API Gateway
            log.error("%s raised:\n%s", match.route.function, traceback.format_exc())
            response = error_response(500, "INTERNAL_ERROR", "Internal Server Error")
        if self.server.access_log:  # Lambda's own REPORT line, so the handler's share of a request shows
            log.info("REPORT RequestId: %s Function: %s Duration: %.2f ms", request_id, match.route.function,
                     (time.perf_counter() - began) * 1000)
        response.headers.append(("apigw-requestid", request_id))
        self._send(cors.decorate(response, origin) if cors else response)

    def _body(self) -> bytes | None:
        """The request body, or None once a 400 (framing), 413 (size) or 408 (deadline) has been answered."""
        self._expired = self.server.deadlines.arm(self.connection, BODY_TIMEOUT_S)
        try:
            length = declared_length(self.headers.get_all("Content-Length") or [],
                                     self.headers.get_all("Transfer-Encoding") or [])
            if length is None:
                return read_chunked(self.rfile, PAYLOAD_LIMIT_BYTES)
            if length > PAYLOAD_LIMIT_BYTES:
                raise BodyTooLarge(length)
            return read_exactly(self.rfile, length)
        except FramingError as error:
            self.close_connection = True
            self._send(error_response(400, "BAD_REQUEST", f"malformed request framing: {error}"))
        except BodyTooLarge as error:
            self.close_connection = True  # answered at once; the rest of a declared body is dropped, unread ones reset
            self._send(error_response(413, "PAYLOAD_TOO_LARGE",
                                      f"request body exceeds the API Gateway limit of {PAYLOAD_LIMIT_BYTES} bytes"))
            if error.args[0] is not None and error.args[0] <= _DRAIN_LIMIT_BYTES:
                discard(self.rfile, error.args[0])
        except ReadTimedOut:
            self.close_connection = True
            if self._expired[0]:
                self._send(error_response(408, "REQUEST_TIMEOUT",
                                          f"the request body did not arrive within {BODY_TIMEOUT_S:g} s"))
        finally:
            self.server.deadlines.disarm(self.connection)
        return None

    def _static(self, path: str) -> HttpResponse | None:
        root = self.server.static_root
        if root is None:
            return None
        relative = unquote(path).lstrip("/") or "index.html"
        try:
            target = (root / relative).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_relative_to(root) or not target.is_file():
                return None
        except OSError:  # a name too long for the file system is no file of ours
            return None
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return HttpResponse(200, [("Content-Type", content_type)], target.read_bytes())

    def _send(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        if self.server.stopping:
            self.close_connection = True


def _host_without_port(host: str | None) -> str:
    if not host:
        return "localhost"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _short(text: str, limit: int = 200) -> str:
    """A client-sent value echoed in an error, cut so a 9 KB path does not come back in full."""
    return text if len(text) <= limit else text[:limit] + "..."
