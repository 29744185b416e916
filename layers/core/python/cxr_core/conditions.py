"""Whether DynamoDB refused a write because its condition did not hold: the one test every conditional write uses."""
from __future__ import annotations

from botocore.exceptions import ClientError
from pynamodb.exceptions import PynamoDBException, TransactWriteError

CONDITION_FAILED = "ConditionalCheckFailedException"
ITEM_CONDITION_FAILED = "ConditionalCheckFailed"  # a cancelled transaction's reason for one item
# Reasons a transaction item may give that only say another writer got there first: worth another round.
RACE_REASONS = {None, "None", ITEM_CONDITION_FAILED, "TransactionConflict"}


def cancellation_codes(error: BaseException) -> list[str | None]:
    """The per-item reasons of a cancelled transaction, in item order ([] if it was not cancelled)."""
    if not isinstance(error, TransactWriteError):
        return []
    return [reason.code if reason is not None else None for reason in error.cancellation_reasons or []]


def is_condition_failed(error: BaseException, item: int | None = None) -> bool:
    """True only when the write was refused because its condition did not hold (the state moved on, a race was
    lost): an answer the caller acts on. False for anything else - throttling, a network error, a server error -
    which the caller lets propagate, to be retried or reported (a transaction's TransactionConflict is False too;
    the callers that simply try again check RACE_REASONS). For a cancelled transaction, item asks about that item
    only (default: any item)."""
    if isinstance(error, TransactWriteError):
        codes = cancellation_codes(error)
        if item is not None:
            return item < len(codes) and codes[item] == ITEM_CONDITION_FAILED
        return ITEM_CONDITION_FAILED in codes
    if isinstance(error, PynamoDBException):
        return error.cause_response_code == CONDITION_FAILED
    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code") == CONDITION_FAILED
    return False
