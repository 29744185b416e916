"""What the HTTP handlers share: JSON responses and the mapping of domain errors to status codes."""
from __future__ import annotations

import json
import logging

from aws_lambda_powertools.event_handler import Response, content_types

from cxr_core.domain import ServiceError


def json_response(status: int, body: dict, headers: dict | None = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps(body), headers=headers or {})


def error_response(error: ServiceError) -> Response:
    return json_response(error.status, {"error": error.message, "code": error.code}, error.headers)


def caller(app, authenticator):
    """The authenticated client of the current request (ServiceError 401 otherwise)."""
    event = app.current_event
    return authenticator.client(event.headers or {}, event.raw_event.get("requestContext") or {})


def json_body(app) -> dict:
    event = app.current_event
    try:
        body = json.loads(event.decoded_body or "{}")
    except ValueError as error:
        raise ServiceError(400, "BAD_REQUEST", "request body is not valid JSON") from error
    if not isinstance(body, dict):
        raise ServiceError(400, "BAD_REQUEST", "request body must be a JSON object")
    return body


def install_error_handlers(app, logger: logging.Logger) -> None:
    """Domain errors keep their status; anything else is a logged 500 with no internals in the body."""

    @app.exception_handler(ServiceError)
    def _service_error(error: ServiceError) -> Response:
        if error.status >= 500:
            logger.warning("request failed: %s", error)
        return error_response(error)

    @app.not_found
    def _not_found(_error) -> Response:
        return json_response(404, {"error": "no such route", "code": "NOT_FOUND"})

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        logger.exception("unhandled error")
        return json_response(500, {"error": "internal error", "code": "INTERNAL_ERROR"})
