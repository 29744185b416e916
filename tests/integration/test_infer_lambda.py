"""The infer Lambda handler on records received from moto's queue, as the event source mapping delivers them."""
from __future__ import annotations

import hashlib
import os

import pytest

from cxr_core.domain import Job, JobStatus, Upload, iso, utc_now
from cxr_core.services.submit import submit_image
from tests.images import perturbed_png
from tests.integration.conftest import purge_queue

pytestmark = pytest.mark.integration


class Context:
    function_name = "InferFunction"
    memory_limit_in_mb = 2048
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:InferFunction"
    aws_request_id = "test-request"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def sqs_event(runtime, expected: int) -> dict:
    records = []
    while len(records) < expected:
        response = runtime.sqs.receive_message(QueueUrl=runtime.settings.queue_url, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=1, MessageSystemAttributeNames=["All"])
        for message in response.get("Messages", []):
            records.append({"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
                            "body": message["Body"], "attributes": message["Attributes"],
                            "messageAttributes": {}, "eventSource": "aws:sqs",
                            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:cxr-local-jobs",
                            "awsRegion": "us-east-1"})
    return {"Records": records}


@pytest.fixture
def infer_handler(runtime, stack_env, monkeypatch):
    for key, value in stack_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    from cxr_core import bootstrap
    monkeypatch.setattr(bootstrap, "runtime", lambda: runtime)
    import functions.infer.app as app
    monkeypatch.setattr(app, "runtime", lambda: runtime)
    return app.lambda_handler


def test_partial_batch_failure_reports_only_the_failed_record(runtime, infer_handler):
    purge_queue(runtime)
    good = [submit_image(Upload(perturbed_png(seed)), runtime.submit_deps()).job
            for seed in (os.getpid() * 7 + 1, os.getpid() * 7 + 2)]
    # a failure a retry may cure: the image cannot be read (an image the decoder refuses fails at once, see below)
    digest = hashlib.sha256(os.urandom(40)).hexdigest()
    moment = iso(utc_now())
    poison = Job(job_id=f"{digest[:8]}-0000-4000-8000-{digest[:12]}", status=JobStatus.QUEUED, image_sha256=digest,
                 image_key=f"images/{digest}", model_id=good[0].model_id, created_at=moment, updated_at=moment)
    runtime.jobs.create_job(poison)
    from cxr_core.domain import JobMessage
    runtime.queue.send(JobMessage(poison.job_id, poison.image_key, poison.image_sha256, poison.model_id))
    event = sqs_event(runtime, 3)
    poison_record = next(r for r in event["Records"] if poison.job_id in r["body"])
    response = infer_handler(event, Context())
    assert response == {"batchItemFailures": [{"itemIdentifier": poison_record["messageId"]}]}
    for job in good:
        done = runtime.jobs.get_job(job.job_id)
        assert done.status is JobStatus.COMPLETED and len(done.result["output"]) == 18
        assert done.result["model"]["weights"] == "random-init"
    assert runtime.jobs.get_job(poison.job_id).status is JobStatus.QUEUED  # released for the queue's retry


def test_a_record_whose_job_runs_elsewhere_comes_back_when_that_lease_ends(runtime, infer_handler):
    """batchItemFailures alone would bring it back after the whole visibility timeout: the handler shortens it."""
    import time

    from tests.integration.conftest import TEST_VISIBILITY_SECONDS

    purge_queue(runtime)
    job = submit_image(Upload(perturbed_png(os.getpid() * 7 + 3)), runtime.submit_deps()).job
    runtime.jobs.claim_jobs([job.job_id], "another-worker", 2)  # running elsewhere for 2 more seconds
    event = sqs_event(runtime, 1)
    returned_at = time.monotonic()
    assert infer_handler(event, Context()) == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    again = runtime.sqs.receive_message(QueueUrl=runtime.settings.queue_url, WaitTimeSeconds=TEST_VISIBILITY_SECONDS - 1)
    assert again.get("Messages"), "not back before the visibility timeout"
    assert time.monotonic() - returned_at < TEST_VISIBILITY_SECONDS - 1


def test_damage_only_a_decode_finds_passes_submit_and_fails_the_job_at_its_first_delivery(runtime, infer_handler):
    """Issue 28: submit checks structure only, so a PNG whose IHDR declares more pixels than its IDAT holds is
    accepted; the infer handler fails that job at once (no batchItemFailures, no retry) with the decoder's reason,
    and completes its neighbour in the same batch."""
    from pathlib import Path

    purge_queue(runtime)
    damaged_bytes = (Path(__file__).resolve().parents[1] / "corpus" / "files" / "png_ihdr_larger_than_data.png").read_bytes()
    damaged = submit_image(Upload(damaged_bytes), runtime.submit_deps())
    assert damaged.created  # 201: the structure is sound
    good = submit_image(Upload(perturbed_png(os.getpid() * 7 + 4)), runtime.submit_deps()).job
    response = infer_handler(sqs_event(runtime, 2), Context())
    assert response == {"batchItemFailures": []}
    failed = runtime.jobs.get_job(damaged.job.job_id)
    assert failed.status is JobStatus.FAILED and failed.error.startswith("UNDECODABLE_IMAGE: PNG "), failed.error
    assert runtime.jobs.get_job(good.job_id).status is JobStatus.COMPLETED
    left = runtime.sqs.receive_message(QueueUrl=runtime.settings.queue_url, WaitTimeSeconds=1)
    assert not left.get("Messages")  # deleted: the queue will not deliver it again
