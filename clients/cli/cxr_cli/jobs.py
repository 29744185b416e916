"""Upload images and follow their jobs to the end; one record per file, for the table and for --json."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from . import exit_codes
from .api import ApiError, Client
from .files import ImageFile



def upload(client: Client, image: ImageFile, progress: Callable[[int], None] | None = None) -> dict:
    """POST one image (inline, or through a presigned upload when large); a cache hit comes back COMPLETED
    with its result already in the record."""
    record: dict = {"file": str(image.path)}
    try:
        submitted = client.submit(image.data, image.media_type, progress)
    except ApiError as error:
        return {**record, "status": "ERROR", "error": str(error), "exit_code": error.exit_code}
    body = submitted.body
    record.update(id=body.get("id"), status=body.get("status"), cached=submitted.cached,
                  created_at=body.get("created_at"))
    if body.get("result"):
        record["result"] = body["result"]
    return _settle(record)


def upload_all(client: Client, images: list[ImageFile], concurrency: int = 4,
               progress: Callable[[int], None] | None = None) -> list[dict]:
    with ThreadPoolExecutor(max(1, min(concurrency, len(images)))) as pool:
        return list(pool.map(lambda image: upload(client, image, progress), images))


def follow(client: Client, records: list[dict], timeout_s: float,
           on_progress: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """Long-poll each unfinished job in turn until COMPLETED/FAILED or the deadline, then fetch its result;
    jobs that finished meanwhile answer at once, so this costs about one request per job."""
    deadline = time.monotonic() + timeout_s
    for record in records:
        if "exit_code" not in record:
            follow_one(client, record, deadline, timeout_s)
            if on_progress:
                on_progress(records)
    if on_progress:
        on_progress(records)
    return records


def follow_one(client: Client, record: dict, deadline: float, timeout_s: float) -> dict:
    try:
        job = client.wait(record["id"], max(0.0, deadline - time.monotonic()))
    except ApiError as error:
        if error.exit_code == exit_codes.TIMEOUT:
            error = ApiError(f"still {record['status']} after {timeout_s:g}s (the job may finish later)",
                             exit_codes.TIMEOUT)
        record.update(error=str(error), exit_code=error.exit_code)
        return record
    record["status"] = job.get("status")
    if job.get("error"):
        record["error"] = job["error"]
    if record["status"] == "COMPLETED":
        _fetch_result(client, record)
    return _settle(record)


def finish_without_waiting(records: list[dict]) -> list[dict]:
    for record in records:
        record.setdefault("exit_code", exit_codes.OK)
    return records


def overall_exit_code(records: list[dict]) -> int:
    return max((r["exit_code"] for r in records), default=exit_codes.OK)


def _fetch_result(client: Client, record: dict) -> None:
    try:
        record["result"] = client.result(record["id"])
    except ApiError as error:
        record.update(error=str(error), exit_code=error.exit_code)


def _settle(record: dict) -> dict:
    """Give the record its exit code once it is final: FAILED, or COMPLETED with the result in hand."""
    if "exit_code" not in record:
        if record.get("status") == "FAILED":
            record["exit_code"] = exit_codes.JOB_FAILED
        elif record.get("status") == "COMPLETED" and record.get("result"):
            record["exit_code"] = exit_codes.OK
    return record
