"""The gateway's store: encrypted at rest, keyed without UIDs, swept by TTL without waiting, backlog reported."""
import base64
import sqlite3

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cxr_gateway.store import (READY, RECEIVED, SEAL_CHUNK, SUBMITTED, Store, Unopenable, load_or_create_key,
                               new_key)
from tests.gateway_support import PHI_VALUES, study


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


KEYS = {}


def store_key(folder):
    return KEYS.setdefault(str(folder), new_key())


@pytest.fixture
def store(tmp_path, clock):
    return Store(tmp_path / "store.sqlite3", store_key(tmp_path), ttl_s=3600, clock=clock)


def test_nothing_identifying_is_readable_on_disk(tmp_path, store):
    data = study()["frontal"]
    assert store.put_received("1.2.3.4.5", data)
    store.close()
    raw = b"".join(path.read_bytes() for path in tmp_path.rglob("*") if path.is_file())
    assert len(list((tmp_path / "store.sqlite3.spool").iterdir())) == 1
    for value in (*PHI_VALUES, "1.2.3.4.5"):
        assert value.encode() not in raw
    rows = sqlite3.connect(tmp_path / "store.sqlite3").execute("SELECT key, payload FROM items").fetchall()
    assert len(rows) == 1 and rows[0][0] != "1.2.3.4.5" and rows[0][1] is None  # the instance is in the spool
    key = rows[0][0]
    sealed = (tmp_path / "store.sqlite3.spool" / key).read_bytes()
    with pytest.raises(InvalidTag):  # another key cannot read it
        AESGCM(AESGCM.generate_key(bit_length=256)).decrypt(sealed[:12], sealed[12:], key.encode())


def test_a_value_moved_to_another_row_does_not_open_and_is_never_handed_on(tmp_path, store, clock):
    store.put_received("1.2.3", b"first")
    store.put_received("4.5.6", b"second")
    store.close()
    spool = tmp_path / "store.sqlite3.spool"
    moved, kept = store.row_key("1.2.3"), store.row_key("4.5.6")
    (spool / moved).write_bytes((spool / kept).read_bytes())
    reopened = Store(tmp_path / "store.sqlite3", store_key(tmp_path), ttl_s=3600, clock=clock)
    moved_item, kept_item = sorted(reopened.due(10), key=lambda item: item.key != moved)
    with pytest.raises(Unopenable):  # opened by the thread that would use it: it never gets the bytes
        moved_item.payload
    assert kept_item.payload == b"second"
    assert [item.payload for item in reopened.due(10)] == [b"second"]  # not offered again before its TTL
    clock.now += 3600
    assert reopened.sweep() == 2


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
    assert list(store.spool.iterdir()) == []  # the spooled instance went when the header replaced it


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
    assert [path.name for path in store.spool.iterdir()] == [item.key]


def test_the_sweep_removes_spool_files_without_a_row_after_a_grace(store):
    import os
    import time

    from cxr_gateway.store import ORPHAN_GRACE_S

    (store.spool / "left-by-a-crash").write_bytes(b"sealed")
    (store.spool / "just-written").write_bytes(b"sealed")
    old = time.time() - ORPHAN_GRACE_S - 1
    os.utime(store.spool / "left-by-a-crash", (old, old))
    store.sweep()
    assert [path.name for path in store.spool.iterdir()] == ["just-written"]


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
    with pytest.raises(ValueError, match="32 bytes"):
        Store(tmp_path / "t.sqlite3", b"c2hvcnQ=", ttl_s=1)


def test_an_instance_in_pieces_is_sealed_in_one_pass_as_one_aes_gcm_value(tmp_path, store):
    """Pieces larger than the sealing buffer, and a memoryview among them: the file opens as one AES-GCM value (nonce,
    ciphertext, tag) whose plaintext is the pieces joined."""
    import os

    pieces = [b"\0" * 128 + b"DICM", memoryview(os.urandom(2 * SEAL_CHUNK + 12345)), b"tail"]
    assert store.put_received("1.2.3", pieces)
    key = store.row_key("1.2.3")
    sealed = (store.spool / key).read_bytes()
    joined = b"".join(bytes(piece) for piece in pieces)
    assert len(sealed) == 12 + len(joined) + 16
    secret = base64.urlsafe_b64decode(store_key(tmp_path))
    assert AESGCM(secret).decrypt(sealed[:12], sealed[12:], key.encode()) == joined
    (item,) = store.due(10)
    assert item.payload == joined
