"""Job events end to end on the local stack: the operator subscribes a client's queue, `cxr watch` prints the push."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from cxr_core.subscriptions import subscribe_queue

from .clients_samples import unique_copy
from .conftest import COMPLETION_SLA_S

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLIENT = "local-dev"  # the client of the operator key the stack registered
EVENT_FIELDS = {"event_id", "version", "type", "job_id", "client_id", "status", "created_at", "finished_at",
                "model_id"}  # docs/architecture.md, "Job events": these on every event, then by status
COMPLETED_FIELDS, FAILED_FIELDS = EVENT_FIELDS | {"model", "cached", "result"}, EVENT_FIELDS | {"error"}


@pytest.fixture
def subscribe(local_stack):
    """subscribe(statuses): a fresh queue subscribed for CLIENT, removed after the test: the session's stack is
    shared, so its queues stay as the template made them."""
    sns, sqs = local_stack.aws("sns"), local_stack.aws("sqs")
    made = []

    def _subscribe(statuses: list[str] | None = None) -> str:
        made.append(subscribe_queue(sns, sqs, local_stack.info["events_topic_arn"], CLIENT,
                                    f"watch-{uuid.uuid4().hex[:8]}", statuses))
        return made[-1]["queue_url"]
    yield _subscribe
    for subscription in made:
        sns.unsubscribe(SubscriptionArn=subscription["subscription_arn"])
        sqs.delete_queue(QueueUrl=subscription["queue_url"])


def test_a_completed_job_is_pushed_to_the_clients_queue_and_cxr_watch_prints_it(local_stack, http, tmp_path,
                                                                               subscribe):
    queue = subscribe()
    topic = local_stack.info["events_topic_arn"]
    assert topic and "job-events" in topic and "events subscribe" in local_stack.log_path.read_text()
    image = unique_copy("16747_3_1.jpg", tmp_path)
    created = http.post(f"{local_stack.url}/v1/jobs", data=image.read_bytes(),
                        headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]

    event = _watch_for(local_stack, queue, job_id)
    assert (event["job_id"], event["status"], event["client_id"]) == (job_id, "COMPLETED", CLIENT)
    assert set(event) == COMPLETED_FIELDS and event["type"] == "job.completed", event
    assert event["event_id"] == f"{job_id}:COMPLETED" and len(event["result"]["output"]) == 18
    assert event["result"] == http.get(f"{local_stack.url}/v1/jobs/{job_id}/result", timeout=10).json()


def test_a_failed_job_is_pushed_with_its_error_and_cxr_watch_prints_it(local_stack, http, subscribe):
    """A job whose stored image no longer matches the digest recorded at submit fails on its first delivery (a
    retry would read the same bytes), so its FAILED event comes without the poison path's backoff."""
    queue = subscribe(["FAILED"])  # the operator's filter: this client's failures only
    job_id = _inject_rotted_job(local_stack, http)
    event = _watch_for(local_stack, queue, job_id)
    job = http.get(f"{local_stack.url}/v1/jobs/{job_id}", timeout=10).json()
    assert job["status"] == "FAILED" and "does not match the digest recorded at submit" in job["error"], job
    assert set(event) == FAILED_FIELDS, event
    assert (event["job_id"], event["client_id"], event["status"], event["type"]) == (
        job_id, CLIENT, "FAILED", "job.failed")
    assert event["event_id"] == f"{job_id}:FAILED" and event["error"] == job["error"]
    assert event["finished_at"] and event["model_id"] == _model_id(http, local_stack)


def _model_id(http, stack) -> str:
    health = http.get(f"{stack.url}/v1/ops/health", timeout=10)
    assert health.status_code == 200, health.text
    return health.json()["model"]["model_id"]


def _inject_rotted_job(stack, http) -> str:
    """A job as submit writes it (QUEUED, its message on the jobs queue), whose stored bytes are not the ones
    submit hashed: the object under its key rotted or was replaced after submit."""
    recorded = hashlib.sha256(os.urandom(32)).hexdigest()
    job_id, now = str(uuid.uuid4()), time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    key, model_id = f"images/{recorded}", _model_id(http, stack)
    resources = stack.info["resources"]
    stack.aws("s3").put_object(Bucket=resources["buckets"]["ImagesBucket"], Key=key,
                               Body=b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    stack.aws("dynamodb").put_item(TableName=resources["tables"]["JobsTable"], Item={
        "job_id": {"S": job_id}, "status": {"S": "QUEUED"}, "image_sha256": {"S": recorded},
        "image_key": {"S": key}, "model_id": {"S": model_id}, "client_id": {"S": CLIENT},
        "created_at": {"S": now}, "updated_at": {"S": now}, "attempts": {"N": "0"}, "cached": {"BOOL": False}})
    stack.aws("sqs").send_message(QueueUrl=resources["queues"]["JobsQueue"], MessageBody=json.dumps(
        {"job_id": job_id, "image_key": key, "image_sha256": recorded, "model_id": model_id}))
    return job_id


def _watch_for(stack, queue: str, job_id: str) -> dict:
    """The job's event as `cxr watch --count 1 --json` prints it, read as the queue's owner (the stack's identity:
    its moto takes no other), within the completion SLA; another job's event (a shared stack's earlier test
    finishing late) is skipped."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CXR_"))},
           "AWS_ACCESS_KEY_ID": stack.info["aws_access_key_id"],
           "AWS_SECRET_ACCESS_KEY": stack.info["aws_secret_access_key"], "AWS_DEFAULT_REGION": stack.info["aws_region"]}
    deadline, seen = time.monotonic() + COMPLETION_SLA_S, []
    while not seen or seen[-1]["job_id"] != job_id:
        left = deadline - time.monotonic()
        assert left > 0, f"no event for {job_id} within {COMPLETION_SLA_S}s; others: {seen}"
        watch = subprocess.run([sys.executable, "-m", "cxr_cli", "watch", "--queue-url", queue, "--aws-endpoint",
                                stack.moto_endpoint, "--count", "1", "--json", "--timeout", f"{max(1.0, left):.0f}"],
                               capture_output=True, text=True, env=env, timeout=left + 30)
        assert watch.returncode == 0, (watch.stdout, watch.stderr, stack.log_tail())
        seen.append(json.loads(watch.stdout))
    return seen[-1]
