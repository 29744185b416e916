"""An emulated SQS event source mapping (and recovery schedule) for the infer function: InferPath=lambda locally.

What it does, as AWS documents the mapping: long-poll the queue, fill a batch of up to BatchSize records within
MaximumBatchingWindowInSeconds, invoke the function in an execution environment (FunctionPool: one process each,
cold start measured), delete the records not named in batchItemFailures, leave failed records to their visibility
timeout (the handler may shorten it), and treat an error, a timeout (the environment is killed) or a malformed
response as the whole batch failed. Concurrency grows with the backlog: a batch is received only while fewer than
MaximumConcurrency invocations run, and a new environment starts only when every warm one is busy. It is an
emulation: no poller fleet, no 6 MB payload check, no gradual scale-up (AWS: five concurrent batches, then up to 300 more a minute).
"""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import psutil

from cxr_core.sqs_consumer import fill_batch

from .lambdas import FunctionPool, LambdaError

SQS_MAX_BATCH = 10
POLL_SECONDS = 2  # long-poll wait per receive: short, so the mapping stops promptly


@dataclass(frozen=True)
class SqsMapping:
    """The function's SQS event source mapping, resolved from template.yaml."""
    function: str
    queue_url: str
    queue_arn: str
    enabled: bool
    batch_size: int
    window_s: float
    max_concurrency: int
    report_failures: bool


@dataclass(frozen=True)
class Schedule:
    function: str
    interval_s: float
    enabled: bool


@dataclass
class MappingStats:
    """What the mapping saw, for bench/ and the tests: per-invocation and per-environment figures."""
    memory_mb: int
    invocations: int = 0
    records: int = 0
    deleted: int = 0
    failed_records: int = 0
    failed_invocations: int = 0
    timeouts: int = 0
    cold_starts: int = 0
    init_s: list[float] = field(default_factory=list)
    cold_start_at: list[float] = field(default_factory=list)  # epoch seconds each environment became ready
    invoke_s: list[float] = field(default_factory=list)
    max_concurrent: int = 0
    cpu_init_s: float = 0.0
    _cpu: dict[int, tuple[psutil.Process, float]] = field(default_factory=dict)  # pid -> (process, last cpu)

    def cpu_total_s(self) -> float:
        for pid, (process, _) in list(self._cpu.items()):
            try:
                times = process.cpu_times()
                self._cpu[pid] = (process, times.user + times.system)
            except psutil.Error:  # gone (killed, timed out): its last sample stands
                pass
        return sum(cpu for _, cpu in self._cpu.values())

    def as_dict(self) -> dict:
        # init is billed too (on-demand, since August 2025); an invocation that started an environment waited for its
        # init, so its invoke_s already holds it
        billed_s = sum(self.invoke_s)
        return {"memory_mb": self.memory_mb, "invocations": self.invocations, "records": self.records,
                "deleted": self.deleted, "failed_records": self.failed_records,
                "failed_invocations": self.failed_invocations, "timeouts": self.timeouts,
                "cold_starts": self.cold_starts, "init_s": [round(s, 3) for s in self.init_s],
                "cold_start_at": [round(t, 3) for t in self.cold_start_at],
                "invoke_s_total": round(sum(self.invoke_s), 3), "billed_s_total": round(billed_s, 3),
                "gb_s_total": round(billed_s * self.memory_mb / 1024, 3), "max_concurrent": self.max_concurrent,
                "cpu_s_total": round(self.cpu_total_s(), 3), "cpu_init_s": round(self.cpu_init_s, 3)}


class EventSourceMapping:
    """Receive batches while a concurrency slot is free; invoke, then settle each batch on its own thread."""

    def __init__(self, sqs, mapping: SqsMapping, pool: FunctionPool, concurrency: int,
                 say: Callable[[str], None], nice: int = 0) -> None:
        self.sqs, self.mapping, self.pool, self.say, self.nice = sqs, mapping, pool, say, nice
        self.concurrency = max(1, concurrency)
        self.stats = MappingStats(pool.spec.memory_mb)
        self._slots = threading.Semaphore(self.concurrency)
        self._running = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        pool.on_start = self._environment_started

    def start(self) -> None:
        thread = threading.Thread(target=self._poll, name=f"esm-{self.mapping.function}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def add_schedule(self, schedule: Schedule) -> None:
        def tick() -> None:
            while not self._stop.wait(schedule.interval_s):
                try:
                    self.pool.invoke({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}},
                                     str(uuid.uuid4()))
                except LambdaError as error:
                    self.say(f"{schedule.function} scheduled invocation failed: {str(error).splitlines()[-1]}")

        thread = threading.Thread(target=tick, name=f"schedule-{schedule.function}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, grace_s: float) -> None:
        """Stop receiving; let the invocations in flight finish and settle (up to grace_s)."""
        self._stop.set()
        deadline = time.monotonic() + grace_s
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        self.pool.close()

    def write_stats(self, path: Path) -> None:
        path.write_text(json.dumps(self.stats.as_dict(), indent=2))

    # ---- environments ------------------------------------------------------------------------
    def _environment_started(self, sandbox) -> None:
        pid = sandbox.process.pid
        try:
            process = psutil.Process(pid)
            if self.nice:  # below the API, as the EC2 workers run (after init: the cold start runs at its priority)
                os.setpriority(os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, pid) + self.nice)
            times = process.cpu_times()
            cpu = times.user + times.system
        except (psutil.Error, OSError):
            return
        self.stats.cold_starts += 1
        self.stats.init_s.append(sandbox.init_s)
        self.stats.cold_start_at.append(time.time())
        self.stats.cpu_init_s += cpu
        self.stats._cpu[pid] = (process, cpu)
        self.say(f"{self.mapping.function}: execution environment pid {pid} started "
                 f"(cold start, init {sandbox.init_s:.2f}s)")

    # ---- polling -----------------------------------------------------------------------------
    def _poll(self) -> None:
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=0.5):
                continue
            try:
                records = self._receive_batch()
            except Exception as error:  # noqa: BLE001 - the mapping keeps polling, as AWS's does
                self.say(f"{self.mapping.function}: receive failed: {error!r}")
                records = []
                self._stop.wait(1)
            if not records:
                self._slots.release()
                continue
            thread = threading.Thread(target=self._invoke, args=(records,), name="esm-invoke", daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _receive(self, limit: int, wait_s: int) -> list[dict]:
        response = self.sqs.receive_message(
            QueueUrl=self.mapping.queue_url, MaxNumberOfMessages=min(SQS_MAX_BATCH, limit), WaitTimeSeconds=wait_s,
            MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"])
        return [self._record(message) for message in response.get("Messages", [])]

    def _receive_batch(self) -> list[dict]:
        return fill_batch(self._receive, self.mapping.batch_size, self.mapping.window_s, POLL_SECONDS,
                          self._stop.is_set)

    def _record(self, message: dict) -> dict:
        """An SQS message as the mapping hands it to Lambda (the event's Records[] shape)."""
        return {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"], "attributes": message.get("Attributes", {}),
                "messageAttributes": message.get("MessageAttributes", {}), "md5OfBody": message.get("MD5OfBody"),
                "eventSource": "aws:sqs", "eventSourceARN": self.mapping.queue_arn,
                "awsRegion": self.mapping.queue_arn.split(":")[3]}

    # ---- invoking and settling ----------------------------------------------------------------
    def _invoke(self, records: list[dict]) -> None:
        with self._lock:
            self._running += 1
            self.stats.max_concurrent = max(self.stats.max_concurrent, self._running)
        started = time.monotonic()
        try:
            failed = self._failed_ids(records, self.pool.invoke({"Records": records}, str(uuid.uuid4())))
        except LambdaError as error:
            failed = {record["messageId"] for record in records}
            self.stats.timeouts += error.timed_out
            self.say(f"{self.mapping.function}: batch of {len(records)} failed, left to the visibility timeout: "
                     f"{str(error).strip().splitlines()[-1]}")
        finally:
            elapsed = time.monotonic() - started
            with self._lock:
                self._running -= 1
        try:
            self._delete([record for record in records if record["messageId"] not in failed])
        except Exception as error:  # noqa: BLE001 - undeleted records come back; the handler is idempotent
            self.say(f"{self.mapping.function}: delete failed: {error!r}")
        with self._lock:
            self.stats.invocations += 1
            self.stats.records += len(records)
            self.stats.invoke_s.append(elapsed)
            self.stats.failed_records += len(failed)
            self.stats.deleted += len(records) - len(failed)
            self.stats.failed_invocations += len(failed) == len(records)
        self.stats.cpu_total_s()
        self._slots.release()

    def _failed_ids(self, records: list[dict], response: Any) -> set[str]:
        """ReportBatchItemFailures: the named records failed; a malformed answer fails the whole batch."""
        ids = {record["messageId"] for record in records}
        if not self.mapping.report_failures or not response:
            return set()
        failures = response.get("batchItemFailures") if isinstance(response, dict) else None
        if failures is None:
            return set()
        named = {item.get("itemIdentifier") if isinstance(item, dict) else None for item in failures}
        if not named <= ids:  # an empty, null or unknown identifier: Lambda retries the whole batch
            self.say(f"{self.mapping.function}: invalid batchItemFailures {failures!r}: the whole batch failed")
            return ids
        return named

    def _delete(self, records: list[dict]) -> None:
        for start in range(0, len(records), SQS_MAX_BATCH):
            chunk = records[start:start + SQS_MAX_BATCH]
            self.sqs.delete_message_batch(QueueUrl=self.mapping.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": record["receiptHandle"]} for i, record in enumerate(chunk)])
