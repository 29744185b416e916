"""In-memory stand-ins for the ports, with the same conditional semantics as the DynamoDB store."""
from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass

from cxr_core.domain import CacheEntry, Job, JobMessage, JobStatus, iso, utc_now
from cxr_core.ports import CacheKeyTaken, Claim, ClaimState, StoredKey, StoredObject


class InMemoryJobStore:
    def __init__(self):
        self.jobs: dict[str, Job] = {}
        self.cache: dict[str, CacheEntry] = {}
        self.tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get_job(self, job_id):
        return copy.deepcopy(self.jobs.get(job_id))

    def get_cache(self, key):
        return copy.deepcopy(self.cache.get(key))

    def put_job(self, job):
        assert job.job_id not in self.jobs
        self.jobs[job.job_id] = copy.deepcopy(job)

    def create_job(self, job, stale_job_id=None, claim_cache=True):
        with self._lock:
            if not claim_cache:
                self.jobs[job.job_id] = copy.deepcopy(job)
                return
            held = self.cache.get(job.cache_key)
            if held is not None and not (stale_job_id and held.job_id == stale_job_id and not held.done):
                raise CacheKeyTaken(job.cache_key)
            self.jobs[job.job_id] = copy.deepcopy(job)
            self.cache[job.cache_key] = CacheEntry(job.cache_key, job.job_id, done=False)

    def claim_jobs(self, job_ids, token, lease_seconds):
        claims = {}
        with self._lock:
            for job_id in dict.fromkeys(job_ids):
                job = self.jobs.get(job_id)
                if job is None:
                    claims[job_id] = Claim(ClaimState.MISSING)
                elif job.status.is_final:
                    claims[job_id] = Claim(ClaimState.FINAL, copy.deepcopy(job))
                elif job.status is JobStatus.IN_PROGRESS and self.tokens.get(job_id, ("", 0))[1] > time.time():
                    claims[job_id] = Claim(ClaimState.BUSY, copy.deepcopy(job), self.tokens[job_id][1])
                else:
                    job.status, job.attempts = JobStatus.IN_PROGRESS, job.attempts + 1
                    job.started_at = job.updated_at = iso(utc_now())
                    self.tokens[job_id] = (token, time.time() + lease_seconds)
                    claims[job_id] = Claim(ClaimState.CLAIMED, copy.deepcopy(job))
        return claims

    def extend_leases(self, job_ids, token, lease_seconds):
        with self._lock:
            for job_id in job_ids:
                if self.tokens.get(job_id, ("",))[0] == token and self.jobs[job_id].status is JobStatus.IN_PROGRESS:
                    self.tokens[job_id] = (token, time.time() + lease_seconds)

    def _holds(self, job, token):
        stored = self.jobs.get(job.job_id)  # a deleted job is held by no one
        return stored is not None and stored.status is JobStatus.IN_PROGRESS and self.tokens.get(job.job_id, ("",))[0] == token

    def complete_job(self, job, token, result):
        with self._lock:
            if not self._holds(job, token):
                return False
            stored = self.jobs[job.job_id]
            stored.status, stored.result, stored.error = JobStatus.COMPLETED, result, None
            stored.finished_at = stored.updated_at = iso(utc_now())
            self.tokens.pop(job.job_id, None)
            job.status, job.result, job.finished_at, job.updated_at = (JobStatus.COMPLETED, result, stored.finished_at,
                                                                       stored.updated_at)
            self.cache[job.cache_key] = CacheEntry(job.cache_key, job.job_id, done=True, result=result)
            return True

    def release_job(self, job, token, error):
        with self._lock:
            if self._holds(job, token):
                self.jobs[job.job_id].status = JobStatus.QUEUED
                self.jobs[job.job_id].error = error
                self.jobs[job.job_id].updated_at = iso(utc_now())
                self.tokens.pop(job.job_id, None)

    def fail_job(self, job, token, error):
        with self._lock:
            stored = self.jobs.get(job.job_id)
            if stored is None or stored.status.is_final or (token and not self._holds(job, token)):
                return False
            stored.status, stored.error = JobStatus.FAILED, error
            stored.finished_at = stored.updated_at = iso(utc_now())
            job.status, job.error, job.finished_at, job.updated_at = (stored.status, error, stored.finished_at,
                                                                      stored.updated_at)
            entry = self.cache.get(job.cache_key)
            if entry and entry.job_id == job.job_id and not entry.done:
                del self.cache[job.cache_key]
            return True

    def touch_queued(self, job):
        stored = self.jobs.get(job.job_id)
        if stored is None or stored.status is not JobStatus.QUEUED:
            return False
        stored.updated_at = iso(utc_now())
        return True

    def reset_to_queued(self, job):
        stored = self.jobs.get(job.job_id)
        if stored is None or stored.status is not JobStatus.IN_PROGRESS or self.tokens.get(job.job_id, ("", 0))[1] > time.time():
            return False
        stored.status, stored.updated_at = JobStatus.QUEUED, iso(utc_now())
        self.tokens.pop(job.job_id, None)
        return True

    def jobs_by_status(self, status, since, limit=None, before=None):
        found = sorted((j for j in self.jobs.values() if j.status is status and j.updated_at >= since
                        and (before is None or j.updated_at < before)),
                       key=lambda j: j.updated_at, reverse=True)
        return copy.deepcopy(found[:limit] if limit else found)

    @staticmethod
    def _client_key(job):
        return {"job_id": {"S": job.job_id}, "client_id": {"S": job.client_id}, "created_at": {"S": job.created_at}}

    def client_jobs(self, client_id, limit, start_key=None, status=None, since=None, until=None):
        mine = sorted((j for j in self.jobs.values() if j.client_id == client_id
                       and (since is None or j.created_at >= since) and (until is None or j.created_at <= until)),
                      key=lambda j: (j.created_at, j.job_id), reverse=True)
        if start_key is not None:
            after = (start_key["created_at"]["S"], start_key["job_id"]["S"])
            mine = [j for j in mine if (j.created_at, j.job_id) < after]
        page, more = [], False
        for job in mine:
            if len(page) == limit:
                more = True
                break
            if status is None or job.status is status:
                page.append(job)
        listed = [copy.deepcopy(j) for j in page]
        for job in listed:  # what the index projects: no scores
            job.result = None
        return listed, (self._client_key(page[-1]) if more and page else None)

    def delete_job(self, job):
        with self._lock:
            if self.jobs.pop(job.job_id, None) is None:
                return False
            self.tokens.pop(job.job_id, None)
            entry = self.cache.get(job.cache_key)
            if entry is not None and entry.job_id == job.job_id:
                del self.cache[job.cache_key]
            return True


class InMemoryImageHolds:
    """ImageHolds: holders per image and a deletion mark that a hold must not cross (no lease expiry here)."""

    def __init__(self):
        self.holders: dict[str, set[str]] = {}
        self.marks: dict[str, str] = {}
        self._lock = threading.Lock()
        self._marks = 0

    def hold(self, image_key, job_id):
        with self._lock:
            if image_key in self.marks:
                return False
            self.holders.setdefault(image_key, set()).add(job_id)
            return True

    def release(self, image_key, job_id):
        with self._lock:
            holders = self.holders.get(image_key, set())
            holders.discard(job_id)
            if holders or image_key in self.marks:
                return None
            self.holders.pop(image_key, None)
            self._marks += 1
            self.marks[image_key] = str(self._marks)
            return self.marks[image_key]

    def deleted(self, image_key, mark):
        with self._lock:
            if self.marks.get(image_key) == mark:
                del self.marks[image_key]


class InMemoryImageStore:
    def __init__(self, fail_gets: int = 0):
        self.objects: dict[str, bytes] = {}
        self.fail_gets = fail_gets

    def put(self, key, data, content_type):
        self.objects[key] = data

    def get(self, key, verify_checksum=True):
        if self.fail_gets:
            self.fail_gets -= 1
            raise ConnectionError("injected S3 read error")
        return self.objects[key]

    def head(self, key):
        data = self.objects.get(key)
        return None if data is None else StoredObject(len(data))

    def delete(self, key):
        self.objects.pop(key, None)

    def delete_prefix(self, prefix):
        doomed = [key for key in self.objects if key.startswith(prefix)]
        for key in doomed:
            del self.objects[key]
        return len(doomed)


class InMemoryQueue:
    def __init__(self, fail_sends: bool = False):
        self.messages: list[JobMessage] = []
        self.fail_sends = fail_sends

    def send(self, message):
        if self.fail_sends:
            raise ConnectionError("injected SQS send error")
        self.messages.append(message)

    def depth(self):
        return {"visible": len(self.messages), "in_flight": 0, "dead_letter": 0}


@dataclass
class FakePrediction:
    output: dict
    top_label: str
    heatmaps: dict | None = None


class FakePredictor:
    """Deterministic scores from the bytes: enough to follow results through the service."""
    identity = {"name": "fake", "weights": "fake", "engine": "fake"}
    model_id = "fake@0000"
    LABELS = ("A", "B")

    def __init__(self, poison: bytes = b"POISON"):
        self.poison = poison
        self.batches: list[int] = []

    def preprocess(self, data):
        if data.startswith(self.poison):
            raise ValueError("poison image")
        return data

    def predict(self, images):
        self.batches.append(len(images))
        outputs = []
        for data in images:
            a = (sum(data) % 100) / 100
            maps = {"A": [[a * (row + col) for col in range(7)] for row in range(7)],
                    "B": [[(1 - a) * (row - col) for col in range(7)] for row in range(7)]}
            outputs.append(FakePrediction({"A": a, "B": 1 - a}, "A" if a >= 0.5 else "B", maps))
        return outputs

    def model_input_pixels(self, image):
        return bytes((sum(image) + index) % 256 for index in range(224)) * 224


@dataclass
class FakeImageInfo:
    format: str
    width: int = 8
    height: int = 8


def fake_check_image(data: bytes) -> FakeImageInfo:
    """PNG magic means PNG; 'BROKEN' means undecodable; anything else is not an image."""
    from cxr_core.domain import undecodable, unsupported_media
    if data.startswith(b"\x89PNG"):
        if b"BROKEN" in data:
            raise undecodable("truncated PNG")
        return FakeImageInfo("png")
    raise unsupported_media("not a PNG, JPEG or DICOM image")


class RecordingPublisher:
    """EventPublisher that keeps what was published; fail=True raises like an unreachable topic."""

    def __init__(self, fail: bool = False):
        self.events: list[tuple[dict, dict]] = []
        self.fail = fail

    def publish(self, event, attributes):
        if self.fail:
            raise ConnectionError("topic unreachable")
        self.events.append((copy.deepcopy(event), dict(attributes)))


class InMemoryApiKeyStore:
    """ApiKeyStore with DynamoDB's semantics: add overwrites, revoke only an existing key."""

    def __init__(self):
        self.keys: dict[str, StoredKey] = {}
        self.finds = 0

    def find(self, key_hash):
        self.finds += 1
        return copy.deepcopy(self.keys.get(key_hash))

    def add(self, key):
        self.keys[key.key_hash] = copy.deepcopy(key)

    def revoke(self, key_hash, moment):
        if key_hash not in self.keys:
            return False
        self.keys[key_hash].revoked_at = moment
        return True

    def all(self):
        return copy.deepcopy(list(self.keys.values()))


class InMemoryLeases:
    """Leases: per slot the time it runs out, taken and freed under a lock as DynamoDB's conditional writes are."""

    def __init__(self):
        self.until: dict[str, float] = {}
        self._lock = threading.Lock()

    def acquire(self, key, slots, now, until):
        with self._lock:
            for slot in range(slots):
                token = f"{key}#{slot}"
                if self.until.get(token, 0) < now:
                    self.until[token] = until
                    return token
            return None

    def release(self, token, until):
        with self._lock:
            if self.until.get(token) == until:
                self.until[token] = 0


class InMemoryRateCounter:
    """RateCounter: a conditional add per window key, atomic under a lock as DynamoDB's conditional update is."""

    def __init__(self):
        self.hits: dict[str, int] = {}
        self.reservations: list[str] = []
        self._lock = threading.Lock()

    def reserve(self, window_key, count, limit, expires_at):
        with self._lock:
            self.reservations.append(window_key)
            if self.hits.get(window_key, 0) + count > limit:
                return False
            self.hits[window_key] = self.hits.get(window_key, 0) + count
            return True
