"""Outages of AWS dependencies answer 503 with Retry-After; bugs answer a bare 500."""
from botocore.exceptions import ClientError, EndpointConnectionError
from pynamodb.exceptions import PutError

from cxr_core.http import is_outage


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "PutObject")


def test_dependency_failures_are_outages():
    assert is_outage(client_error("InternalError", 500))
    assert is_outage(client_error("SlowDown", 503))
    assert is_outage(client_error("ThrottlingException", 400))
    assert is_outage(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert is_outage(PutError("failed", client_error("InternalServerError", 500)))
    from pynamodb.exceptions import TransactWriteError, VerboseClientError
    try:  # pynamodb's own wrapping: the status survives only in __cause__
        try:
            raise client_error("Unknown", 500)
        except ClientError as original:
            raise VerboseClientError({"Error": {"Code": "Unknown"}}, "TransactWriteItems") from original
    except VerboseClientError as verbose:
        assert is_outage(TransactWriteError("failed", verbose))


def test_client_errors_and_bugs_are_not():
    assert not is_outage(client_error("ValidationException", 400))
    assert not is_outage(client_error("AccessDenied", 403))
    assert not is_outage(KeyError("bug"))


def test_deeply_nested_json_is_a_400_not_a_crash():
    from types import SimpleNamespace

    import pytest as _pytest

    from cxr_core.domain import ServiceError
    from cxr_core.http import json_body, status_of

    def app(text):
        return SimpleNamespace(current_event=SimpleNamespace(decoded_body=text))

    assert json_body(app('{"upload_id": "x", "meta": {"a": [1, 2]}}'))["upload_id"] == "x"
    for text in ("[" * 5000 + "]" * 5000, '{"a": ' * 5000 + "1" + "}" * 5000, '{"a": ' * 50 + "1" + "}" * 50):
        with _pytest.raises(ServiceError) as refused:
            json_body(app(text))
        assert status_of(refused.value) == 400 and refused.value.code == "BAD_REQUEST"


def test_every_error_kind_has_one_status_and_only_http_adds_headers():
    import dataclasses

    from cxr_core.domain import ErrorKind, ServiceError, forbidden, throttled, unauthorised, unavailable
    from cxr_core.http import STATUS_BY_KIND, error_response, headers_of, status_of

    assert set(STATUS_BY_KIND) == set(ErrorKind)
    assert "status" not in {f.name for f in dataclasses.fields(ServiceError)}  # the domain knows no HTTP
    assert (status_of(unauthorised()), headers_of(unauthorised())) == (401, {"WWW-Authenticate": "ApiKey"})
    assert (status_of(forbidden("no")), headers_of(forbidden("no"))) == (403, {})
    assert (status_of(throttled(7)), headers_of(throttled(7))) == (429, {"Retry-After": "7"})
    assert (status_of(unavailable("x")), headers_of(unavailable("x"))) == (503, {"Retry-After": "1"})
    response = error_response(throttled(7))
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert '"code": "THROTTLED"' in response.body


def test_the_models_image_errors_become_kinds_in_one_place():
    import pytest

    from cxr_core.domain import ErrorKind, ServiceError
    from cxr_core.image_checks import domain_image_check

    for data, kind in ((b"GIF89a not an x-ray", ErrorKind.UNSUPPORTED_MEDIA),
                       (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, ErrorKind.UNDECODABLE)):
        with pytest.raises(ServiceError) as refused:
            domain_image_check(data)
        assert refused.value.kind is kind and refused.value.message
