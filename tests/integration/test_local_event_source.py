"""The local SQS event source mapping (InferPath=lambda): settings from the template, batching, deletion of what
succeeded only, whole-batch failure on error/timeout/bad answer, concurrency that follows the backlog."""
from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from cxr_local.event_source import EventSourceMapping
from cxr_local.infer_lambda import SqsMapping, schedules, sqs_mapping
from cxr_local.lambdas import FunctionPool
from cxr_local.template import FunctionSpec, StackTemplate
from cxr_local.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 20
HANDLER = '''
import json, time

def lambda_handler(event, context):
    failures = []
    for record in event["Records"]:
        body = json.loads(record["body"])
        time.sleep(body.get("sleep", 0))
        if body.get("raise"):
            raise RuntimeError("boom")
        if body.get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
        if body.get("bad_answer"):
            failures.append({"itemIdentifier": ""})
    return {"batchItemFailures": failures}
'''


class FakeSqs:
    """Just enough of SQS: visible messages, receipt handles, deletes; a received message stays in flight."""

    def __init__(self) -> None:
        self.visible: list[dict] = []
        self.in_flight: dict[str, dict] = {}
        self.deleted: list[str] = []
        self.receive_sizes: list[int] = []
        self._ids = itertools.count()
        self._lock = threading.Lock()

    def send(self, body: str) -> str:
        message_id = f"m{next(self._ids)}"
        with self._lock:
            self.visible.append({"MessageId": message_id, "Body": body, "Attributes": {"ApproximateReceiveCount": "1"}})
        return message_id

    def receive_message(self, QueueUrl, MaxNumberOfMessages, WaitTimeSeconds, **_):  # noqa: N803 - boto3's names
        deadline = time.monotonic() + min(WaitTimeSeconds, 0.2)
        while True:
            with self._lock:
                taken, self.visible = self.visible[:MaxNumberOfMessages], self.visible[MaxNumberOfMessages:]
                for message in taken:
                    message["ReceiptHandle"] = f"rh-{message['MessageId']}-{next(self._ids)}"
                    self.in_flight[message["ReceiptHandle"]] = message
            if taken or time.monotonic() >= deadline:
                if taken:
                    self.receive_sizes.append(len(taken))
                return {"Messages": taken}
            time.sleep(0.01)

    def delete_message_batch(self, QueueUrl, Entries):  # noqa: N803
        with self._lock:
            for entry in Entries:
                self.deleted.append(self.in_flight.pop(entry["ReceiptHandle"])["MessageId"])
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries]}


def _mapping(batch_size: int = 4, window_s: float = 0.0, max_concurrency: int = 2) -> SqsMapping:
    return SqsMapping("TestFunction", "https://sqs.local/q", "arn:aws:sqs:us-east-1:123456789012:q", True,
                      batch_size, window_s, max_concurrency, True)


@pytest.fixture
def start(tmp_path):
    started: list[EventSourceMapping] = []
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text(HANDLER)

    def _start(sqs: FakeSqs, timeout_s: int = 10, concurrency: int = 1, **mapping) -> EventSourceMapping:
        spec = FunctionSpec("TestFunction", "cxr-test-fn", tmp_path / "fn", "app.lambda_handler", 1024, timeout_s, {})
        esm = EventSourceMapping(sqs, _mapping(**mapping), FunctionPool(spec, concurrency, "us-east-1", "1"),
                                 concurrency, say=lambda _: None)
        esm.start()
        started.append(esm)
        return esm

    yield _start
    for esm in started:
        esm.stop(grace_s=5)


def test_deletes_the_records_not_reported_and_leaves_the_failed_ones(start):
    sqs = FakeSqs()
    good = [sqs.send('{"n": %d}' % n) for n in range(5)]
    bad = sqs.send('{"fail": true}')
    esm = start(sqs, batch_size=4)
    wait_until(lambda: esm.stats.records == 6, WAIT_S)
    wait_until(lambda: len(sqs.deleted) == 5, WAIT_S)
    assert sorted(sqs.deleted) == sorted(good)
    assert [m["MessageId"] for m in sqs.in_flight.values()] == [bad]  # left to its visibility timeout
    assert max(sqs.receive_sizes) <= 4 and esm.stats.invocations >= 2  # batches of at most BatchSize
    assert esm.stats.cold_starts == 1 and esm.stats.failed_records == 1


def test_a_handler_error_or_an_invalid_answer_fails_the_whole_batch(start):
    sqs = FakeSqs()
    esm = start(sqs, batch_size=2, window_s=1.0)
    sqs.send('{"n": 1}')
    sqs.send('{"raise": true}')
    wait_until(lambda: esm.stats.invocations == 1, WAIT_S)
    sqs.send('{"n": 2}')
    sqs.send('{"bad_answer": true}')
    wait_until(lambda: esm.stats.invocations == 2, WAIT_S)  # counted once the batch's deletes are done
    assert sqs.deleted == [] and len(sqs.in_flight) == 4
    assert esm.stats.failed_invocations == 2


def test_a_batch_past_the_function_timeout_fails_and_its_environment_is_replaced(start):
    sqs = FakeSqs()
    esm = start(sqs, timeout_s=1, batch_size=1)
    slow = sqs.send('{"sleep": 3}')
    wait_until(lambda: esm.stats.invocations == 1, WAIT_S)
    assert esm.stats.timeouts == 1 and slow not in sqs.deleted
    quick = sqs.send('{"n": 1}')
    wait_until(lambda: quick in sqs.deleted, WAIT_S)
    assert esm.stats.cold_starts == 2  # the timed-out environment was killed; a new one served the next batch


def test_environments_follow_the_backlog_up_to_the_concurrency(start):
    sqs = FakeSqs()
    esm = start(sqs, concurrency=2, batch_size=1)
    for _ in range(3):  # one at a time: one warm environment serves them all
        message_id = sqs.send('{"n": 0}')
        wait_until(lambda: message_id in sqs.deleted, WAIT_S)
    assert esm.stats.cold_starts == 1 and esm.stats.max_concurrent == 1
    for _ in range(6):  # a backlog: a second environment starts, never a third
        sqs.send('{"sleep": 0.3}')
    # the second environment's cold start is counted when its init ends, which on a loaded host can be after the
    # first environment has drained the backlog: wait for both, then check no third one started
    wait_until(lambda: len(sqs.deleted) == 9 and esm.stats.cold_starts >= 2, WAIT_S)
    assert esm.stats.cold_starts == 2 and esm.stats.max_concurrent == 2
    assert esm.stats.as_dict()["gb_s_total"] > 0 and esm.stats.as_dict()["cpu_s_total"] > 0


def test_the_mapping_reads_every_setting_from_the_template():
    template = StackTemplate(REPO / "template.yaml", {"InferBatchSize": "4", "InferBatchWindowSeconds": "2",
                                                      "InferMaxConcurrency": "5"})
    mapping = sqs_mapping(template, "InferFunction")
    assert mapping.enabled and (mapping.batch_size, mapping.window_s, mapping.max_concurrency) == (4, 2.0, 5)
    assert mapping.report_failures and mapping.queue_url.endswith("/cxr-local-jobs")
    assert [(s.interval_s, s.enabled) for s in schedules(template, "InferFunction")] == [(300, True)]
    ec2 = StackTemplate(REPO / "template.yaml", {"InferPath": "ec2"})
    assert not sqs_mapping(ec2, "InferFunction").enabled
    assert [s.enabled for s in schedules(ec2, "InferFunction")] == [False]
