"""GET /v1/ops/*: health, readiness, the last five minutes' metrics, and the failed jobs."""
from __future__ import annotations

import time
from datetime import timedelta
from typing import Callable

from cxr_core.domain import JobStatus, iso, parse_iso, utc_now
from cxr_core.ports import JobQueue, JobStore

WINDOW = timedelta(minutes=5)


def health(model: dict) -> dict:
    """Liveness: the process answers. Looks at nothing else (readiness does)."""
    return {"status": "ok", "time": iso(utc_now()), "model": model}


def readiness(probes: dict[str, Callable[[], object]]) -> dict:
    """Readiness: one cheap call to each dependency (tables, bucket, queues, model artifacts), each timed; any
    failure makes the whole answer not ready. What a probe returns is kept under its name only for "model"."""
    checks: dict[str, dict] = {}
    model = None
    for name, probe in probes.items():
        started = time.perf_counter()
        try:
            answer = probe()
            checks[name] = {"ok": True}
            if name == "model":
                model = answer
        except Exception as error:
            checks[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
        checks[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    ready = all(check["ok"] for check in checks.values())
    return {"status": "ready" if ready else "not_ready", "time": iso(utc_now()), "checks": checks, "model": model}


def _percentile(sorted_values: list[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return round(sorted_values[index], 1)


def metrics(jobs: JobStore, queue: JobQueue) -> dict:
    now = utc_now()
    since = iso(now - WINDOW)
    completed = jobs.jobs_by_status(JobStatus.COMPLETED, since)
    failed = jobs.jobs_by_status(JobStatus.FAILED, since)
    inferred = [job for job in completed if not job.cached]
    latencies = sorted((parse_iso(job.finished_at) - parse_iso(job.created_at)).total_seconds() * 1000
                       for job in inferred if job.finished_at)
    finished = len(inferred) + len(failed)
    seconds = WINDOW.total_seconds()
    return {
        "window_seconds": int(seconds),
        "completed": len(inferred),
        "cache_hits": len(completed) - len(inferred),
        "failed": len(failed),
        "throughput_per_second": round(len(inferred) / seconds, 3),
        "failure_rate": round(len(failed) / finished, 4) if finished else 0.0,
        "latency_ms": {"p50": _percentile(latencies, 0.50), "p95": _percentile(latencies, 0.95),
                       "p99": _percentile(latencies, 0.99)},
        "queue": queue.depth(),
    }


def dead_letters(jobs: JobStore, queue: JobQueue, limit: int = 100) -> dict:
    failed = jobs.jobs_by_status(JobStatus.FAILED, "", limit=limit)
    return {
        "dead_letter_messages": queue.depth().get("dead_letter", 0),
        "failed_jobs": [{"id": job.job_id, "error": job.error, "attempts": job.attempts,
                         "created_at": job.created_at, "updated_at": job.updated_at} for job in failed],
    }
