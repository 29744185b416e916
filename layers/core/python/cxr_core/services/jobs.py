"""GET /v1/jobs/{id} and /result: read a job, shape the views the HTTP contract fixes."""
from __future__ import annotations

from cxr_core.domain import Job, JobStatus, job_not_found, result_not_ready
from cxr_core.ports import JobStore


def job_view(job: Job) -> dict:
    view = {"id": job.job_id, "status": job.status.value, "created_at": job.created_at,
            "updated_at": job.updated_at}
    if job.status is JobStatus.FAILED:
        view["error"] = job.error or "failed"
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
