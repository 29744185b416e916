"""The recovery pass: jobs that the queue alone would never finish get another message or a final FAILED.

SQS redelivery already covers a worker that dies mid-batch (the message reappears after the visibility
timeout and the expired claim is taken over). Two cases it cannot cover:
- a QUEUED job with no message: the submitter died between the DynamoDB write and the SQS send;
- an IN_PROGRESS job whose worker died on the message's last allowed delivery: SQS moves the message
  to the DLQ on the next receive, and nobody would ever finish the job.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from cxr_core.domain import JobMessage, JobStatus, iso, utc_now
from cxr_core.ports import EventPublisher, JobQueue, JobStore
from cxr_core.services.notifications import notify

logger = logging.getLogger(__name__)


@dataclass
class RecoveryReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def recover_stuck_jobs(jobs: JobStore, queue: JobQueue, older_than_seconds: int, max_attempts: int,
                       limit: int = 100, events: EventPublisher | None = None) -> RecoveryReport:
    report = RecoveryReport()
    cutoff = iso(utc_now() - timedelta(seconds=older_than_seconds))
    for job in jobs.jobs_by_status(JobStatus.IN_PROGRESS, "", limit=limit, before=cutoff):
        if job.attempts >= max_attempts:
            if jobs.fail_job(job, None, f"abandoned after {job.attempts} attempts: its worker stopped while running it"):
                notify(events, job)
            report.failed.append(job.job_id)
        elif jobs.reset_to_queued(job):
            queue.send(JobMessage(job.job_id, job.image_key, job.image_sha256, job.model_id))
            report.requeued.append(job.job_id)
    for job in jobs.jobs_by_status(JobStatus.QUEUED, "", limit=limit, before=cutoff):
        if jobs.touch_queued(job):
            queue.send(JobMessage(job.job_id, job.image_key, job.image_sha256, job.model_id))
            report.requeued.append(job.job_id)
    if report.requeued or report.failed:
        logger.warning("recovery: re-enqueued %s, failed %s", report.requeued, report.failed)
    return report
