"""The gateway's store: encrypted at rest, keyed without UIDs, swept by TTL without waiting, backlog reported."""
import sqlite3

import pytest
from cryptography.fernet import Fernet, InvalidToken

from cxr_gateway.store import READY, RECEIVED, SUBMITTED, Store, load_or_create_key
from tests.gateway_support import PHI_VALUES, study


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    return Store(tmp_path / "store.sqlite3", Fernet.generate_key(), ttl_s=3600, clock=clock)


def test_nothing_identifying_is_readable_on_disk(tmp_path, store):
    data = study()["frontal"]
    assert store.put_received("1.2.3.4.5", data)
    store.close()
    raw = (tmp_path / "store.sqlite3").read_bytes() + b"".join(
        path.read_bytes() for path in tmp_path.glob("store.sqlite3-*"))
    for value in (*PHI_VALUES, "1.2.3.4.5"):
        assert value.encode() not in raw
    rows = sqlite3.connect(tmp_path / "store.sqlite3").execute("SELECT key, payload FROM items").fetchall()
    assert len(rows) == 1 and rows[0][0] != "1.2.3.4.5"
    with pytest.raises(InvalidToken):  # another key cannot read it
        Fernet(Fernet.generate_key()).decrypt(rows[0][1])


def test_an_item_moves_through_its_states_and_a_resend_in_flight_changes_nothing(store):
    assert store.put_received("1.2.3", b"received bytes")
    assert not store.put_received("1.2.3", b"sent again")
    (item,) = store.due(10)
    assert (item.state, item.payload) == (RECEIVED, b"received bytes")
    store.advance(item.key, SUBMITTED, b"header", job_id="job-1")
    (item,) = store.due(10)
    assert (item.state, item.payload, item.job_id) == (SUBMITTED, b"header", "job-1")
    store.advance(item.key, READY, b"the SR")
    assert store.backlog()["by_state"] == {RECEIVED: 0, SUBMITTED: 0, READY: 1}
    store.delete(item.key)
    assert store.due(10) == [] and store.backlog()["pending"] == 0


def test_a_retry_waits_its_delay_and_counts_the_attempt(store, clock):
    store.put_received("1.2.3", b"x")
    (item,) = store.due(10)
    store.retry_later(item.key, 30, "ConnectionError: down")
    assert store.due(10) == []
    clock.now += 30
    (item,) = store.due(10)
    assert (item.attempts, item.detail) == (1, "ConnectionError: down")


def test_the_ttl_sweep_deletes_only_expired_items(store, clock):
    store.put_received("old", b"x")
    clock.now += 1800
    store.put_received("new", b"y")
    assert store.sweep() == 0
    clock.now += 1800
    assert store.sweep() == 1
    (item,) = store.due(10)
    assert item.payload == b"y"
    assert store.backlog()["oldest_pending_age_s"] == 1800


def test_backlog_reports_the_oldest_pending_item(store, clock):
    assert store.backlog() == {"pending": 0, "by_state": {RECEIVED: 0, SUBMITTED: 0, READY: 0},
                               "oldest_pending_age_s": None}
    store.put_received("a", b"x")
    clock.now += 12.5
    store.put_received("b", b"y")
    assert store.backlog()["pending"] == 2 and store.backlog()["oldest_pending_age_s"] == 12.5


def test_the_key_file_is_made_once_and_private(tmp_path):
    key = load_or_create_key(tmp_path / "s.sqlite3", None)
    assert load_or_create_key(tmp_path / "s.sqlite3", None) == key
    assert (tmp_path / "s.sqlite3.key").stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(tmp_path / "s.sqlite3", "configured-key") == b"configured-key"
