"""The audit trail: one structured line per access to a job's data (submit, reads, delete, listing, operator routes):
when, who, which route and job, and the answer's status; never image bytes, scores or keys."""
from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from cxr_core.domain import iso, utc_now

logger = logging.getLogger("cxr.audit")


@dataclass(frozen=True)
class AuditEntry:
    time: str
    client_id: str | None  # None: the caller was not authenticated
    operator: bool
    route: str  # the route key, e.g. "GET /v1/jobs/{id}"
    job_id: str | None  # None for routes about no single job (a listing, the operator routes)
    outcome: int  # the HTTP status answered
    source_ip: str | None = None
    request_id: str | None = None
    count: int | None = None  # a listing: how many jobs it showed

    @classmethod
    def now(cls, **fields) -> "AuditEntry":
        return cls(time=iso(utc_now()), **fields)

    def to_dict(self) -> dict:
        return {"type": "cxr.audit", "version": 1, **{k: v for k, v in asdict(self).items() if v is not None}}


class FileAuditLog:
    """JSON lines appended to one file (the local stack's audit log, listed in its ready file under `logs`). Each
    line is one write of under 4 KiB in append mode, so processes sharing the file do not interleave lines."""

    def __init__(self, path: str):
        self.path = Path(path)
        self._lock = threading.Lock()

    def write(self, entry: dict) -> None:
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        with self._lock:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(descriptor, line)
            finally:
                os.close(descriptor)

    def history(self, job_id: str) -> list[dict]:
        if not self.path.is_file():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("job_id") == job_id:
                found.append(entry)
        return found


class CloudWatchAuditLog:
    """The audit log group (template.yaml AuditLogGroup, retention AuditLogRetentionDays): one stream per process."""

    def __init__(self, logs_client, group: str):
        self._logs = logs_client
        self.group = group
        self._stream: str | None = None
        self._lock = threading.Lock()

    def write(self, entry: dict) -> None:
        with self._lock:
            if self._stream is None:
                stream = f"{iso(utc_now())[:10]}/{uuid.uuid4().hex}"
                self._logs.create_log_stream(logGroupName=self.group, logStreamName=stream)
                self._stream = stream
            self._logs.put_log_events(logGroupName=self.group, logStreamName=self._stream, logEvents=[
                {"timestamp": int(utc_now().timestamp() * 1000), "message": json.dumps(entry, separators=(",", ":"))}])

    def history(self, job_id: str) -> list[dict]:
        found = []
        pages = self._logs.get_paginator("filter_log_events").paginate(
            logGroupName=self.group, filterPattern=f'{{ $.job_id = "{job_id}" }}')
        for page in pages:
            found += [json.loads(event["message"]) for event in page.get("events", [])]
        return sorted(found, key=lambda entry: entry.get("time", ""))


class LoggingAuditLog:
    """Neither a log group nor a file configured: the lines go to the process's own log, marked type cxr.audit."""

    def write(self, entry: dict) -> None:
        logger.info(json.dumps(entry, separators=(",", ":")))

    def history(self, job_id: str) -> list[dict]:
        raise RuntimeError("no audit log configured (AUDIT_LOG_GROUP or AUDIT_LOG_FILE): nothing to read back")
