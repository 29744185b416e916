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
    from cxr_core.http import json_body

    def app(text):
        return SimpleNamespace(current_event=SimpleNamespace(decoded_body=text))

    assert json_body(app('{"upload_id": "x", "meta": {"a": [1, 2]}}'))["upload_id"] == "x"
    for text in ("[" * 5000 + "]" * 5000, '{"a": ' * 5000 + "1" + "}" * 5000, '{"a": ' * 50 + "1" + "}" * 50):
        with _pytest.raises(ServiceError) as refused:
            json_body(app(text))
        assert refused.value.status == 400 and refused.value.code == "BAD_REQUEST"
