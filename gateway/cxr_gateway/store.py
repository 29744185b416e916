"""The gateway's own store: received instances, in-flight jobs and pending SRs, encrypted at rest (Fernet).

Everything that can identify a patient (the received file, the header kept to file the result, the SR) is a Fernet
token; the row key is an HMAC of the source SOP Instance UID, so the plain columns (state, times, job id, attempts,
non-PHI error text) reveal nothing. Rows go once their SR is delivered, or when swept after the TTL.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

RECEIVED, SUBMITTED, READY = "received", "submitted", "ready"
STATES = (RECEIVED, SUBMITTED, READY)

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
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS items_due ON items (next_attempt_at);
"""


@dataclass(frozen=True)
class Item:
    key: str
    state: str
    received_at: float
    expires_at: float
    next_attempt_at: float
    attempts: int
    job_id: str | None
    detail: str | None
    payload: bytes  # decrypted


def load_or_create_key(store_path: str | Path, configured: str | None) -> bytes:
    """The configured key, else a key file beside the store (created once, mode 0600)."""
    if configured:
        return configured.encode() if isinstance(configured, str) else configured
    key_path = Path(f"{store_path}.key")
    if key_path.exists():
        return key_path.read_bytes().strip()
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    with os.fdopen(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
        handle.write(key)
    return key


class Store:
    def __init__(self, path: str | Path, key: bytes, ttl_s: float, clock=time.time) -> None:
        self.path, self.ttl_s, self.clock = str(path), ttl_s, clock
        self._fernet = Fernet(key)
        self._hmac_key = hashlib.sha256(b"cxr-gateway-row-key:" + base64.urlsafe_b64decode(key)).digest()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a C-STORE success is answered only after the row is on disk
        self._db.executescript(_SCHEMA)
        if self.path != ":memory:":
            os.chmod(self.path, 0o600)

    def row_key(self, sop_instance_uid: str) -> str:
        return hmac.new(self._hmac_key, sop_instance_uid.encode(), hashlib.sha256).hexdigest()

    def put_received(self, sop_instance_uid: str, data: bytes) -> bool:
        """Spool a received instance; False if that instance is already in flight (a re-send changes nothing)."""
        now = self.clock()
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO items (key, state, received_at, expires_at, next_attempt_at, payload) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (self.row_key(sop_instance_uid), RECEIVED, now, now + self.ttl_s, now, self._fernet.encrypt(data)))
            return cursor.rowcount == 1

    def advance(self, key: str, state: str, payload: bytes, job_id: str | None = None) -> None:
        """The item's next state, with the payload it now needs; due at once, attempts reset."""
        with self._lock:
            self._db.execute("UPDATE items SET state=?, payload=?, job_id=COALESCE(?, job_id), attempts=0, "
                             "next_attempt_at=?, detail=NULL WHERE key=?",
                             (state, self._fernet.encrypt(payload), job_id, self.clock(), key))

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

    def due(self, limit: int, exclude: set[str] | frozenset = frozenset(), states: tuple[str, ...] = STATES) -> list[Item]:
        """Items whose time has come, in the given states, the longest waiting first."""
        marks = ",".join("?" * len(states))
        with self._lock:
            rows = self._db.execute(
                "SELECT key, state, received_at, expires_at, next_attempt_at, attempts, job_id, detail, payload "
                f"FROM items WHERE next_attempt_at <= ? AND state IN ({marks}) ORDER BY next_attempt_at LIMIT ?",
                (self.clock(), *states, limit + len(exclude))).fetchall()
        items = [Item(*row[:8], self._fernet.decrypt(row[8])) for row in rows if row[0] not in exclude]
        return items[:limit]

    def sweep(self) -> int:
        """Delete every item past its TTL (never delivered); the number deleted."""
        with self._lock:
            return self._db.execute("DELETE FROM items WHERE expires_at <= ?", (self.clock(),)).rowcount

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
