"""API Gateway HTTP API (payload format 2.0) emulation: routing, request -> event, Lambda result -> HTTP response."""
from __future__ import annotations

import base64
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

from .template import Route

PAYLOAD_LIMIT_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API request payload quota
# Lambda refuses a synchronous invocation whose event JSON exceeds 6 MB; a base64-encoded binary body grows by
# 4/3, so API Gateway -> Lambda carries binary bodies up to ~4.4 MB, whatever the 10 MB gateway quota says.
LAMBDA_INVOKE_LIMIT_BYTES = 6 * 1024 * 1024
_TEXT_TYPES = re.compile(r"^(text/.*|application/(json|xml|javascript|[\w.+-]+\+(json|xml)))$")


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    path_parameters: dict[str, str]


class Router:
    """Matches a method and path against the template's routes the way HTTP API does (exact beats {param})."""

    def __init__(self, routes: list[Route]) -> None:
        compiled = []
        for route in routes:
            pattern = re.sub(r"\\\{([A-Za-z0-9_]+)\\\+\\\}", r"(?P<\1>.+)", re.escape(route.path))
            pattern = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", pattern)
            specificity = (route.path.count("{") == 0, -route.path.count("{"), len(route.path))
            compiled.append((specificity, re.compile(f"^{pattern}$"), route))
        self._routes = sorted(compiled, key=lambda item: item[0], reverse=True)

    def match(self, method: str, path: str) -> tuple[RouteMatch | None, bool]:
        """Return (match, path_known): path_known is True when some route has this path (for 405 vs 404)."""
        path_known = False
        for _, pattern, route in self._routes:
            found = pattern.match(path)
            if not found:
                continue
            path_known = True
            if route.method in (method.upper(), "ANY"):
                return RouteMatch(route, found.groupdict()), True
        return None, path_known


def is_text_content(content_type: str | None) -> bool:
    return bool(content_type) and bool(_TEXT_TYPES.match(content_type.split(";", 1)[0].strip().lower()))


def build_event(*, method: str, raw_path: str, raw_query: str, headers: list[tuple[str, str]], body: bytes,
                match: RouteMatch, source_ip: str, stage: str = "$default", api_id: str = "local",
                account_id: str = "123456789012", domain_name: str = "localhost", port: int = 80,
                now: float | None = None, request_id: str | None = None) -> dict[str, Any]:
    """The event an HTTP API (payload v2.0) hands to its Lambda integration for this request."""
    now = time.time() if now is None else now
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        value = value.strip(" \t")  # API Gateway hands header values over without surrounding whitespace
        if key == "cookie":
            cookies += [part.strip() for part in value.split(";") if part.strip()]
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    # what API Gateway adds on its way to the integration
    forwarded = merged.get("x-forwarded-for")
    merged["x-forwarded-for"] = f"{forwarded}, {source_ip}" if forwarded else source_ip
    merged.setdefault("x-forwarded-proto", "http")
    merged.setdefault("x-forwarded-port", str(port))
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    request_id = request_id or str(uuid.uuid4())
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": match.route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "domainName": domain_name,
            "domainPrefix": domain_name.split(".", 1)[0],
            "http": {"method": method.upper(), "path": raw_path, "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": merged.get("user-agent", "")},
            "requestId": request_id,
            "routeKey": match.route.route_key,
            "stage": stage,
            "time": datetime.fromtimestamp(now, timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if match.path_parameters:
        event["pathParameters"] = match.path_parameters
    if body:
        text = _as_text(body) if is_text_content(merged.get("content-type")) else None
        if text is None:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode("ascii"), True
        else:
            event["body"] = text
    return event


def event_too_large_for_lambda(event: dict[str, Any]) -> bool:
    body = event.get("body") or ""
    if len(body) < LAMBDA_INVOKE_LIMIT_BYTES - 512 * 1024:  # the rest of an event is far below the margin
        return False
    return len(json.dumps(event).encode()) > LAMBDA_INVOKE_LIMIT_BYTES


def _as_text(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def map_result(result: Any) -> HttpResponse:
    """Turn a Lambda return value into the HTTP response API Gateway (payload v2.0) would send."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # HTTP API infers a 200 JSON response from anything that is not a {statusCode, ...} object
        text = result if isinstance(result, str) else json.dumps(result)
        return HttpResponse(200, [("Content-Type", "application/json")], text.encode())
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    headers = [(str(name), str(value)) for name, value in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers += [(str(name), str(value)) for value in values]
    headers += [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or []]
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return HttpResponse(int(result["statusCode"]), headers, data)


@dataclass(frozen=True)
class Cors:
    """The HttpApi's CorsConfiguration as API Gateway applies it: preflights answered by the gateway, the allowed
    origin echoed on every response (the integration's own CORS headers replaced)."""
    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None

    @classmethod
    def from_template(cls, config: dict | None) -> "Cors | None":
        if not config or not config.get("AllowOrigins"):
            return None
        return cls(tuple(config["AllowOrigins"]), tuple(config.get("AllowMethods") or ()),
                   tuple(h.lower() for h in config.get("AllowHeaders") or ()),
                   tuple(config.get("ExposeHeaders") or ()), config.get("MaxAge"))

    def _allowed(self, origin: str | None) -> str | None:
        if not origin:
            return None
        return "*" if "*" in self.allow_origins else origin if origin in self.allow_origins else None

    def preflight(self, origin: str | None) -> HttpResponse:
        allowed = self._allowed(origin)
        if allowed is None:
            return HttpResponse(204)
        headers = [("Access-Control-Allow-Origin", allowed)]
        if self.allow_methods:
            headers.append(("Access-Control-Allow-Methods", ",".join(self.allow_methods)))
        if self.allow_headers:
            headers.append(("Access-Control-Allow-Headers", ",".join(self.allow_headers)))
        if self.max_age is not None:
            headers.append(("Access-Control-Max-Age", str(self.max_age)))
        return HttpResponse(204, headers)

    def decorate(self, response: HttpResponse, origin: str | None) -> HttpResponse:
        headers = [(n, v) for n, v in response.headers if not n.lower().startswith("access-control-")]
        allowed = self._allowed(origin)
        if allowed is not None:
            headers.append(("Access-Control-Allow-Origin", allowed))
            if self.expose_headers:
                headers.append(("Access-Control-Expose-Headers", ",".join(self.expose_headers)))
        return HttpResponse(response.status, headers, response.body)


def error_response(status: int, code: str, message: str) -> HttpResponse:
    body = json.dumps({"error": message, "code": code}).encode()
    return HttpResponse(status, [("Content-Type", "application/json")], body)


class LambdaContext:
    """The attributes and method handlers read from the Lambda context object."""

    def __init__(self, function_name: str, memory_mb: int, timeout_s: int, region: str, account_id: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
