"""Issue 20: the core scenarios on both infer paths - the Lambda behind the local event source mapping and the EC2
worker - each on a stack of its own with a short visibility timeout, so redelivery shows within a test."""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from cxr_local.waiting import wait_until
from tests.images import perturbed_png

from .conftest import start_stack, wait_for_terminal_status

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

VISIBILITY_S = 6  # the template's smallest is 180 s (six times the 30 s minimum timeout): set on the queue here
COMPLETED_LINE = re.compile(r"job ([0-9a-f-]{36}) completed")
ENVIRONMENT_LINE = re.compile(r"execution environment pid (\d+) started")
SEED = os.getpid() * 100


@pytest.fixture(scope="module", params=["lambda", "ec2"])
def path_stack(request, tmp_path_factory):
    """A stack consuming through one infer path; a 1 s batching window so a burst is one batch in flight."""
    path = request.param
    stack = start_stack(tmp_path_factory.mktemp(f"infer-{path}"), "--param", f"InferPath={path}",
                        "--param", "InferBatchWindowSeconds=1", "--env", f"VISIBILITY_TIMEOUT_SECONDS={VISIBILITY_S}",
                        workers=1)
    stack.aws("sqs").set_queue_attributes(QueueUrl=stack.info["resources"]["queues"]["JobsQueue"],
                                          Attributes={"VisibilityTimeout": str(VISIBILITY_S)})
    assert stack.info["infer_path"] == path
    yield stack
    assert stack.stop() == 0, stack.log_tail()


@pytest.fixture
def http(path_stack):
    import requests
    with requests.Session() as session:
        session.headers.update(path_stack.auth_headers)
        yield session


def _submit(http, stack, data: bytes) -> dict:
    response = http.post(f"{stack.url}/v1/jobs", data=data, headers={"Content-Type": "image/png"}, timeout=60)
    assert response.status_code == 201, response.text
    return response.json()


def test_submit_result_then_cache_hit(path_stack, http):
    data = perturbed_png(SEED + 1)
    job = _submit(http, path_stack, data)
    final, _ = wait_for_terminal_status(http, path_stack.url, job["id"])
    assert final["status"] == "COMPLETED", final
    result = http.get(f"{path_stack.url}/v1/jobs/{job['id']}/result", timeout=10).json()
    assert len(result["output"]) == 18 and result["model"]["weights"] == "random-init"
    again = http.post(f"{path_stack.url}/v1/jobs", files={"image": ("x.png", data, "image/png")}, timeout=30)
    assert again.status_code == 200 and again.json()["cached"] is True, again.text
    assert again.json()["result"]["output"] == result["output"]


def test_a_failing_job_is_dead_lettered_and_an_undecodable_image_fails_at_once(path_stack, http):
    """A job whose image cannot be read is retried MaxReceiveCount times, then FAILED + DLQ; an image that passed
    submit but the decoder refuses (issue 28: submit checks structure only) is FAILED at its first delivery with the
    decoder's reason, its message deleted, not dead-lettered. Both are listed by /v1/ops/dlq."""
    gone = _inject_poison(path_stack, http, store=False)
    refused = _inject_poison(path_stack, http)
    final, _ = wait_for_terminal_status(http, path_stack.url, refused, sla_s=VISIBILITY_S + 30)
    assert final["status"] == "FAILED" and final["error"].startswith("UNDECODABLE_IMAGE: "), final
    attempts = {item["job_id"]["S"]: int(item["attempts"]["N"]) for item in _scan(path_stack, "JobsTable")}
    assert attempts[refused] == 1
    final, _ = wait_for_terminal_status(http, path_stack.url, gone, sla_s=6 * VISIBILITY_S + 30)
    assert final["status"] == "FAILED" and final.get("error"), final
    dlq_url = path_stack.info["resources"]["queues"]["JobsDeadLetterQueue"]
    bodies: list[str] = []

    def in_dlq() -> bool:
        bodies.extend(m["Body"] for m in path_stack.aws("sqs").receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", []))
        return any(gone in body for body in bodies)

    wait_until(in_dlq, 3 * VISIBILITY_S + 20, interval_s=0.5, what=lambda: f"{gone} in the DLQ; seen {bodies}")
    assert not any(refused in body for body in bodies)
    listed = http.get(f"{path_stack.url}/v1/ops/dlq", timeout=10)
    assert listed.status_code == 200 and gone in listed.text and refused in listed.text, listed.text


def test_killing_the_consumer_mid_batch_loses_nothing_and_does_nothing_twice(path_stack, http):
    images = [perturbed_png(SEED + 100 + n) for n in range(10)]
    with ThreadPoolExecutor(4) as pool:
        jobs = list(pool.map(lambda data: _submit(http, path_stack, data)["id"], images))
    assert _wait_in_progress(path_stack, jobs), "no batch was ever in flight"
    victim = _consumer_process(path_stack)
    victim.kill()  # kill -9 the execution environment / worker process holding the batch
    victim.wait(10)
    for job_id in jobs:
        final, _ = wait_for_terminal_status(http, path_stack.url, job_id, sla_s=4 * VISIBILITY_S + 60)
        assert final["status"] == "COMPLETED", final
    table = _scan(path_stack, "JobsTable")
    by_hash = {}
    for item in table:
        by_hash.setdefault(item["image_sha256"]["S"], []).append(item["job_id"]["S"])
    for data, job_id in zip(images, jobs):
        assert by_hash[hashlib.sha256(data).hexdigest()] == [job_id]  # one job per image, no second one
    cache = {item["job_id"]["S"]: item["state"]["S"] for item in _scan(path_stack, "ResultsTable")
             if not item["cache_key"]["S"].startswith("hold#")}  # image holds share the table (see README, Erasure)
    assert all(cache.get(job_id) == "DONE" for job_id in jobs), cache
    completions = [m for log in _logs(path_stack) for m in COMPLETED_LINE.findall(log)]
    assert all(completions.count(job_id) <= 1 for job_id in jobs), completions  # never two results for one job
    logs = "\n".join(_logs(path_stack))
    if path_stack.info["infer_path"] == "lambda":
        assert "execution environment died" in logs and len(ENVIRONMENT_LINE.findall(logs)) >= 2, logs[-3000:]
    else:
        assert "restarting" in logs, logs[-3000:]


def _inject_poison(stack, http, store: bool = True) -> str:
    """A job as submit writes it (copied from a real one), whose stored bytes are a PNG header and noise (store
    False: whose object is missing from the bucket)."""
    template_job = _scan(stack, "JobsTable")[0]
    poison = b"\x89PNG\r\n\x1a\n" + os.urandom(64)
    digest = hashlib.sha256(poison).hexdigest()
    job_id, now = str(uuid.uuid4()), time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    item = {key: template_job[key] for key in ("model_id", "client_id", "expires_at") if key in template_job}
    item.update({"job_id": {"S": job_id}, "status": {"S": "QUEUED"}, "image_sha256": {"S": digest},
                 "image_key": {"S": f"images/{digest}"}, "created_at": {"S": now}, "updated_at": {"S": now},
                 "attempts": {"N": "0"}, "cached": {"BOOL": False}})
    resources = stack.info["resources"]
    if store:
        stack.aws("s3").put_object(Bucket=resources["buckets"]["ImagesBucket"], Key=f"images/{digest}", Body=poison)
    stack.aws("dynamodb").put_item(TableName=resources["tables"]["JobsTable"], Item=item)
    stack.aws("sqs").send_message(QueueUrl=resources["queues"]["JobsQueue"], MessageBody=json.dumps(
        {"job_id": job_id, "image_key": f"images/{digest}", "image_sha256": digest,
         "model_id": item["model_id"]["S"]}))
    return job_id


def _scan(stack, logical_id: str) -> list[dict]:
    return stack.aws("dynamodb").scan(TableName=stack.info["resources"]["tables"][logical_id],
                                      ConsistentRead=True)["Items"]


def _wait_in_progress(stack, jobs: list[str], timeout_s: float = 30) -> bool:
    return wait_until(lambda: any(item["status"]["S"] == "IN_PROGRESS" for item in _scan(stack, "JobsTable")
                                  if item["job_id"]["S"] in jobs), timeout_s, interval_s=0.02,
                      what="a batch in flight (a job IN_PROGRESS)")


def _consumer_process(stack) -> psutil.Process:
    """The newest infer execution environment (lambda) or the EC2 worker process under its supervisor (ec2)."""
    if stack.info["infer_path"] == "lambda":
        return psutil.Process(int(ENVIRONMENT_LINE.findall(stack.log_path.read_text(errors="replace"))[-1]))
    supervisor = next(p for p in psutil.Process(stack.process.pid).children()
                      if "-m cxr_worker" in " ".join(p.cmdline()))
    return next(p for p in supervisor.children() if "resource_tracker" not in " ".join(p.cmdline()))


def _logs(stack) -> list[str]:
    paths = [stack.log_path, *stack.info.get("logs", {}).values()]
    return [open(path, errors="replace").read() for path in paths if os.path.exists(path)]
