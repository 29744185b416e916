"""What the fault tests read back: client outcomes (Ledger), moto's tables/bucket/queue, invariants, the report row."""
from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field

import requests

from cxr_local.launcher import StackProcess
from cxr_local.waiting import wait_until
from tests.faults.harness import FINAL, FaultStack


def api_key(stack: StackProcess) -> dict:
    key = stack.info.get("api_key") or stack.info.get("dev_api_key")
    return {"x-api-key": key} if key else {}


@dataclass
class Ledger:
    """What clients were told: every response, and the ids of the jobs they were given (201 or 200)."""
    responses: Counter = field(default_factory=Counter)
    accepted: dict[str, str] = field(default_factory=dict)  # job id -> what was uploaded (label)
    rejected: list[tuple[str, int, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, session: requests.Session, front: StackProcess, data: bytes, label: str) -> int | None:
        try:
            response = session.post(f"{front.url}/v1/jobs", data=data,
                                    headers={"Content-Type": "image/png", **api_key(front)}, timeout=60)
        except requests.RequestException as error:
            with self.lock:
                self.responses[f"no answer ({type(error).__name__})"] += 1
            return None
        with self.lock:
            self.responses[response.status_code] += 1
            if response.status_code in (200, 201):
                self.accepted[response.json()["id"]] = label
            else:
                body = response.json()
                assert body.get("error") and body.get("code"), body  # every error is the documented JSON
                self.rejected.append((label, response.status_code, body["code"]))
        return response.status_code


def jobs_table(stack: FaultStack) -> dict[str, dict]:
    client = stack.aws("dynamodb")
    items, start = [], None
    while True:
        page = client.scan(TableName=stack.resources["tables"]["JobsTable"], ConsistentRead=True,
                           **({"ExclusiveStartKey": start} if start else {}))
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    return {item["job_id"]["S"]: {k: next(iter(v.values())) for k, v in item.items()} for item in items}


def cache_table(stack: FaultStack) -> list[dict]:
    items = stack.aws("dynamodb").scan(TableName=stack.resources["tables"]["ResultsTable"], ConsistentRead=True)["Items"]
    return [{k: next(iter(v.values())) for k, v in item.items()} for item in items
            if not item["cache_key"]["S"].startswith("hold#")]  # image holds share the table: not cache entries


def image_keys(stack: FaultStack) -> set[str]:
    s3 = stack.aws("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=stack.resources["buckets"]["ImagesBucket"])
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def queued_messages(stack: FaultStack, queue: str = "JobsQueue") -> list[str]:
    """Job ids of every message in a queue (only meaningful while no worker runs); they stay put."""
    sqs, url = stack.aws("sqs"), stack.resources["queues"][queue]
    seen, handles = [], []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30,
                                       WaitTimeSeconds=0).get("Messages"):
        for message in batch:
            seen.append(json.loads(message["Body"]).get("job_id"))
            handles.append(message["ReceiptHandle"])
    for handle in handles:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return seen


def consistency_problems(stack: FaultStack) -> list[str]:
    """The half-created states issue 7 forbids, read from moto itself."""
    jobs, images = jobs_table(stack), image_keys(stack)
    problems = [f"job {job_id} has no image {job['image_key']}" for job_id, job in jobs.items()
                if job["image_key"] not in images]
    problems += [f"job {job_id} COMPLETED without a result" for job_id, job in jobs.items()
                 if job["status"] == "COMPLETED" and not job.get("result")]
    problems += [f"job {job_id} FAILED without a reason" for job_id, job in jobs.items()
                 if job["status"] == "FAILED" and not job.get("error")]
    problems += [f"cache entry {entry['cache_key'][:16]}.. ({entry['state']}) names missing job {entry['job_id']}"
                 for entry in cache_table(stack) if entry["job_id"] not in jobs]
    return problems


def wait_final(stack: FaultStack, job_ids, timeout_s: float) -> dict[str, str]:
    """The jobs' statuses once every one is final, or as they stand after timeout_s (the caller's report and
    asserts say which are not)."""
    statuses: dict[str, str] = {}

    def all_final() -> bool:
        jobs = jobs_table(stack)
        statuses.update({job_id: jobs.get(job_id, {}).get("status", "MISSING") for job_id in job_ids})
        return all(status in FINAL for status in statuses.values())

    try:
        wait_until(all_final, timeout_s, interval_s=0.5)
    except TimeoutError:
        pass
    return statuses


def wait_queue_settled(stack: FaultStack, timeout_s: float) -> None:
    """Until the jobs queue holds no message, visible or in flight: every delivery was deleted, so no redelivery
    can come any more (a message whose delete was lost stays in flight until its visibility timeout, then returns)."""
    sqs, url = stack.aws("sqs"), stack.resources["queues"]["JobsQueue"]

    def settled() -> bool:
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return all(value == "0" for value in counts.values())

    wait_until(settled, timeout_s, interval_s=0.2, what="the jobs queue empty, nothing in flight")


def report(title: str, stack: FaultStack, ledger: Ledger, statuses: dict[str, str], extra: dict | None = None) -> dict:
    """The issue-7 row for one scenario, printed (run with -s) and returned for the assertions."""
    completions = stack.completions()
    injected = stack.control.state()["injected"]
    row = {"faults injected": sum(n for key, n in injected.items() if not key.endswith(":delay")),
           "jobs accepted": len(ledger.accepted),
           "completed": sum(s == "COMPLETED" for s in statuses.values()),
           "failed": sum(s == "FAILED" for s in statuses.values()),
           "lost": sum(s not in FINAL for s in statuses.values()),
           "duplicated": sum(1 for job_id in ledger.accepted if completions[job_id] > 1),
           **(extra or {})}
    print(f"\n[faults] {title}: " + " | ".join(f"{k}: {v}" for k, v in row.items()))
    print(f"[faults]   responses {dict(ledger.responses)}; injected {stack.control.state()['injected']}")
    return row
