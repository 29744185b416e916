"""Job events through moto's SNS-to-SQS delivery: COMPLETED and FAILED arrive, each client's queue gets only its
own (the operator's filter policy), and a redelivered job's event repeats with the same id."""
from __future__ import annotations

import json
import os
import uuid
from dataclasses import replace

import boto3
import pytest

from cxr_core.aws_adapters import SnsEventPublisher
from cxr_core.domain import JobStatus, Upload
from cxr_core.services.infer import InboundMessage, process_batch
from cxr_core.services.submit import submit_image
from cxr_core.subscriptions import subscribe_queue
from tests.images import perturbed_png

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wiring(runtime, stack_env):
    def client(name):
        return boto3.client(name, endpoint_url=stack_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    sns, sqs = client("sns"), client("sqs")
    topic = stack_env["EVENTS_TOPIC_ARN"]
    assert topic in [t["TopicArn"] for t in sns.list_topics()["Topics"]]  # the local stack made it from the template
    run = uuid.uuid4().hex[:8]
    queues = {name: subscribe_queue(sns, sqs, topic, f"{name}-{run}", f"events-{name}-{run}")["queue_url"]
              for name in ("a", "b")}
    only_failures = subscribe_queue(sns, sqs, topic, f"a-{run}", f"events-a-failed-{run}", ["FAILED"])["queue_url"]
    events = SnsEventPublisher(sns, topic)
    return {"sqs": sqs, "run": run, "queues": queues, "failures": only_failures,
            "submit": replace(runtime.submit_deps(), events=events), "infer": replace(runtime.infer_deps(), events=events)}


def received(sqs, queue_url: str, expected: int) -> list[tuple[dict, dict]]:
    out = []
    for _ in range(5):
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                           MessageAttributeNames=["All"]).get("Messages", []):
            out.append((json.loads(message["Body"]), message.get("MessageAttributes", {})))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if len(out) >= expected:
            break
    return out


def _message(job) -> InboundMessage:
    from cxr_core.domain import JobMessage
    body = JobMessage(job.job_id, job.image_key, job.image_sha256, job.model_id).to_dict()
    return InboundMessage(f"msg-{job.job_id}", json.dumps(body), receive_count=1)


def test_completed_and_failed_events_reach_only_their_clients_queue(runtime, wiring):
    sqs, run = wiring["sqs"], wiring["run"]
    seed = os.getpid() * 1000 + int(run, 16) % 1000
    good = submit_image(Upload(perturbed_png(seed)), wiring["submit"], f"a-{run}").job
    bad = submit_image(Upload(perturbed_png(seed + 1)), wiring["submit"], f"a-{run}").job
    runtime.images.put(bad.image_key, b"\x89PNG\r\n\x1a\nnot really", "image/png")  # the stored bytes rot
    poison = _message(bad)
    poison.receive_count = runtime.settings.max_receive_count  # its last allowed delivery
    report = process_batch([_message(good), poison], wiring["infer"])
    assert report.completed_jobs == [good.job_id] and report.failed_jobs == [bad.job_id]

    events = {body["job_id"]: (body, attributes) for body, attributes in received(sqs, wiring["queues"]["a"], 2)}
    assert set(events) == {good.job_id, bad.job_id}
    done, done_attributes = events[good.job_id]
    assert done["status"] == "COMPLETED" and done["event_id"] == f"{good.job_id}:COMPLETED"
    assert done["client_id"] == f"a-{run}" and len(done["result"]["output"]) == 18
    assert done["model"]["weights"] == "random-init" and done["model_id"] == good.model_id
    assert {k: v["StringValue"] for k, v in done_attributes.items()} == {
        "client_id": f"a-{run}", "status": "COMPLETED", "event_type": "job.completed"}  # raw delivery keeps them
    failed = events[bad.job_id][0]
    assert failed["status"] == "FAILED" and failed["error"] and runtime.jobs.get_job(bad.job_id).status is JobStatus.FAILED

    assert received(sqs, wiring["queues"]["b"], 0) == []  # another client's queue hears nothing
    only = received(sqs, wiring["failures"], 1)
    assert [body["job_id"] for body, _ in only] == [bad.job_id]  # a status filter passes FAILED only


def test_a_redelivered_final_job_repeats_its_event_with_the_same_id(runtime, wiring):
    sqs, run = wiring["sqs"], wiring["run"]
    job = submit_image(Upload(perturbed_png(os.getpid() * 1000 + 500)), wiring["submit"], f"b-{run}").job
    message = _message(job)
    process_batch([message], wiring["infer"])
    message.receive_count = 2  # SQS hands the same message out again
    assert process_batch([message], wiring["infer"]).succeeded == [message.message_id]
    ids = [body["event_id"] for body, _ in received(sqs, wiring["queues"]["b"], 2)]
    assert ids == [f"{job.job_id}:COMPLETED"] * 2  # a subscriber dedups on it (cxr watch does)
