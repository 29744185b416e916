"""What the HTTP handlers share: JSON responses, the one mapping of domain error kinds to status and headers, and
the audit line of each request."""
from __future__ import annotations

import functools
import json
import logging
from typing import Callable

from aws_lambda_powertools.event_handler import Response, content_types
from botocore.exceptions import ClientError, ConnectionError as AwsConnectionError, HTTPClientError
from pynamodb.exceptions import PynamoDBConnectionError

from cxr_core.audit import AuditEntry
from cxr_core.domain import ErrorKind, ServiceError, bad_request, unavailable
from cxr_core.ports import AuditLog

THROTTLING_CODES = {"Throttling", "ThrottlingException", "ProvisionedThroughputExceededException",
                    "RequestLimitExceeded", "SlowDown", "TooManyRequestsException", "RequestThrottled"}
SERVER_ERROR_CODES = {"InternalError", "InternalServerError", "InternalFailure", "ServiceUnavailable"}


def is_outage(error: BaseException | None) -> bool:
    """An AWS dependency that failed or throttled (after botocore's own retries): worth a retry, not a bug."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (AwsConnectionError, HTTPClientError, PynamoDBConnectionError)):
            return True
        if isinstance(error, ClientError):
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            code = error.response.get("Error", {}).get("Code")
            if status >= 500 or code in THROTTLING_CODES or code in SERVER_ERROR_CODES:
                return True
            if status:  # pynamodb's re-raise drops the status; its __cause__ still has it
                return False
        error = getattr(error, "cause", None) or error.__cause__
    return False


def json_response(status: int, body: dict, headers: dict | None = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps(body), headers=headers or {})


STATUS_BY_KIND = {
    ErrorKind.INVALID: 400, ErrorKind.UNAUTHORISED: 401, ErrorKind.FORBIDDEN: 403, ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409, ErrorKind.TOO_LARGE: 413, ErrorKind.UNSUPPORTED_MEDIA: 415,
    ErrorKind.UNDECODABLE: 422, ErrorKind.THROTTLED: 429, ErrorKind.UNAVAILABLE: 503,
}


def status_of(error: ServiceError) -> int:
    return STATUS_BY_KIND[error.kind]


def headers_of(error: ServiceError) -> dict[str, str]:
    headers = {}
    if error.kind is ErrorKind.UNAUTHORISED:
        headers["WWW-Authenticate"] = "ApiKey"
    if error.retry_after_seconds is not None:
        headers["Retry-After"] = str(error.retry_after_seconds)
    return headers


def error_response(error: ServiceError) -> Response:
    return json_response(status_of(error), {"error": error.message, "code": error.code}, headers_of(error))


def caller(app, authenticator):
    """The authenticated client of the current request (ServiceError 401 otherwise); the audit line names it."""
    event = app.current_event
    client = authenticator.client(event.headers or {}, event.raw_event.get("requestContext") or {})
    app.append_context(client=client)
    return client


def audited(app, route: str, audit_log: Callable[[], AuditLog]):
    """One audit line per request of this route, whatever its answer (a refusal included): who, which job, what
    status. The handler names a job it found out itself (a submit's) with app.append_context(audit_job_id=...)."""
    def decorate(handler):
        @functools.wraps(handler)
        def audited_handler(*args, **kwargs):
            outcome = 500
            try:
                response = handler(*args, **kwargs)
                outcome = response.status_code
                return response
            except ServiceError as error:
                outcome = status_of(error)
                raise
            except Exception as error:
                outcome = 503 if is_outage(error) else 500
                raise
            finally:
                _write_audit_line(app, audit_log(), route, kwargs.get("job_id"), outcome)
        return audited_handler
    return decorate


def _write_audit_line(app, audit_log: AuditLog, route: str, job_id: str | None, outcome: int) -> None:
    client = app.context.get("client")
    context = app.current_event.raw_event.get("requestContext") or {}
    entry = AuditEntry.now(client_id=client.client_id if client else None, operator=bool(client and client.operator),
                           route=route, job_id=job_id or app.context.get("audit_job_id"), outcome=outcome,
                           source_ip=(context.get("http") or {}).get("sourceIp"), request_id=context.get("requestId"),
                           count=app.context.get("audit_count"))
    try:
        audit_log.write(entry.to_dict())
    except Exception:  # the answer stands; the operator sees the gap in the function's own log
        logging.getLogger("cxr.audit").exception("audit line NOT written: %s", entry)


MAX_JSON_DEPTH = 8  # the API's bodies are flat objects


def _depth(value) -> int:
    """How deeply a parsed JSON value nests arrays and objects (iterative: no recursion of its own)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def json_body(app) -> dict:
    event = app.current_event
    try:
        body = json.loads(event.decoded_body or "{}")
    except RecursionError as error:  # json's scanner recurses per level: thousands of levels exhaust it
        raise bad_request(f"request body nests deeper than {MAX_JSON_DEPTH} levels") from error
    except ValueError as error:
        raise bad_request("request body is not valid JSON") from error
    if _depth(body) > MAX_JSON_DEPTH:
        raise bad_request(f"request body nests deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    return body


def install_error_handlers(app, logger: logging.Logger) -> None:
    """Domain errors answer with their kind's status; anything else is a logged 500 with no internals in the body."""

    @app.exception_handler(ServiceError)
    def _service_error(error: ServiceError) -> Response:
        if error.kind is ErrorKind.UNAVAILABLE:
            logger.warning("request failed: %s", error)
        return error_response(error)

    @app.not_found
    def _not_found(_error) -> Response:
        return json_response(404, {"error": "no such route", "code": "NOT_FOUND"})

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        if is_outage(error):
            logger.warning("dependency unavailable: %s", error)
            return error_response(unavailable("a storage or queue service is unavailable; retry shortly"))
        logger.exception("unhandled error")
        return json_response(500, {"error": "internal error", "code": "INTERNAL_ERROR"})
