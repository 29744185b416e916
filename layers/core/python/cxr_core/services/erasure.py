"""DELETE /v1/jobs/{id}: erase a client's job, its result and cache entry, and its image unless another job holds it.

Order matters:
1. the job item goes first (conditional): a worker's result write is conditional on the job being IN_PROGRESS under
   its claim, so no result is written after this; a job in flight is thereby cancelled (its worker finds it gone,
   writes nothing and acknowledges the message);
2. its cache entry, only if the entry is this job's (a result written just before step 1 goes with it), so no later
   upload of the same image is answered from it;
3. derived objects under `derived/<job id>/` (per-job objects; the result's heatmaps live in its job item);
4. its hold on the stored image; the image, and the 224 px model input derived from it (the heatmap's
   background, keyed by the image's SHA-256 like the image), are deleted only when no other job of any client
   holds the image (ImageHolds: holds and the deletion mark exclude each other by DynamoDB conditions).
A second DELETE of the same id answers 404, like any id the caller does not own. Should S3 fail on the image after
the job is gone (botocore retried it already), the answer is a 503 and the image goes at the bucket's lifecycle
expiry (JOB_TTL_DAYS): the job, its result and its cache entry are gone either way.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from cxr_core.domain import job_not_found
from cxr_core.heatmaps import model_input_key
from cxr_core.ports import ImageHolds, ImageStore, JobStore
from cxr_core.services.jobs import get_job

logger = logging.getLogger(__name__)


def derived_prefix(job_id: str) -> str:
    return f"derived/{job_id}/"


@dataclass
class ErasureDeps:
    jobs: JobStore
    images: ImageStore
    holds: ImageHolds


@dataclass
class Erasure:
    job_id: str
    image_deleted: bool  # False: another job still holds the image (or its deletion is in another's hands)


def delete_job(deps: ErasureDeps, job_id: str, client_id: str | None) -> Erasure:
    job = get_job(deps.jobs, job_id, client_id)  # another client's id is as good as unknown: 404
    if not deps.jobs.delete_job(job):
        raise job_not_found(job_id)  # a concurrent DELETE got there first
    deps.images.delete_prefix(derived_prefix(job.job_id))
    mark = deps.holds.release(job.image_key, job.job_id)
    if mark is None:
        return Erasure(job.job_id, image_deleted=False)
    deps.images.delete(model_input_key(job.image_key))
    deps.images.delete(job.image_key)
    deps.holds.deleted(job.image_key, mark)
    logger.info("job %s erased with its image", job.job_id)
    return Erasure(job.job_id, image_deleted=True)
