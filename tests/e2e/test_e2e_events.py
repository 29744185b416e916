"""Job events end to end on the local stack: the operator subscribes a client's queue, `cxr watch` prints the push."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from cxr_core.subscriptions import subscribe_queue

from .clients_samples import unique_copy
from .conftest import COMPLETION_SLA_S

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_completed_job_is_pushed_to_the_clients_queue_and_cxr_watch_prints_it(local_stack, http, tmp_path):
    topic = local_stack.info["events_topic_arn"]
    assert topic and "job-events" in topic and "events subscribe" in local_stack.log_path.read_text()
    sns, sqs = local_stack.aws("sns"), local_stack.aws("sqs")
    subscription = subscribe_queue(sns, sqs, topic, "local-dev", f"watch-{uuid.uuid4().hex[:8]}")
    try:  # the session's stack is shared: leave its queues as the template made them
        _watch_one_job(local_stack, http, tmp_path, subscription["queue_url"])
    finally:
        sns.unsubscribe(SubscriptionArn=subscription["subscription_arn"])
        sqs.delete_queue(QueueUrl=subscription["queue_url"])


def _watch_one_job(local_stack, http, tmp_path, queue: str) -> None:
    image = unique_copy("16747_3_1.jpg", tmp_path)
    created = http.post(f"{local_stack.base_url}/v1/jobs", data=image.read_bytes(),
                        headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]

    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CXR_"))},
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    watch = subprocess.run([sys.executable, "-m", "cxr_cli", "watch", "--queue-url", queue, "--aws-endpoint",
                            local_stack.moto_endpoint, "--count", "1", "--json", "--timeout", str(COMPLETION_SLA_S)],
                           capture_output=True, text=True, env=env, timeout=COMPLETION_SLA_S + 30)
    assert watch.returncode == 0, (watch.stdout, watch.stderr)
    event = json.loads(watch.stdout)
    assert (event["job_id"], event["status"], event["client_id"]) == (job_id, "COMPLETED", "local-dev")
    assert event["event_id"] == f"{job_id}:COMPLETED" and len(event["result"]["output"]) == 18
    assert event["result"] == http.get(f"{local_stack.base_url}/v1/jobs/{job_id}/result", timeout=10).json()
