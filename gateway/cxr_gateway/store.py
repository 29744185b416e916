"""The gateway's own store: received instances, in-flight jobs and pending SRs, encrypted at rest (AES-256-GCM).

Everything that can identify a patient (the received file, the header kept to file the result, the SR) is sealed
with AES-256-GCM (a random 96-bit nonce per value, the row key as associated data, so a value cannot be moved to
another row unnoticed); the row key is an HMAC of the source SOP Instance UID, so the plain columns (state, times,
job id, attempts, non-PHI error text) reveal nothing. Received instances (megabytes each) are sealed into files of
the spool folder beside the database, written and fsynced before their row; headers and SRs live in the rows. Rows
and files go once the SR is delivered, or when swept after the TTL.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Callable, Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

LOG = logging.getLogger("cxr_gateway")
RECEIVED, SUBMITTED, READY = "received", "submitted", "ready"
ORPHAN_GRACE_S = 300  # a spool file without a row is removed by the sweep after this (a crash between file and row)
STATES = (RECEIVED, SUBMITTED, READY)
SEAL_CHUNK = 1 << 20  # received instances are sealed into the spool in pieces of this size: no sealed copy in memory

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    received_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    job_id TEXT,
    detail TEXT,
    payload BLOB  -- NULL: the sealed received instance is in the spool folder, under the row key
);
CREATE INDEX IF NOT EXISTS items_due ON items (next_attempt_at);
"""


class Unopenable(Exception):
    """A stored value that does not open with this store's key (another key, or altered): never used; its row waits
    for the TTL sweep."""


@dataclass(eq=False)
class Item:
    key: str
    state: str
    received_at: float
    expires_at: float
    next_attempt_at: float
    attempts: int
    job_id: str | None
    detail: str | None
    _open: Callable[[], bytes] = field(repr=False)

    @cached_property
    def payload(self) -> bytes:
        """Decrypted when first used (by the thread that works on the item), not when the item is picked; raises
        Unopenable for a value that does not open."""
        return self._open()


def new_key() -> bytes:
    """A store key: 32 random bytes, URL-safe base64 (what store_key / CXR_GATEWAY_STORE_KEY take)."""
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256))


def load_or_create_key(store_path: str | Path, configured: str | None) -> bytes:
    """The configured key, else a key file beside the store (created once, mode 0600)."""
    if configured:
        return configured.encode() if isinstance(configured, str) else configured
    key_path = Path(f"{store_path}.key")
    if key_path.exists():
        return key_path.read_bytes().strip()
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key = new_key()
    with os.fdopen(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
        handle.write(key)
    return key


class Store:
    def __init__(self, path: str | Path, key: bytes, ttl_s: float, clock=time.time) -> None:
        self.path, self.ttl_s, self.clock = str(path), ttl_s, clock
        secret = base64.urlsafe_b64decode(key)
        if len(secret) != 32:
            raise ValueError("the store key must be 32 bytes, URL-safe base64 (cxr_gateway.store.new_key())")
        self._secret, self._aead = secret, AESGCM(secret)
        self._hmac_key = hashlib.sha256(b"cxr-gateway-row-key:" + secret).digest()
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.spool = Path(f"{self.path}.spool")
        self.spool.mkdir(mode=0o700, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a C-STORE success is answered only after the row is on disk
        self._db.executescript(_SCHEMA)
        os.chmod(self.path, 0o600)

    def _seal(self, key: str, data: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data, key.encode())

    def _open(self, key: str, sealed: bytes) -> bytes:
        view = memoryview(sealed)
        return self._aead.decrypt(view[:12], view[12:], key.encode())

    def row_key(self, sop_instance_uid: str) -> str:
        return hmac.new(self._hmac_key, sop_instance_uid.encode(), hashlib.sha256).hexdigest()

    def _write_spool(self, key: str, parts: Iterable) -> None:
        """The parts, concatenated and sealed as _seal does (nonce, ciphertext, tag), in one pass through a small
        buffer; the file is on disk (data and name) before this returns."""
        final, partial = self.spool / key, self.spool / f"{key}.partial"
        nonce = os.urandom(12)
        encryptor = Cipher(algorithms.AES(self._secret), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(key.encode())
        buffer = bytearray(SEAL_CHUNK + 15)  # update_into wants room for a block more than it is given
        sealed = memoryview(buffer)
        with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb", buffering=0) as handle:
            handle.write(nonce)
            for part in parts:
                view = memoryview(part).cast("B")
                for start in range(0, len(view), SEAL_CHUNK):
                    handle.write(sealed[:encryptor.update_into(view[start:start + SEAL_CHUNK], buffer)])
            handle.write(encryptor.finalize() + encryptor.tag)
            os.fsync(handle.fileno())
        os.replace(partial, final)
        directory = os.open(self.spool, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def put_received(self, sop_instance_uid: str, data: bytes | list) -> bool:
        """Spool a received instance (its bytes, or the pieces that make them up); False if that instance is already
        in flight (a re-send changes nothing)."""
        now, key = self.clock(), self.row_key(sop_instance_uid)
        with self._lock:
            if self._db.execute("SELECT 1 FROM items WHERE key=?", (key,)).fetchone():
                return False
        self._write_spool(key, data if isinstance(data, list) else [data])
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO items (key, state, received_at, expires_at, next_attempt_at, payload) "
                "VALUES (?, ?, ?, ?, ?, NULL)", (key, RECEIVED, now, now + self.ttl_s, now))
            return cursor.rowcount == 1

    def advance(self, key: str, state: str, payload: bytes, job_id: str | None = None) -> None:
        """The item's next state, with the payload it now needs; due at once, attempts reset."""
        sealed = self._seal(key, payload)
        with self._lock:
            self._db.execute("UPDATE items SET state=?, payload=?, job_id=COALESCE(?, job_id), attempts=0, "
                             "next_attempt_at=?, detail=NULL WHERE key=?",
                             (state, sealed, job_id, self.clock(), key))
        (self.spool / key).unlink(missing_ok=True)

    def retry_later(self, key: str, delay_s: float, detail: str) -> None:
        with self._lock:
            self._db.execute("UPDATE items SET attempts=attempts+1, next_attempt_at=?, detail=? WHERE key=?",
                             (self.clock() + delay_s, detail[:500], key))

    def poll_again(self, key: str) -> None:
        """Due again at once without counting an attempt (a long poll that ended with the job still running)."""
        with self._lock:
            self._db.execute("UPDATE items SET next_attempt_at=? WHERE key=?", (self.clock(), key))

    def delete(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM items WHERE key=?", (key,))
        (self.spool / key).unlink(missing_ok=True)

    def due(self, limit: int, exclude: set[str] | frozenset = frozenset(), states: tuple[str, ...] = STATES) -> list[Item]:
        """Items whose time has come, in the given states, the longest waiting first (payloads open when used)."""
        marks = ",".join("?" * len(states))
        with self._lock:
            rows = self._db.execute(
                "SELECT key, state, received_at, expires_at, next_attempt_at, attempts, job_id, detail, payload "
                f"FROM items WHERE next_attempt_at <= ? AND state IN ({marks}) ORDER BY next_attempt_at LIMIT ?",
                (self.clock(), *states, limit + len(exclude))).fetchall()
        items = [Item(*row[:8], _open=partial(self._open_item, row[0], row[8]))
                 for row in rows if row[0] not in exclude]
        return items[:limit]

    def _open_item(self, key: str, row_payload: bytes | None) -> bytes:
        try:
            return self._open(key, row_payload if row_payload is not None else (self.spool / key).read_bytes())
        except (InvalidTag, FileNotFoundError):  # another key, or a changed file: never used; the TTL sweep removes it
            LOG.error("item %s does not open with this store key (wrong key or altered); left to the TTL sweep",
                      key[:12])
            with self._lock:
                self._db.execute("UPDATE items SET next_attempt_at=expires_at, detail=? WHERE key=?",
                                 ("does not open with this store key", key))
            raise Unopenable(key[:12]) from None

    def sweep(self) -> int:
        """Delete every item past its TTL (never delivered), and spool files no row refers to; items deleted."""
        with self._lock:
            expired = [key for (key,) in self._db.execute("SELECT key FROM items WHERE expires_at <= ?",
                                                          (self.clock(),)).fetchall()]
            self._db.executemany("DELETE FROM items WHERE key=?", [(key,) for key in expired])
            live = {key for (key,) in self._db.execute("SELECT key FROM items WHERE payload IS NULL").fetchall()}
        for key in expired:
            (self.spool / key).unlink(missing_ok=True)
        for path in self.spool.iterdir():  # a crash between a spool file and its row, or its row's next state
            if path.name.split(".")[0] not in live and time.time() - path.stat().st_mtime > ORPHAN_GRACE_S:
                path.unlink(missing_ok=True)
        return len(expired)

    def backlog(self) -> dict:
        """Counts per state and the oldest item's age: what /health and /metrics report."""
        with self._lock:
            counts = dict(self._db.execute("SELECT state, COUNT(*) FROM items GROUP BY state").fetchall())
            oldest = self._db.execute("SELECT MIN(received_at) FROM items").fetchone()[0]
        return {"pending": sum(counts.values()), "by_state": {state: counts.get(state, 0) for state in STATES},
                "oldest_pending_age_s": round(self.clock() - oldest, 3) if oldest is not None else None}

    def raw_rows(self) -> list[tuple]:
        """Every stored column as it is on disk (the tests check that no PHI is readable there)."""
        with self._lock:
            return self._db.execute("SELECT * FROM items").fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()
