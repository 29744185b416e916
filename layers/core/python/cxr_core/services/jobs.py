"""GET /v1/jobs, /v1/jobs/{id} and /result: read a client's jobs, shape the views the HTTP contract fixes."""
from __future__ import annotations

import base64
import binascii
import json
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Iterator

from cxr_core.domain import (ErrorKind, Job, JobStatus, ServiceError, bad_request, iso, job_not_found, parse_iso,
                             result_not_ready)
from cxr_core.ports import JobStore, Leases

MAX_LIST_LIMIT = 100
DEFAULT_LIST_LIMIT = 20
_CURSOR_KEYS = {"job_id", "client_id", "created_at"}
MAX_WAIT_SECONDS = 20.0  # under API Gateway's 30 s integration timeout, with room for the Lambda's own
FIRST_INTERVAL_SECONDS = 0.1  # a long poll's reads start this close together and spread out 1.5x a step
LEASE_MARGIN_SECONDS = 5.0  # a long-poll slot outlives its wait by this much should its function die holding it
LONG_POLL_RETRY_SECONDS = 2


def job_view(job: Job, redelivery_seconds: int | None = None) -> dict:
    """redelivery_seconds: the queue's visibility timeout; a job already tried shows its attempts, and one whose
    batch died also the latest time its message is delivered again (`retry_by`), not just QUEUED."""
    view = {"id": job.job_id, "status": job.status.value, "created_at": job.created_at,
            "updated_at": job.updated_at}
    if job.status is JobStatus.FAILED:
        view["error"] = job.error or "failed"
    if job.attempts and not job.status.is_final:
        view["attempts"] = job.attempts
        if redelivery_seconds and job.started_at:
            view["retry_by"] = iso(parse_iso(job.started_at) + timedelta(seconds=redelivery_seconds))
    return view


def submit_view(job: Job, created: bool) -> dict:
    if created or job.status is not JobStatus.COMPLETED:
        return {"id": job.job_id, "status": job.status.value, "created_at": job.created_at}
    view = job_view(job)
    view["cached"] = job.cached
    view["result"] = result_view(job)
    return view


def result_view(job: Job) -> dict:
    result = job.result or {}
    return {"job_id": job.job_id, "top_label": result.get("top_label"), "output": result.get("output", {}),
            "model": result.get("model", {}), "created_at": result.get("created_at", job.finished_at)}


def get_job(jobs: JobStore, job_id: str, client_id: str | None) -> Job:
    job = jobs.get_job(job_id)
    if job is None or job.client_id != client_id:  # another client's job is as good as unknown
        raise job_not_found(job_id)
    return job


def get_result(jobs: JobStore, job_id: str, client_id: str | None) -> Job:
    job = get_job(jobs, job_id, client_id)
    if job.status is not JobStatus.COMPLETED:
        raise result_not_ready(job_id, job.status)
    return job


def parse_wait(raw: str | None) -> float | None:
    """`?wait=N` of GET /v1/jobs/{id}: None without it, else seconds in (0, MAX_WAIT_SECONDS]."""
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= MAX_WAIT_SECONDS:  # also false for nan
        raise bad_request(f"wait must be a number of seconds, 0 < wait <= {MAX_WAIT_SECONDS:g}; got {raw!r}")
    return seconds


@contextmanager
def long_poll_slot(leases: Leases, client_id: str | None, wait_seconds: float, per_client: int,
                   clock: Callable[[], float] = time.time) -> Iterator[None]:
    """One of the client's `per_client` concurrent long polls (0: no cap), held for the wait; past the cap a 429
    with Retry-After, so a client's burst of waiting polls cannot hold every slot (a plain poll is never capped)."""
    if per_client <= 0:
        yield
        return
    now = clock()
    until = now + wait_seconds + LEASE_MARGIN_SECONDS
    token = leases.acquire(f"long-poll#{client_id or 'anonymous'}", per_client, now, until)
    if token is None:
        raise ServiceError(ErrorKind.THROTTLED, "TOO_MANY_LONG_POLLS",
                           f"at most {per_client} long polls of one client wait at once; poll without wait, or "
                           f"retry", retry_after_seconds=LONG_POLL_RETRY_SECONDS)
    try:
        yield
    finally:
        leases.release(token, until)


def wait_for_job(jobs: JobStore, job_id: str, client_id: str | None, wait_seconds: float, interval_seconds: float,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> Job:
    """The long poll: the job as soon as it is COMPLETED or FAILED, else its state once wait_seconds have passed.
    Consistent reads 0.1 s apart at first, the gap growing 1.5x up to interval_seconds: a short job is seen
    finished within ~0.1-0.3 s, and a long wait costs ~1/interval_seconds reads a second (DynamoDB bills per read,
    Lambda for the wait; ~45 reads for a whole 20 s wait at 0.5 s)."""
    deadline = clock() + wait_seconds
    gap = min(FIRST_INTERVAL_SECONDS, interval_seconds)
    job = get_job(jobs, job_id, client_id)
    while not job.status.is_final:
        remaining = deadline - clock()
        if remaining <= 0:
            break
        sleep(min(gap, remaining))
        gap = min(gap * 1.5, interval_seconds)
        job = get_job(jobs, job_id, client_id)
    return job


@dataclass(frozen=True)
class ListQuery:
    limit: int = DEFAULT_LIST_LIMIT
    cursor: str | None = None
    status: JobStatus | None = None
    since: str | None = None  # created_at >= since (ISO-8601 UTC)
    until: str | None = None  # created_at <= until


def _iso_bound(name: str, raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        moment = parse_iso(raw)
    except ValueError as error:
        raise bad_request(f"{name} must be an ISO-8601 time, e.g. 2026-12-01T00:00:00Z; got {raw!r}") from error
    if moment.tzinfo is None:
        raise bad_request(f"{name} must carry a time zone (Z or +hh:mm); got {raw!r}")
    return iso(moment)


def parse_list_query(params: dict[str, str]) -> ListQuery:
    """`GET /v1/jobs?limit=N&cursor=C&status=S&since=T&until=T`: each checked, 400 with what was wrong."""
    raw_limit = params.get("limit")
    try:
        limit = DEFAULT_LIST_LIMIT if raw_limit is None else int(raw_limit)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise bad_request(f"limit must be a whole number from 1 to {MAX_LIST_LIMIT}; got {raw_limit!r}")
    status = params.get("status")
    if status is not None and status not in JobStatus.__members__:
        raise bad_request(f"status must be one of {', '.join(JobStatus.__members__)}; got {status!r}")
    since, until = _iso_bound("since", params.get("since")), _iso_bound("until", params.get("until"))
    if since and until and since > until:
        raise bad_request("since must not be later than until")
    return ListQuery(limit=limit, cursor=params.get("cursor") or None, status=JobStatus(status) if status else None,
                     since=since, until=until)


def encode_cursor(key: dict | None) -> str | None:
    if key is None:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, client_id: str) -> dict:
    """The listing's start key: only one this client's listing handed out (its own client id inside)."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        valid = (isinstance(key, dict) and set(key) == _CURSOR_KEYS
                 and all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        valid = False
    if not valid or key["client_id"]["S"] != client_id:
        raise bad_request("cursor is not one this listing handed out: pass next_cursor back unchanged")
    return key


def list_jobs(jobs: JobStore, client_id: str, query: ListQuery) -> dict:
    """The caller's own jobs, newest first: one query on the client index, never a scan, never another client's."""
    start = decode_cursor(query.cursor, client_id) if query.cursor else None
    found, last_key = jobs.client_jobs(client_id, query.limit, start, query.status, query.since, query.until)
    return {"jobs": [list_view(job) for job in found], "next_cursor": encode_cursor(last_key)}


def list_view(job: Job) -> dict:
    view = job_view(job)
    view["cached"] = bool(job.cached)
    if job.finished_at:
        view["finished_at"] = job.finished_at
    return view

