"""The worker's side of SQS: fill a micro-batch within a window, delete what succeeded, keep the rest alive."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable

from cxr_core.services.infer import BatchReport, InboundMessage

SQS_MAX_BATCH = 10
IDLE_NAP_SECONDS = 0.02


def inbound_message(raw: dict, received_at: float | None = None) -> InboundMessage:
    """An SQS message as the infer service reads it, from either shape SQS hands one over in: ReceiveMessage's
    (MessageId, Body, Attributes) or a Lambda event source mapping's record (messageId, body, attributes)."""
    lambda_record = "messageId" in raw
    attributes = raw.get("attributes" if lambda_record else "Attributes") or {}
    sent = attributes.get("SentTimestamp")
    return InboundMessage(message_id=raw["messageId" if lambda_record else "MessageId"],
                          body=raw["body" if lambda_record else "Body"],
                          receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
                          sent_at_epoch_ms=float(sent) if sent else None, received_at=received_at)


def defer(sqs_client, queue_url: str, receipts: dict[str, str], retry_after: dict[str, int]) -> None:
    """Bring failed messages back after retry_after seconds instead of the whole visibility timeout (both entry
    points: the EC2 worker's settle and the Lambda handler before it returns batchItemFailures)."""
    retry = [(m, s) for m, s in retry_after.items() if m in receipts]
    for start in range(0, len(retry), SQS_MAX_BATCH):
        chunk = retry[start:start + SQS_MAX_BATCH]
        sqs_client.change_message_visibility_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": receipts[m], "VisibilityTimeout": s} for i, (m, s) in enumerate(chunk)])


def fill_batch(receive: Callable[[int, int], list], batch_size: int, window_seconds: float, poll_seconds: int,
               should_stop: Callable[[], bool]) -> list:
    """receive(limit, wait_seconds) until batch_size items: a first long poll, then what is already waiting, and
    more only while the batching window is open (also the local Lambda event source mapping's batching)."""
    batch = receive(batch_size, poll_seconds)
    deadline = time.monotonic() + window_seconds
    while batch and len(batch) < batch_size and not should_stop():
        more = receive(batch_size - len(batch), 0)
        if more:
            batch.extend(more)
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(IDLE_NAP_SECONDS, remaining))
    return batch


class SqsBatchSource:
    def __init__(self, sqs_client, queue_url: str, batch_size: int, window_seconds: float,
                 visibility_seconds: int, poll_seconds: int = 2):
        self._sqs = sqs_client
        self._url = queue_url
        self.batch_size = batch_size
        self.window_seconds = window_seconds
        self.visibility_seconds = visibility_seconds
        self._poll_seconds = poll_seconds
        self._receipts: dict[str, str] = {}

    def _receive(self, limit: int, wait_seconds: int) -> list[InboundMessage]:
        # SQS starts a message's visibility timeout somewhere inside this call, never before it: the call's start
        # bounds it from below however late a busy host gets to read the answer (the job's lease counts from it)
        received_at = time.time()
        response = self._sqs.receive_message(
            QueueUrl=self._url, MaxNumberOfMessages=min(SQS_MAX_BATCH, limit), WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"])
        messages = []
        for raw in response.get("Messages", []):
            self._receipts[raw["MessageId"]] = raw["ReceiptHandle"]
            messages.append(inbound_message(raw, received_at))
        return messages

    def next_batch(self, should_stop: Callable[[], bool]) -> list[InboundMessage]:
        """Long-poll for a first message, take whatever else is already waiting, and wait for more only while
        the batching window is open (on a CPU a bigger batch saves little, so the default window is short)."""
        return fill_batch(self._receive, self.batch_size, self.window_seconds, self._poll_seconds, should_stop)

    def settle(self, report: BatchReport) -> None:
        """Delete acknowledged messages; bring retryable failures back sooner than the visibility timeout."""
        done = [m for m in report.succeeded if m in self._receipts]
        for start in range(0, len(done), SQS_MAX_BATCH):
            chunk = done[start:start + SQS_MAX_BATCH]
            self._sqs.delete_message_batch(QueueUrl=self._url, Entries=[
                {"Id": str(i), "ReceiptHandle": self._receipts[m]} for i, m in enumerate(chunk)])
        defer(self._sqs, self._url, self._receipts, report.retry_after)
        self._receipts.clear()

    @contextmanager
    def kept_alive(self, messages: list[InboundMessage], on_renew: Callable[[], None] | None = None):
        """While a batch runs, renew its visibility at a third of the timeout so no one else gets it, and call
        on_renew (which extends the jobs' leases: a lease outliving its message's visibility holds up the retry)."""
        stop = threading.Event()

        def renew():
            while not stop.wait(self.visibility_seconds / 3):
                if on_renew is not None:
                    on_renew()
                held = [m.message_id for m in messages if m.message_id in self._receipts]
                for start in range(0, len(held), SQS_MAX_BATCH):
                    self._sqs.change_message_visibility_batch(QueueUrl=self._url, Entries=[
                        {"Id": str(i), "ReceiptHandle": self._receipts[m], "VisibilityTimeout": self.visibility_seconds}
                        for i, m in enumerate(held[start:start + SQS_MAX_BATCH])])

        thread = threading.Thread(target=renew, name="visibility", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=1)
