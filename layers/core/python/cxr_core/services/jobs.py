"""GET /v1/jobs/{id} and /result: read a job, shape the views the HTTP contract fixes."""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from datetime import timedelta
from typing import Callable, Iterator

from cxr_core.domain import (ErrorKind, Job, JobStatus, ServiceError, bad_request, iso, job_not_found, parse_iso,
                             result_not_ready)
from cxr_core.ports import JobStore, Leases

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
