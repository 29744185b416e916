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
