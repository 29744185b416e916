"""The small interfaces the services need: job storage, image storage, the queue, API keys, rate counters."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Protocol

from cxr_core.domain import CacheEntry, Job, JobMessage, JobStatus


class CacheKeyTaken(Exception):
    """Another upload of the same image claimed the result-cache key first."""


class ClaimState(str, enum.Enum):
    CLAIMED = "CLAIMED"    # ours now: run it
    FINAL = "FINAL"        # already COMPLETED or FAILED: acknowledge, do nothing
    BUSY = "BUSY"          # IN_PROGRESS under a live lease elsewhere: leave the message for later
    MISSING = "MISSING"    # no such job: nothing can ever run it


@dataclass
class Claim:
    state: ClaimState
    job: Job | None = None
    lease_until: float | None = None  # BUSY: when the other worker's lease runs out (epoch seconds)


class JobStore(Protocol):
    def get_job(self, job_id: str) -> Job | None: ...
    def get_cache(self, key: str) -> CacheEntry | None: ...
    def put_job(self, job: Job) -> None: ...
    def create_job(self, job: Job, stale_job_id: str | None = None, claim_cache: bool = True) -> None:
        """Write the QUEUED job and its PENDING cache entry atomically; CacheKeyTaken if the key is held
        (by anything other than stale_job_id's entry). claim_cache=False writes the job alone."""
    def claim_jobs(self, job_ids: Iterable[str], token: str, lease_seconds: int) -> dict[str, Claim]: ...
    def extend_leases(self, job_ids: Iterable[str], token: str, lease_seconds: int) -> None:
        """Move the lease of the jobs still claimed under token to now + lease_seconds (a long batch's renewal)."""
    def complete_job(self, job: Job, token: str, result: dict) -> bool: ...
    def release_job(self, job: Job, token: str, error: str) -> None: ...
    def fail_job(self, job: Job, token: str | None, error: str) -> bool:
        """True when this call made the job FAILED (False: it was final already, or the claim moved on)."""
    def touch_queued(self, job: Job) -> bool: ...
    def reset_to_queued(self, job: Job) -> bool: ...
    def jobs_by_status(self, status: JobStatus, since: str, limit: int | None = None,
                       before: str | None = None) -> list[Job]: ...
    def client_jobs(self, client_id: str, limit: int, start_key: dict | None = None, status: JobStatus | None = None,
                    since: str | None = None, until: str | None = None) -> tuple[list[Job], dict | None]:
        """One client's jobs, newest created first, created_at in [since, until]; the key to start the next page
        after (None: no more). Jobs carry what a listing shows (no result)."""
    def delete_job(self, job: Job) -> bool:
        """Remove the job and its cache entry (if the entry is this job's): False when the job was already gone."""


class ImageHolds(Protocol):
    """Which jobs still need a stored image (images are stored once per SHA-256 for every client)."""
    def hold(self, image_key: str, job_id: str) -> bool:
        """Record that job_id needs the stored image; False while the image is being deleted."""
    def release(self, image_key: str, job_id: str) -> str | None:
        """job_id no longer needs the image. When no job does, mark the image as being deleted and return the mark
        (delete the object, then call deleted with it); None while another job holds it or another deletion does."""
    def deleted(self, image_key: str, mark: str) -> None: ...


@dataclass(frozen=True)
class StoredObject:
    size: int
    sha256: str | None = None  # hex: the checksum the store verified when the object was written, if one was sent


class ImageStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def get(self, key: str, verify_checksum: bool = True) -> bytes:
        """verify_checksum: check the bytes read against the checksum the store keeps with the object, if any."""
    def head(self, key: str) -> StoredObject | None:
        """The object's size and the SHA-256 the store verified when it was written (None: no such object)."""
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under prefix; how many there were."""
    def presign_put(self, key: str, content_type: str, expires_seconds: int, size: int,
                    checksum_sha256: str | None = None) -> tuple[str, dict[str, str]]:
        """The URL and the headers the PUT must send (they are signed with it, and so are its Content-Length and,
        when given, its base64 x-amz-checksum-sha256: the store refuses another length or other bytes)."""


class EventPublisher(Protocol):
    def publish(self, event: dict, attributes: dict[str, str]) -> None: ...


class JobQueue(Protocol):
    def send(self, message: JobMessage) -> None: ...
    def depth(self) -> dict: ...


@dataclass
class StoredKey:
    """One client's API key as stored: only its SHA-256."""
    key_hash: str
    client_id: str
    role: str  # client | operator
    created_at: str
    label: str | None = None
    revoked_at: str | None = None


class ApiKeyStore(Protocol):
    def find(self, key_hash: str) -> StoredKey | None: ...
    def add(self, key: StoredKey) -> None: ...
    def revoke(self, key_hash: str, moment: str) -> bool:
        """Mark the key revoked at moment; False when there is no such key."""
    def all(self) -> list[StoredKey]: ...


class Leases(Protocol):
    def acquire(self, key: str, slots: int, now: float, until: float) -> str | None:
        """One of `slots` leases under key, held until `until` (epoch s; a holder that dies frees it then) unless
        released first; None while all are held (atomically: a conditional write per slot tried)."""
    def release(self, token: str, until: float) -> None: ...


class RateCounter(Protocol):
    def reserve(self, window_key: str, count: int, limit: int, expires_at: datetime) -> bool:
        """Add count to the window's counter if it stays within limit (atomically); False, unchanged, if not."""


class AuditLog(Protocol):
    def write(self, entry: dict) -> None:
        """One access, as one structured line (cxr_core.audit.AuditEntry.to_dict)."""
    def history(self, job_id: str) -> list[dict]:
        """Every line that names job_id, oldest first."""
