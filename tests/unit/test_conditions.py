"""is_condition_failed: only a refused condition is a lost race; throttling and conflicts are errors."""
import pytest
from botocore.exceptions import ClientError
from pynamodb.exceptions import (CancellationReason, DeleteError, PutError, TransactWriteError, UpdateError,
                                 VerboseClientError)

from cxr_core.conditions import is_condition_failed


def client_error(code: str, status: int = 400, reasons=()) -> ClientError:
    return VerboseClientError({"Error": {"Code": code, "Message": code},
                               "ResponseMetadata": {"HTTPStatusCode": status}}, "Op", cancellation_reasons=reasons)


@pytest.mark.parametrize("kind", [UpdateError, DeleteError, PutError])
def test_single_item_writes(kind):
    assert is_condition_failed(kind("x", cause=client_error("ConditionalCheckFailedException")))
    for code in ("ThrottlingException", "ProvisionedThroughputExceededException", "InternalServerError"):
        assert not is_condition_failed(kind("x", cause=client_error(code)))
    assert not is_condition_failed(kind("x", cause=ConnectionError("reset")))


def test_transactions_answer_per_item():
    cancelled = TransactWriteError("x", cause=client_error("TransactionCanceledException", reasons=[
        None, CancellationReason(code="ConditionalCheckFailed"), CancellationReason(code="TransactionConflict")]))
    assert is_condition_failed(cancelled) and is_condition_failed(cancelled, 1)
    assert not is_condition_failed(cancelled, 0) and not is_condition_failed(cancelled, 2)
    assert not is_condition_failed(cancelled, 9)
    throttled = TransactWriteError("x", cause=client_error("ThrottlingException"))
    assert not is_condition_failed(throttled) and not is_condition_failed(throttled, 0)


def test_plain_botocore_and_other_errors():
    assert is_condition_failed(ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "PutItem"))
    assert not is_condition_failed(ClientError({"Error": {"Code": "ThrottlingException"}}, "PutItem"))
    assert not is_condition_failed(ValueError("ConditionalCheckFailedException"))
