"""The HTTP side: DICOMweb STOW-RS (POST /studies[/{study}]) with the per-instance response, /health and /metrics."""
from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pydicom.dataset import Dataset

from .http_body import BodyTooLarge, MalformedBody, read_body
from .receiving import ACCEPTED, FAILED, Outcome, Receiver

LOG = logging.getLogger("cxr_gateway")
MAX_BODY_BYTES = 2 * 1024 ** 3
PRIVATE_GROUP, PRIVATE_CREATOR = 0x0009, "CXR GATEWAY"  # per-instance gateway status and skip reason
FAILURE_PROCESSING = 0x0110  # PS3.18 STOW-RS failure reasons
FAILURE_MISMATCH = 0xA900
_STUDIES = re.compile(r"^/studies(?:/(?P<study>[0-9.]+))?/?$")


def split_multipart(body: bytes, boundary: str) -> list[tuple[dict, bytes]]:
    """The parts of a multipart body, each as (lower-cased headers, content)."""
    delimiter = b"--" + boundary.encode()
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk.lstrip(b"\n")
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, content[:-2] if content.endswith(b"\r\n") else content))
    return parts


def _media_params(value: str) -> tuple[str, dict]:
    kind, *params = [piece.strip() for piece in value.split(";")]
    parsed = {}
    for param in params:
        name, _, raw = param.partition("=")
        parsed[name.strip().lower()] = raw.strip().strip('"')
    return kind.lower(), parsed


def response_dataset(outcomes: list[Outcome]) -> Dataset:
    """PS3.18 STOW-RS response: ReferencedSOPSequence (stored; with the gateway's status and any skip reason) and
    FailedSOPSequence (FailureReason)."""
    response, referenced, failed = Dataset(), [], []
    for outcome in outcomes:
        item = Dataset()
        item.ReferencedSOPClassUID = outcome.sop_class_uid or ""
        item.ReferencedSOPInstanceUID = outcome.sop_instance_uid or ""
        block = item.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
        block.add_new(0x10, "CS", "QUEUED" if outcome.status == ACCEPTED else outcome.status.upper())
        if outcome.reason:
            block.add_new(0x11, "LT", outcome.reason)
        if outcome.status == FAILED:
            item.FailureReason = FAILURE_MISMATCH if "request URL" in (outcome.reason or "") else FAILURE_PROCESSING
            failed.append(item)
        else:
            referenced.append(item)
    if referenced:
        response.ReferencedSOPSequence = referenced
    if failed:
        response.FailedSOPSequence = failed
    return response


class _Handler(BaseHTTPRequestHandler):
    server_version = "cxr-gateway"
    protocol_version = "HTTP/1.1"
    timeout = 120  # seconds a connection may sit idle (socket timeout): a stalled client frees its thread

    def log_message(self, fmt, *args):  # no request lines with query strings or headers in the log
        LOG.debug("http %s", fmt % args)

    def _send(self, status: int, body: dict, content_type: str = "application/json") -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, {"error": message, "code": code})

    def _source_allowed(self) -> bool:
        networks = self.server.gateway.allowed_networks
        if not networks:
            return True
        address = ipaddress.ip_address(self.client_address[0])
        return any(address in network for network in networks)

    def _authorised(self) -> bool:
        tokens = self.server.gateway.stow_tokens
        offered = self.headers.get("x-api-key") or ""
        bearer = self.headers.get("Authorization") or ""
        if bearer.lower().startswith("bearer "):
            offered = offered or bearer[7:].strip()
        return bool(offered) and any(hmac.compare_digest(offered.encode(), token.encode()) for token in tokens)

    def do_GET(self):  # noqa: N802 - http.server's naming
        if not self._source_allowed():
            return self._error(403, "FORBIDDEN", "source address not allowed")
        path = self.path.split("?")[0].rstrip("/")
        if path == "/health":
            return self._send(200, self.server.gateway.health())
        if path == "/metrics":
            return self._send(200, self.server.gateway.metrics_view())
        return self._error(404, "NOT_FOUND", f"no route GET {path}")

    def do_POST(self):  # noqa: N802
        if not self._source_allowed():
            return self._error(403, "FORBIDDEN", "source address not allowed")
        match = _STUDIES.match(self.path.split("?")[0])
        if not match:
            return self._error(404, "NOT_FOUND", "STOW-RS is POST /studies or /studies/{StudyInstanceUID}")
        if not self.server.gateway.stow_tokens:
            return self._error(403, "FORBIDDEN", "STOW-RS is disabled: no stow_tokens configured")
        if not self._authorised():
            return self._error(401, "UNAUTHORIZED", "send a STOW token as x-api-key or Authorization: Bearer")
        kind, params = _media_params(self.headers.get("Content-Type", ""))
        if kind != "multipart/related" or not params.get("boundary"):
            return self._error(415, "UNSUPPORTED_MEDIA_TYPE",
                               'expected multipart/related; type="application/dicom"; boundary=...')
        if params.get("type", "application/dicom").lower() != "application/dicom":
            return self._error(415, "UNSUPPORTED_MEDIA_TYPE", "only type=\"application/dicom\" parts are accepted")
        try:
            body = read_body(self.headers, self.rfile, MAX_BODY_BYTES)
        except (MalformedBody, BodyTooLarge) as error:
            self.close_connection = True  # what is left of the body is not read: the connection cannot be reused
            if isinstance(error, BodyTooLarge):
                return self._error(413, "PAYLOAD_TOO_LARGE", f"body over {MAX_BODY_BYTES} bytes")
            return self._error(400, "BAD_REQUEST", f"malformed request body: {error}")
        if body is None:
            return self._error(411, "LENGTH_REQUIRED", "Content-Length or Transfer-Encoding: chunked required")
        parts = split_multipart(body, params["boundary"])
        if not parts:
            return self._error(400, "BAD_REQUEST", "no parts in the multipart body")
        outcomes = []
        for headers, content in parts:
            part_type = _media_params(headers.get("content-type", "application/dicom"))[0]
            if part_type != "application/dicom":
                outcomes.append(Outcome(FAILED, f"part of type {part_type}: only application/dicom is accepted"))
                continue
            outcomes.append(self.server.gateway.receiver.receive(content, expected_study=match["study"]))
        failed = sum(outcome.status == FAILED for outcome in outcomes)
        status = 200 if not failed else (409 if failed == len(outcomes) else 202)
        self._send(status, response_dataset(outcomes).to_json_dict(), "application/dicom+json")


class HttpServer:
    def __init__(self, gateway, host: str, port: int, ssl_context=None) -> None:
        self.server = ThreadingHTTPServer((host, port), _Handler)
        self.server.daemon_threads = True
        self.server.gateway = gateway
        if ssl_context is not None:
            # the handshake runs in the connection's own thread, under its timeout, not in the accept loop, where
            # one client that never sends its ClientHello would block every other connection
            self.server.socket = ssl_context.wrap_socket(self.server.socket, server_side=True,
                                                         do_handshake_on_connect=False)
        self.port = self.server.server_address[1]

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, name="stow-rs",
                         daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
