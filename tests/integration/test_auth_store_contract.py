"""The ApiKeyStore, RateCounter and Leases contracts, run against the in-memory fakes the unit tests trust and the DynamoDB
adapters on moto. Where the two disagree, the fake is wrong: it is fixed to do what DynamoDB does."""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from cxr_core.domain import iso, utc_now
from cxr_core.dynamo_auth import DynamoApiKeyStore, DynamoLeases, DynamoRateCounter
from cxr_core.ports import StoredKey
from tests.fakes import InMemoryApiKeyStore, InMemoryLeases, InMemoryRateCounter

pytestmark = pytest.mark.integration
LATER = utc_now() + timedelta(minutes=5)


@pytest.fixture(params=["fake", "dynamodb"])
def keys(request):
    if request.param == "fake":
        return InMemoryApiKeyStore()
    request.getfixturevalue("runtime")  # binds the tables to moto's
    return DynamoApiKeyStore()


@pytest.fixture(params=["fake", "dynamodb"])
def counter(request):
    if request.param == "fake":
        return InMemoryRateCounter()
    request.getfixturevalue("runtime")
    return DynamoRateCounter()


@pytest.fixture(params=["fake", "dynamodb"])
def leases(request):
    if request.param == "fake":
        return InMemoryLeases()
    request.getfixturevalue("runtime")
    return DynamoLeases()


def stored_key(client_id: str = "hospital-a", role: str = "client") -> StoredKey:
    return StoredKey(uuid.uuid4().hex * 2, client_id=client_id, role=role, created_at=iso(utc_now()), label="pacs")


def test_a_key_is_found_by_its_hash_with_every_field(keys):
    key = stored_key(role="operator")
    assert keys.find(key.key_hash) is None
    keys.add(key)
    assert keys.find(key.key_hash) == key
    assert keys.find(uuid.uuid4().hex * 2) is None


def test_revoking_marks_an_existing_key_only(keys):
    key = stored_key()
    keys.add(key)
    moment = iso(utc_now())
    assert keys.revoke(key.key_hash, moment)
    assert keys.find(key.key_hash).revoked_at == moment
    missing = uuid.uuid4().hex * 2
    assert not keys.revoke(missing, moment) and keys.find(missing) is None  # no key made up by the revocation


def test_all_lists_every_key(keys):
    added = [stored_key(f"client-{i}") for i in range(3)]
    for key in added:
        keys.add(key)
    listed = {key.key_hash: key for key in keys.all()}
    assert all(listed[key.key_hash] == key for key in added)


def test_a_window_admits_up_to_its_limit_and_a_refusal_changes_nothing(counter):
    window = f"client-{uuid.uuid4().hex}#1"
    assert counter.reserve(window, 10, 25, LATER) and counter.reserve(window, 10, 25, LATER)
    assert not counter.reserve(window, 10, 25, LATER)  # 30 > 25
    assert counter.reserve(window, 5, 25, LATER)  # the refusal added nothing: 20 + 5
    assert not counter.reserve(window, 1, 25, LATER)
    assert counter.reserve(f"client-{uuid.uuid4().hex}#1", 25, 25, LATER)  # windows are independent


def test_concurrent_reservations_never_pass_the_limit(counter):
    window = f"client-{uuid.uuid4().hex}#1"
    with ThreadPoolExecutor(8) as pool:
        granted = list(pool.map(lambda _: counter.reserve(window, 3, 20, LATER), range(16)))
    assert sum(granted) == 6  # 6 x 3 = 18 <= 20 < 21


def test_leases_are_held_until_released_or_run_out_and_never_twice(leases):
    key = f"long-poll#{uuid.uuid4().hex}"
    first, second = leases.acquire(key, 2, 1000.0, 1020.0), leases.acquire(key, 2, 1000.0, 1020.0)
    assert first and second and first != second
    assert leases.acquire(key, 2, 1001.0, 1021.0) is None  # both held
    leases.release(first, 1020.0)
    assert leases.acquire(key, 2, 1002.0, 1022.0) == first  # freed by its holder
    assert leases.acquire(key, 2, 1021.0, 1041.0) == second  # ran out: its holder died
    leases.release(second, 1020.0)  # the old holder's late release frees nothing of the new one's
    assert leases.acquire(key, 2, 1021.5, 1041.5) is None


def test_concurrent_acquisitions_never_pass_the_slots(leases):
    key = f"long-poll#{uuid.uuid4().hex}"
    with ThreadPoolExecutor(8) as pool:
        granted = list(pool.map(lambda _: leases.acquire(key, 3, 1000.0, 1020.0), range(12)))
    assert len({token for token in granted if token}) == 3 and granted.count(None) == 9
