"""POST /v1/jobs: validate, answer from the SHA-256 cache, or store, record and enqueue a new job."""
from __future__ import annotations

import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Callable

from cxr_core.domain import (Job, JobMessage, JobStatus, Upload, iso, new_job_id, sha256_hex, stored_digest, unavailable,
                             utc_now)
from cxr_core.ports import CacheKeyTaken, EventPublisher, ImageHolds, ImageStore, JobQueue, JobStore
from cxr_core.services.notifications import notify

logger = logging.getLogger(__name__)

_MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "dicom": "application/dicom"}
_DEDUP_ATTEMPTS = 3
_HOLD_WAITS_SECONDS = (0.05, 0.1, 0.2, 0.4, 0.8)  # while another request erases the same image (one S3 delete)


@dataclass
class SubmitDeps:
    jobs: JobStore
    images: ImageStore
    queue: JobQueue
    model_id: str
    check_image: Callable[[bytes], object]  # info with .format; ServiceError UNSUPPORTED_MEDIA / UNDECODABLE
    deidentify_dicom: Callable[[bytes, str], bytes]  # required: what is stored keeps no patient identity; (bytes, sha)
    executor: Executor | None = None  # runs the image check while the cache lookup waits on DynamoDB
    cache_scope: str = "client"  # client: answers only from the caller's own uploads; global: from anyone's
    events: EventPublisher | None = None  # job events (a cache hit is a job COMPLETED at once)
    # the stored form: metadata segments, trailing bytes and invalid allow-listed values dropped (cxr_model.strip)
    strip_metadata: Callable[[bytes, str], bytes] | None = None
    holds: ImageHolds | None = None  # which jobs need a stored image (DELETE /v1/jobs/{id}); None: not tracked


@dataclass
class SubmitOutcome:
    job: Job
    created: bool  # True: a new job was queued (201); False: an existing or cached answer (200)


def _image_format(data: bytes, check_image: Callable[[bytes], object]) -> str:
    return check_image(data).format


def _cached_copy(entry_result: dict, template: Job) -> Job:
    """A cache hit gets a job of its own (COMPLETED at once), so every client polls its own id. In global scope the
    answer may be another client's: it carries this job's times, never when that client's inference ran."""
    result = dict(entry_result)
    result["job_id"] = template.job_id
    if template.cache_owner is None:
        result["created_at"] = template.created_at
    template.status = JobStatus.COMPLETED
    template.cached = True
    template.result = result
    template.finished_at = template.updated_at
    return template


def _enqueue(job: Job, deps: SubmitDeps) -> SubmitOutcome:
    """Send the job's message. If the send fails, the job stays QUEUED and the recovery pass sends it later:
    deleting the job instead could leave a message without a job when the send did reach SQS."""
    try:
        deps.queue.send(JobMessage(job.job_id, job.image_key, job.image_sha256, job.model_id))
    except Exception:
        logger.exception("enqueue failed for job %s; the recovery pass will send it", job.job_id)
    return SubmitOutcome(job, created=True)


def _hold_image(job: Job, holds: ImageHolds) -> None:
    """The job holds its image before the image is stored, so no erasure can delete it from under the job."""
    for wait in (*_HOLD_WAITS_SECONDS, None):
        if holds.hold(job.image_key, job.job_id):
            return
        if wait is not None:
            time.sleep(wait)
    raise unavailable("this image is being erased by another request right now; retry in a moment")


def _drop_hold(job: Job, deps: SubmitDeps) -> None:
    """The job was never created: give its hold back, and the image too if it was the only holder."""
    try:
        mark = deps.holds.release(job.image_key, job.job_id)
        if mark is not None:
            deps.images.delete(job.image_key)
            deps.holds.deleted(job.image_key, mark)
    except Exception:  # the answer stands; the image goes at the bucket's lifecycle expiry
        logger.exception("could not release the hold of job %s on %s", job.job_id, job.image_key)


def submit_image(upload: Upload, deps: SubmitDeps, client_id: str | None = None,
                 model_id: str | None = None) -> SubmitOutcome:
    """Bytes the cache already knows were validated when first submitted, so a cache hit (or the same client's
    job in flight) is answered without waiting for the image check (it inflates a whole PNG or parses a whole
    JPEG); a new image's check runs while the cache lookup waits on DynamoDB. model_id: a served model other than
    the default (its own cache entries: the key holds the model id)."""
    state = {"held": False}
    outcome = _submit(upload, deps, client_id, model_id, state)
    if state["held"] and not outcome.created:  # answered with another job: this one was never created
        _drop_hold(state["job"], deps)
    # an exception keeps the hold: the job may exist though the answer was lost, and a leaked hold only keeps the
    # image until the bucket's lifecycle expiry
    return outcome


def _submit(upload: Upload, deps: SubmitDeps, client_id: str | None, model_id: str | None,
            state: dict) -> SubmitOutcome:
    check = deps.executor.submit(_image_format, upload.data, deps.check_image) if deps.executor else None
    image_format = None
    digest = upload.sha256 or sha256_hex(upload.data)
    moment = iso(utc_now())
    job = Job(job_id=new_job_id(), status=JobStatus.QUEUED, image_sha256=digest,
              image_key=f"images/{digest}", model_id=model_id or deps.model_id, created_at=moment, updated_at=moment,
              client_id=client_id, cache_owner=None if deps.cache_scope == "global" else client_id)
    state["job"] = job
    stale_job_id = None
    claim_cache = True
    stored = False
    for _ in range(_DEDUP_ATTEMPTS):
        entry = deps.jobs.get_cache(job.cache_key)
        if entry is not None and entry.job_id == job.job_id:
            return _enqueue(job, deps)  # our own transaction committed, though its answer was lost
        if entry is not None and entry.done:
            copy = _cached_copy(entry.result, job)
            deps.jobs.put_job(copy)
            notify(deps.events, copy)  # the caller has the result in this answer; a lost event is only logged
            return SubmitOutcome(copy, created=False)
        if entry is not None:
            running = deps.jobs.get_job(entry.job_id)
            if running is not None and not running.status.is_final:
                if running.client_id == client_id:
                    return SubmitOutcome(running, created=False)
                claim_cache = False  # another client's job: never hand out its id; run this one on its own
            else:
                stale_job_id = entry.job_id  # its job failed or vanished: take the key over
        if image_format is None:
            image_format = check.result() if check else _image_format(upload.data, deps.check_image)
        if not stored:
            if deps.holds is not None:
                _hold_image(job, deps.holds)
                state["held"] = True
            stored_bytes = deps.deidentify_dicom(upload.data, digest) if image_format == "dicom" else upload.data
            if deps.strip_metadata is not None:
                stored_bytes = deps.strip_metadata(stored_bytes, image_format)
            deps.images.put(job.image_key, stored_bytes, _MEDIA_TYPES[image_format])
            job.stored_digest = stored_digest(stored_bytes)
            stored = True
        try:
            deps.jobs.create_job(job, stale_job_id=stale_job_id, claim_cache=claim_cache)
        except CacheKeyTaken:
            continue  # a racing identical upload won: answer with its job on the next pass
        return _enqueue(job, deps)
    raise unavailable("could not settle a concurrent upload of the same image; try again")
