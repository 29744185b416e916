"""A client's long-poll slots on DynamoDB (moto): the fifth concurrent long poll of a client is refused."""
from __future__ import annotations

from contextlib import ExitStack

import pytest

from cxr_core.domain import ServiceError
from cxr_core.services.jobs import long_poll_slot

pytestmark = pytest.mark.integration


def test_the_runtime_caps_a_clients_concurrent_long_polls(runtime):
    per_client = runtime.settings.long_polls_per_client
    assert per_client >= 1
    with ExitStack() as held:
        for _ in range(per_client):
            held.enter_context(long_poll_slot(runtime.long_poll_leases, "client-x", 20, per_client))
        with pytest.raises(ServiceError) as refused:
            held.enter_context(long_poll_slot(runtime.long_poll_leases, "client-x", 20, per_client))
        assert refused.value.code == "TOO_MANY_LONG_POLLS"
