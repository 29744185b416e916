"""Throttled DynamoDB writes surface as errors, never as a lost race: each conditional path through the fault proxy.

The service's own stores talk to moto through tests/faults/proxy.py with client retries off, so one injected
ThrottlingException is what the code sees once botocore's retries are spent on AWS.
"""
from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from pynamodb.connection import Connection

from cxr_core.auth import ApiKeys, RateLimiter
from cxr_core.dynamo_auth import DynamoApiKeyStore, DynamoRateCounter
from cxr_core.conditions import is_condition_failed
from cxr_core.domain import JobStatus, sha256_hex
from cxr_core.dynamo_store import DynamoJobStore
from cxr_core.http import is_outage
from cxr_core.ports import CacheKeyTaken, ClaimState
from cxr_core.records import ApiKeyRecord, CacheRecord, JobRecord, RateLimitRecord
from cxr_core.services.infer import InboundMessage, InferDeps, process_batch
from cxr_core.services.recovery import recover_stuck_jobs
from tests.faults.proxy import FaultProxy, ProxyControl
from tests.integration.conftest import purge_queue
from tests.integration.test_dynamo_store import new_job

pytestmark = pytest.mark.integration
MODELS = (JobRecord, CacheRecord, ApiKeyRecord, RateLimitRecord)


@pytest.fixture(scope="module")
def proxy(moto_endpoint):
    server = FaultProxy(moto_endpoint).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def faulty(runtime, proxy, monkeypatch):
    """(store through the proxy, its control); the pynamodb models go through the proxy too, without retries."""
    for model in MODELS:
        monkeypatch.setattr(model.Meta, "host", proxy.url, raising=False)
        monkeypatch.setattr(model.Meta, "max_retry_attempts", 0, raising=False)
        monkeypatch.setattr(model, "_connection", None)
    store = DynamoJobStore(region=runtime.settings.region, endpoint_url=proxy.url, ttl_days=1)
    store._connection = Connection(region=runtime.settings.region, host=proxy.url, max_retry_attempts=0)
    control = ProxyControl(proxy.url)
    control.clear()
    yield store, control
    control.clear()
    for model in MODELS:  # drop the proxied connections before monkeypatch restores the settings
        model._connection = None


def throttle(control, operation: str) -> None:
    control.set({"service": "dynamodb", "operation": operation, "fault": "throttle", "times": 1})


def assert_surfaces(control, operation: str, call) -> Exception:
    """call() with the next `operation` throttled raises an outage, never a lost race's answer."""
    throttle(control, operation)
    with pytest.raises(Exception) as raised:
        call()
    assert is_outage(raised.value) and not is_condition_failed(raised.value), repr(raised.value)
    return raised.value


def claimed(runtime, token="t"):
    job = new_job()
    runtime.jobs.create_job(job)
    assert runtime.jobs.claim_jobs([job.job_id], token, 60)[job.job_id].state is ClaimState.CLAIMED
    return job


def test_throttled_release_surfaces_and_the_job_keeps_its_claim(runtime, faulty):
    store, control = faulty
    job = claimed(runtime)
    assert_surfaces(control, "UpdateItem", lambda: store.release_job(job, "t", "S3 read failed"))
    assert runtime.jobs.get_job(job.job_id).status is JobStatus.IN_PROGRESS
    store.release_job(job, "another-token", "late")  # a lost race is still quiet
    store.release_job(job, "t", "S3 read failed")
    assert runtime.jobs.get_job(job.job_id).status is JobStatus.QUEUED


def test_throttled_fail_surfaces_and_a_final_job_is_still_quiet(runtime, faulty):
    store, control = faulty
    job = claimed(runtime)
    assert_surfaces(control, "UpdateItem", lambda: store.fail_job(job, "t", "poison"))
    assert runtime.jobs.get_job(job.job_id).status is JobStatus.IN_PROGRESS
    store.fail_job(job, "t", "poison")
    store.fail_job(job, "t", "poison again")  # already FAILED: the condition answers, nothing raised
    assert runtime.jobs.get_job(job.job_id).error == "poison"


def test_throttled_dedup_release_after_fail_surfaces(runtime, faulty):
    store, control = faulty
    job = claimed(runtime)
    assert_surfaces(control, "DeleteItem", lambda: store.fail_job(job, "t", "poison"))
    assert runtime.jobs.get_job(job.job_id).status is JobStatus.FAILED
    assert runtime.jobs.get_cache(job.cache_key) is not None  # left PENDING: submit takes a failed job's key over


def test_throttled_claim_surfaces_instead_of_passing_for_busy(runtime, faulty):
    store, control = faulty
    job = new_job()
    runtime.jobs.create_job(job)
    assert_surfaces(control, "TransactWriteItems", lambda: store.claim_jobs([job.job_id], "t", 60))
    assert store.claim_jobs([job.job_id], "t", 60)[job.job_id].state is ClaimState.CLAIMED
    assert store.claim_jobs([job.job_id], "u", 60)[job.job_id].state is ClaimState.BUSY  # a held lease


def test_throttled_create_and_complete_surface(runtime, faulty):
    store, control = faulty
    job = new_job()
    assert not isinstance(assert_surfaces(control, "TransactWriteItems", lambda: store.create_job(job)), CacheKeyTaken)
    job = claimed(runtime)
    assert_surfaces(control, "TransactWriteItems", lambda: store.complete_job(job, "t", {"top_label": "x", "output": {}}))
    assert not store.complete_job(job, "someone-else", {"top_label": "x", "output": {}})


def test_throttled_recovery_writes_surface(runtime, faulty):
    store, control = faulty
    queued = new_job()
    runtime.jobs.create_job(queued)
    assert_surfaces(control, "UpdateItem", lambda: store.touch_queued(queued))
    assert store.touch_queued(queued)
    abandoned = new_job()
    runtime.jobs.create_job(abandoned)
    runtime.jobs.claim_jobs([abandoned.job_id], "dead-worker", -1)  # its lease is already over
    assert_surfaces(control, "UpdateItem", lambda: store.reset_to_queued(abandoned))
    assert store.reset_to_queued(abandoned) and not store.reset_to_queued(abandoned)  # the second lost the race
    assert not store.touch_queued(claimed(runtime))


def test_throttled_key_revocation_and_rate_limit_surface(runtime, faulty):
    _, control = faulty
    keys = ApiKeys(DynamoApiKeyStore(), cache_seconds=0)
    key = keys.create("throttle-test")
    assert_surfaces(control, "UpdateItem", lambda: keys.revoke(key))
    assert keys.revoke(key) and not keys.revoke("cxr_no_such_key")
    limiter = RateLimiter(DynamoRateCounter(), per_minute=5, lease=1)
    assert_surfaces(control, "UpdateItem", lambda: limiter.hit(f"client-{uuid.uuid4().hex}"))


def test_a_throttled_fail_in_a_batch_is_reported_and_finished_by_the_recovery_pass(runtime, faulty):
    """The last delivery of a poison job, whose FAILED write is throttled: not acknowledged, reported unsettled;
    its neighbour completes; the recovery pass then records the failure."""
    store, control = faulty
    good_bytes = f"good {uuid.uuid4()}".encode()
    poison, good = claimed(runtime, "seed"), new_job(sha256_hex(good_bytes))  # infer checks the stored bytes' SHA-256
    runtime.jobs.release_job(poison, "seed", "first try")
    runtime.jobs.create_job(good)
    runtime.images.put(good.image_key, good_bytes, "image/png")

    class Predictor:
        identity, model_id = {"name": "stub"}, "m@1"

        def preprocess(self, data):
            return data

        def predict(self, images):
            return [type("P", (), {"output": {"x": 0.5}, "top_label": "x", "heatmaps": None})() for _ in images]

        def model_input_pixels(self, image):
            return bytes(224 * 224)

    deps = InferDeps(jobs=store, images=runtime.images, predictor=Predictor(), executor=ThreadPoolExecutor(2),
                     max_receive_count=2, lease_seconds=-1)
    messages = [InboundMessage(f"m-{job.job_id}", json.dumps({"job_id": job.job_id, "image_key": job.image_key,
                                                              "image_sha256": job.image_sha256, "model_id": "m@1"}),
                               receive_count=2) for job in (poison, good)]
    throttle(control, "UpdateItem")  # the poison job's image is missing: its fail_job is the only UpdateItem
    report = process_batch(messages, deps)
    assert report.unsettled_jobs == [poison.job_id] and report.failed == [messages[0].message_id]
    assert report.completed_jobs == [good.job_id] and report.succeeded == [messages[1].message_id]
    assert runtime.jobs.get_job(poison.job_id).status is JobStatus.IN_PROGRESS
    recovered = recover_stuck_jobs(runtime.jobs, runtime.queue, older_than_seconds=-1, max_attempts=2)
    purge_queue(runtime)  # what the pass re-sent for other tests' jobs
    assert poison.job_id in recovered.failed
    assert runtime.jobs.get_job(poison.job_id).status is JobStatus.FAILED


def test_a_transaction_conflict_is_a_race_retried_not_an_error(runtime, faulty):
    """Two writers on one item (TransactionConflict, which moto never produces): submit reads the key again and
    creates its job; a claim takes another round."""
    from cxr_core.domain import Upload
    from cxr_core.services.submit import SubmitDeps, submit_image
    from cxr_model.privacy import deidentify_dicom
    from tests.fakes import fake_check_image

    store, control = faulty
    control.set({"service": "dynamodb", "operation": "TransactWriteItems", "fault": "conflict", "times": 1})
    with pytest.raises(CacheKeyTaken):
        store.create_job(new_job())
    deps = SubmitDeps(jobs=store, images=runtime.images, queue=runtime.queue, model_id="m@1",
                      check_image=fake_check_image, deidentify_dicom=deidentify_dicom)
    control.set({"service": "dynamodb", "operation": "TransactWriteItems", "fault": "conflict", "times": 1})
    outcome = submit_image(Upload(b"\x89PNG\r\n\x1a\n" + uuid.uuid4().bytes), deps)
    assert outcome.created and runtime.jobs.get_job(outcome.job.job_id).status is JobStatus.QUEUED
    control.set({"service": "dynamodb", "operation": "TransactWriteItems", "fault": "conflict", "items": 1,
                 "times": 1})
    assert store.claim_jobs([outcome.job.job_id], "t", 60)[outcome.job.job_id].state is ClaimState.CLAIMED
    assert control.state()["injected"]["dynamodb.TransactWriteItems:conflict"] >= 3
    purge_queue(runtime)
