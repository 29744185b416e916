"""Job completion/failure events: one per final transition, published after the state is durable (at least once)."""
from __future__ import annotations

import logging

from cxr_core.domain import Job, JobStatus
from cxr_core.ports import EventPublisher

logger = logging.getLogger(__name__)

EVENT_VERSION = 1


def job_event(job: Job) -> tuple[dict, dict[str, str]]:
    """(body, message attributes). The event id is the job id and its final status: a job reaches a final state
    once (conditional writes), so a redelivered or re-published event carries the same id and dedups."""
    status = job.status.value
    body = {"event_id": f"{job.job_id}:{status}", "version": EVENT_VERSION,
            "type": "job.completed" if job.status is JobStatus.COMPLETED else "job.failed",
            "job_id": job.job_id, "client_id": job.client_id, "status": status,
            "created_at": job.created_at, "finished_at": job.finished_at or job.updated_at,
            "model_id": job.model_id}
    if job.status is JobStatus.COMPLETED:
        result = dict(job.result or {})
        result["job_id"] = job.job_id
        body["model"] = result.get("model", {})
        body["cached"] = job.cached
        body["result"] = {key: result.get(key) for key in ("job_id", "top_label", "output", "model", "created_at")}
    else:
        body["error"] = job.error or "failed"
    attributes = {"client_id": job.client_id or "-", "status": status, "event_type": body["type"]}
    return body, attributes


def notify(events: EventPublisher | None, job: Job) -> bool:
    """Publish the final job's event; False (logged) when the topic could not be reached. Never raises: the job's
    state is already durable and the caller decides whether to retry (infer leaves the message for redelivery)."""
    if events is None or not job.status.is_final:
        return True
    body, attributes = job_event(job)
    try:
        events.publish(body, attributes)
    except Exception:  # noqa: BLE001 - a lost notification must not undo or fail a finished job
        logger.exception("event %s not published", body["event_id"])
        return False
    return True
