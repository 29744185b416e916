"""The worker's batching policy: fill from what is waiting, wait only inside the window, settle precisely."""
import time

from cxr_core.services.infer import BatchReport
from cxr_core.sqs_consumer import SqsBatchSource
from cxr_local.waiting import wait_until


class ScriptedSqs:
    """Hands out messages that 'arrive' at given times; records deletes and visibility changes."""

    def __init__(self, arrivals):
        self.start = time.monotonic()
        self.pending = sorted(arrivals)
        self.deleted, self.visibility = [], []

    def receive_message(self, QueueUrl, MaxNumberOfMessages, WaitTimeSeconds, **_):
        deadline = time.monotonic() + WaitTimeSeconds
        while True:
            now = time.monotonic() - self.start
            ready = [a for a in self.pending if a[0] <= now][:MaxNumberOfMessages]
            if ready or time.monotonic() >= deadline:
                break
            time.sleep(0.005)
        for item in ready:
            self.pending.remove(item)
        return {"Messages": [{"MessageId": mid, "ReceiptHandle": f"rh-{mid}", "Body": "{}",
                              "Attributes": {"ApproximateReceiveCount": "1"}} for _, mid in ready]}

    def delete_message_batch(self, QueueUrl, Entries):
        self.deleted.extend(e["ReceiptHandle"] for e in Entries)

    def change_message_visibility_batch(self, QueueUrl, Entries):
        self.visibility.extend((e["ReceiptHandle"], e["VisibilityTimeout"]) for e in Entries)


def source(sqs, batch_size=8, window=0.0):
    return SqsBatchSource(sqs, "q", batch_size, window, visibility_seconds=30, poll_seconds=1)


def test_no_window_takes_what_is_waiting_and_goes():
    sqs = ScriptedSqs([(0, "a"), (0, "b"), (0, "c"), (0.3, "late")])
    batch = source(sqs).next_batch(lambda: False)
    assert [m.message_id for m in batch] == ["a", "b", "c"]


def test_window_waits_for_late_messages_but_not_past_a_full_batch():
    sqs = ScriptedSqs([(0, "a"), (0.1, "b"), (0.15, "c"), (2.0, "too-late")])
    started = time.monotonic()
    batch = source(sqs, batch_size=3, window=1.0).next_batch(lambda: False)
    assert [m.message_id for m in batch] == ["a", "b", "c"]
    assert time.monotonic() - started < 0.9  # full before the window closed


def test_settle_deletes_successes_and_brings_retries_back_early():
    sqs = ScriptedSqs([(0, "ok"), (0, "retry"), (0, "busy")])
    src = source(sqs)
    src.next_batch(lambda: False)
    src.settle(BatchReport(succeeded=["ok"], failed=["retry", "busy"], retry_after={"retry": 4}))
    assert sqs.deleted == ["rh-ok"] and sqs.visibility == [("rh-retry", 4)]


def test_renewing_a_long_batch_extends_the_jobs_leases_too():
    sqs = ScriptedSqs([(0, "a")])
    src = SqsBatchSource(sqs, "q", 8, 0.0, visibility_seconds=0.15, poll_seconds=1)  # renews every 50 ms
    batch = src.next_batch(lambda: False)
    renewed = []
    with src.kept_alive(batch, lambda: renewed.append(len(sqs.visibility))):
        wait_until(lambda: len(renewed) >= 2, 5, interval_s=0.01, what="two renewals")
    assert len(renewed) >= 2 and sqs.visibility[0] == ("rh-a", 0.15)


def test_one_adapter_reads_both_shapes_of_an_sqs_message():
    from cxr_core.sqs_consumer import inbound_message

    api = {"MessageId": "m1", "ReceiptHandle": "r1", "Body": "{}",
           "Attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1700000000000"}}
    event_record = {"messageId": "m1", "receiptHandle": "r1", "body": "{}", "eventSource": "aws:sqs",
                    "attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1700000000000"}}
    assert inbound_message(api, 5.0) == inbound_message(event_record, 5.0)
    read = inbound_message(event_record, 5.0)
    assert (read.message_id, read.body, read.receive_count, read.sent_at_epoch_ms, read.received_at) == \
        ("m1", "{}", 3, 1700000000000.0, 5.0)
    bare = inbound_message({"MessageId": "m2", "Body": "x"})
    assert (bare.receive_count, bare.sent_at_epoch_ms, bare.received_at) == (1, None, None)
