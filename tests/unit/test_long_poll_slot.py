"""Issue 25 item 7: a client's concurrent long polls are capped (429 + Retry-After past the cap), others' are not."""
from __future__ import annotations

import pytest

from cxr_core.domain import ServiceError
from cxr_core.http import status_of
from cxr_core.services.jobs import long_poll_slot
from tests.fakes import InMemoryLeases


def test_past_the_cap_a_client_gets_429_with_retry_after_and_a_freed_slot_serves_again():
    leases = InMemoryLeases()
    with long_poll_slot(leases, "a", 20, 2), long_poll_slot(leases, "a", 20, 2):
        with pytest.raises(ServiceError) as refused:
            with long_poll_slot(leases, "a", 20, 2):
                pass
        assert status_of(refused.value) == 429 and refused.value.retry_after_seconds >= 1
        with long_poll_slot(leases, "b", 20, 2):  # another client's polls are its own
            pass
    with long_poll_slot(leases, "a", 20, 2):  # released on the way out
        pass


def test_no_cap_when_set_to_zero():
    with long_poll_slot(InMemoryLeases(), "a", 20, 0), long_poll_slot(InMemoryLeases(), "a", 20, 0):
        pass
