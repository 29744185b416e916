"""Infer batch with in-memory ports: one forward pass, exactly-once effects, retries and final failure."""
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from blake3 import blake3
from botocore.exceptions import ClientError

from cxr_core.domain import JobStatus, Upload
from cxr_core.services.infer import InboundMessage, InferDeps, process_batch
from cxr_core.services.submit import SubmitDeps, submit_image
from cxr_model.privacy import deidentify_dicom
from tests.fakes import FakePredictor, InMemoryImageStore, InMemoryJobStore, InMemoryQueue, fake_check_image


@pytest.fixture
def world():
    jobs, images, queue = InMemoryJobStore(), InMemoryImageStore(), InMemoryQueue()
    submit = SubmitDeps(jobs=jobs, images=images, queue=queue, model_id="m@1", check_image=fake_check_image,
                        deidentify_dicom=deidentify_dicom)
    predictor = FakePredictor(poison=b"\x89PNG\r\n\x1a\nPOISON")
    infer = InferDeps(jobs=jobs, images=images, predictor=predictor, executor=ThreadPoolExecutor(4),
                      max_receive_count=3, lease_seconds=60)
    return jobs, images, queue, submit, infer, predictor


def submit_all(world, payloads):
    jobs, images, queue, submit, *_ = world
    for payload in payloads:
        submit_image(Upload(b"\x89PNG\r\n\x1a\n" + payload), submit)
    messages = [InboundMessage(f"m{i}", json.dumps(m.to_dict())) for i, m in enumerate(queue.messages)]
    queue.messages.clear()
    return messages


def test_batch_runs_one_forward_pass_and_completes_every_job(world):
    messages = submit_all(world, [b"a", b"b", b"c"])
    report = process_batch(messages, world[4])
    assert world[5].batches == [3]
    assert sorted(report.succeeded) == ["m0", "m1", "m2"] and report.failed == []
    for job_id in report.completed_jobs:
        job = world[0].get_job(job_id)
        assert job.status is JobStatus.COMPLETED and set(job.result["output"]) == {"A", "B"}


def test_duplicate_delivery_does_no_second_forward_pass(world):
    messages = submit_all(world, [b"a"])
    process_batch(messages, world[4])
    again = process_batch(messages, world[4])
    assert world[5].batches == [1]
    assert again.succeeded == ["m0"] and again.completed_jobs == []


def test_same_job_twice_in_one_batch_runs_once(world):
    messages = submit_all(world, [b"a"])
    twin = InboundMessage("m0-copy", messages[0].body)
    report = process_batch(messages + [twin], world[4])
    assert world[5].batches == [1] and sorted(report.succeeded) == ["m0", "m0-copy"]


def test_job_in_progress_elsewhere_is_left_for_later(world):
    messages = submit_all(world, [b"a"])
    job_id = json.loads(messages[0].body)["job_id"]
    world[0].claim_jobs([job_id], "other-worker", 60)
    report = process_batch(messages, world[4])
    assert report.failed == ["m0"] and world[5].batches == []
    assert 60 <= report.retry_after["m0"] <= 62  # back once that lease ran out (+1 s), not a whole timeout later


def test_poison_is_retried_then_fails_with_a_reason(world):
    messages = submit_all(world, [b"POISON", b"fine"])
    poison, fine = messages
    report = process_batch([poison, fine], world[4])
    assert report.failed == ["m0"] and report.succeeded == ["m1"] and report.retry_after["m0"] >= 1
    job_id = json.loads(poison.body)["job_id"]
    assert world[0].get_job(job_id).status is JobStatus.QUEUED
    poison.receive_count = 3
    final = process_batch([poison], world[4])
    assert final.failed == ["m0"] and final.failed_jobs == [job_id]
    job = world[0].get_job(job_id)
    # what the job shows names no exception class (issue 25): those stay in the worker's log
    assert job.status is JobStatus.FAILED and job.error == "the image could not be prepared for the model"


def test_transient_read_error_is_retried_and_then_succeeds(world):
    messages = submit_all(world, [b"a"])
    world[1].fail_gets = 1
    assert process_batch(messages, world[4]).failed == ["m0"]
    messages[0].receive_count = 2
    assert process_batch(messages, world[4]).succeeded == ["m0"]


def test_malformed_message_is_never_acknowledged(world):
    report = process_batch([InboundMessage("bad", "not json")], world[4])
    assert report.failed == ["bad"] and report.succeeded == []


def test_recovery_requeues_a_job_left_without_a_message_and_fails_an_abandoned_one(world):
    from cxr_core.services.recovery import recover_stuck_jobs
    jobs, images, queue, submit, infer, predictor = world
    orphan_id = json.loads(submit_all(world, [b"orphan"])[0].body)["job_id"]  # its message was lost
    abandoned_id = json.loads(submit_all(world, [b"abandoned"])[0].body)["job_id"]
    for attempt in range(3):  # claimed three times, each worker died; the lease is over
        jobs.tokens.pop(abandoned_id, None)
        jobs.claim_jobs([abandoned_id], f"dead-{attempt}", -1)
    report = recover_stuck_jobs(jobs, queue, older_than_seconds=-1, max_attempts=3)
    assert report.requeued == [orphan_id] and report.failed == [abandoned_id]
    assert [m.job_id for m in queue.messages] == [orphan_id]
    assert jobs.get_job(abandoned_id).status is JobStatus.FAILED
    assert "abandoned" in jobs.get_job(abandoned_id).error
    process = process_batch([InboundMessage("again", json.dumps(queue.messages[0].to_dict()))], infer)
    assert process.completed_jobs == [orphan_id]


def throttling(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "rate exceeded"},
                        "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)


class ThrottledStore(InMemoryJobStore):
    """Every write of the job store for the jobs in `throttled` fails as DynamoDB throttling does."""

    def __init__(self):
        super().__init__()
        self.throttled: set[str] = set()

    def _check(self, job, operation):
        if job.job_id in self.throttled:
            raise throttling(operation)

    def complete_job(self, job, token, result):
        self._check(job, "TransactWriteItems")
        return super().complete_job(job, token, result)

    def release_job(self, job, token, error):
        self._check(job, "UpdateItem")
        return super().release_job(job, token, error)

    def fail_job(self, job, token, error):
        self._check(job, "UpdateItem")
        return super().fail_job(job, token, error)


@pytest.mark.parametrize(("payload", "receive_count"), [
    (b"ok", 1),      # complete_job throttled
    (b"POISON", 1),  # release_job throttled
    (b"POISON", 3),  # fail_job throttled on the last delivery
])
def test_a_throttled_store_write_is_reported_and_spares_the_neighbours(world, payload, receive_count):
    jobs = ThrottledStore()
    world[3].jobs = jobs
    infer = InferDeps(jobs=jobs, images=world[1], predictor=world[5], executor=world[4].executor,
                      max_receive_count=3, lease_seconds=60)
    messages = submit_all(world, [payload, b"neighbour"])
    for message in messages:
        message.receive_count = receive_count
    stuck_id = json.loads(messages[0].body)["job_id"]
    jobs.throttled.add(stuck_id)
    report = process_batch(messages, infer)
    assert report.unsettled_jobs == [stuck_id] and report.failed == ["m0"] and "m0" not in report.retry_after
    assert report.succeeded == ["m1"] and len(report.completed_jobs) == 1
    assert jobs.get_job(stuck_id).status is JobStatus.IN_PROGRESS and stuck_id not in report.failed_jobs


def test_an_image_overwritten_after_submit_fails_its_job_without_inference(world):
    messages = submit_all(world, [b"a", b"b"])
    tampered = json.loads(messages[0].body)
    world[1].objects[tampered["image_key"]] = b"\x89PNG\r\n\x1a\nsomeone else's image"
    report = process_batch(messages, world[4])
    job = world[0].get_job(tampered["job_id"])
    assert job.status is JobStatus.FAILED and "does not match the digest recorded at submit" in job.error
    assert report.failed_jobs == [tampered["job_id"]] and "m0" in report.succeeded  # final: not retried
    assert world[5].batches == [1] and len(report.completed_jobs) == 1


def test_a_dicom_is_checked_against_the_hash_of_its_stored_de_identified_bytes(world):
    jobs, images, queue, submit, infer, _ = world
    submit.deidentify_dicom = lambda data, digest: data.replace(b"PATIENT", b"")
    submit.check_image = lambda data: type("Info", (), {"format": "dicom"})()
    job = submit_image(Upload(b"\x89PNG\r\n\x1a\nPATIENT scan"), submit).job
    assert job.stored_digest == "blake3:" + blake3(b"\x89PNG\r\n\x1a\n scan").hexdigest()  # what was stored
    report = process_batch([InboundMessage("m0", json.dumps(queue.messages[0].to_dict()))], infer)
    assert len(report.completed_jobs) == 1, report


def test_a_batch_runs_one_forward_pass_per_model_and_each_result_names_its_model(world):
    """Jobs naming two served models share a micro-batch; each model's images go through its own network only."""
    jobs, images, queue, submit, infer, default = world

    class Other(FakePredictor):
        identity = {"name": "other", "weights": "fake", "engine": "fake"}
        model_id = "other@1"

    other = Other()
    served = {"m": default, "other": other}
    infer.predictor_for = lambda name: served[name]
    for payload, model_id in ((b"a", None), (b"b", "other@1"), (b"c", None), (b"d", "other@1")):
        submit_image(Upload(b"\x89PNG\r\n\x1a\n" + payload), submit, model_id=model_id)
    messages = [InboundMessage(f"m{i}", json.dumps(m.to_dict())) for i, m in enumerate(queue.messages)]
    report = process_batch(messages, infer)
    assert default.batches == [2] and other.batches == [2] and len(report.completed_jobs) == 4
    names = sorted(jobs.get_job(job_id).result["model"]["name"] for job_id in report.completed_jobs)
    assert names == ["fake", "fake", "other", "other"]


def test_a_job_for_a_model_not_served_fails_at_once(world):
    jobs, images, queue, submit, infer, default = world
    infer.predictor_for = lambda name: {"m": default}[name]
    submit_image(Upload(b"\x89PNG\r\n\x1a\nz"), submit, model_id="gone@1")
    messages = [InboundMessage("m0", json.dumps(queue.messages[0].to_dict()))]
    report = process_batch(messages, infer)
    job = jobs.get_job(report.failed_jobs[0])
    assert job.status is JobStatus.FAILED and "model gone is not served" in job.error
    assert report.succeeded == ["m0"] and default.batches == []


def test_an_image_the_decoder_refuses_fails_its_job_at_once_with_the_decoders_reason(world):
    """Submit checks structure only (issue 28): what a full decode alone finds fails the job on its first delivery,
    no retry loop, with the decoder's message; its neighbours in the batch still complete."""
    from cxr_model import ImageError

    jobs, *_, infer, predictor = world
    messages = submit_all(world, [b"DAMAGED", b"fine"])
    plain = predictor.preprocess

    def preprocess(data):
        if data.endswith(b"DAMAGED"):
            raise ImageError.undecodable("PNG data is corrupt or truncated")
        return plain(data)
    predictor.preprocess = preprocess
    report = process_batch(messages, infer)
    damaged = json.loads(messages[0].body)["job_id"]
    assert report.failed_jobs == [damaged] and sorted(report.succeeded) == ["m0", "m1"] and report.failed == []
    job = jobs.get_job(damaged)
    assert job.status is JobStatus.FAILED
    assert job.error == "UNDECODABLE_IMAGE: PNG data is corrupt or truncated"
    assert predictor.batches == [1] and len(report.completed_jobs) == 1


@pytest.mark.parametrize("recorded", ["stored_sha256", "image_sha256"])
def test_a_job_from_before_stored_digest_is_checked_by_its_sha256(world, recorded):
    """Jobs queued before the digest existed carry the stored bytes' SHA-256 (or only the upload's): still checked."""
    import dataclasses
    import hashlib

    jobs, images, *_ = world
    messages = submit_all(world, [b"old", b"rotten"])
    for message, rotten in zip(messages, (False, True)):
        job = jobs.get_job(json.loads(message.body)["job_id"])
        stored = images.get(job.image_key)
        legacy = dataclasses.replace(job, stored_digest=None, stored_sha256=None)
        if recorded == "stored_sha256":
            legacy.stored_sha256 = hashlib.sha256(stored).hexdigest()
        else:
            legacy.image_sha256 = hashlib.sha256(stored).hexdigest()
        jobs.jobs[job.job_id] = legacy
        if rotten:
            images.put(job.image_key, stored + b"!", "image/png")
    report = process_batch(messages, world[4])
    assert len(report.completed_jobs) == 1 and len(report.failed_jobs) == 1


class _CorruptingStore:
    """Reads without S3's checksum come back damaged (a bad transfer); checked reads give the stored bytes, or fail
    as botocore fails a checksum mismatch when `checked_fails`."""

    def __init__(self, inner, checked_fails=False):
        self.inner, self.checked_fails, self.reads = inner, checked_fails, []

    def get(self, key, verify_checksum=True):
        self.reads.append(verify_checksum)
        if not verify_checksum and key.startswith("images/") and "/" not in key[len("images/"):]:
            return self.inner.get(key)[:-1] + b"?"
        if self.checked_fails:
            raise ConnectionError("Expected checksum did not match the calculated checksum")
        return self.inner.get(key)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.parametrize("checked_fails", [False, True])
def test_a_damaged_read_is_read_again_with_s3s_checksum_before_the_job_fails(world, checked_fails):
    """Issue 28: the image is read without S3's CRC (the digest check finds damage too); a mismatch is read again
    with the checksum: good bytes then score, a failing checksum makes the job a retry, never FAILED for a bad
    transfer."""
    import dataclasses

    jobs, images, *_ = world
    messages = submit_all(world, [b"a"])
    store = _CorruptingStore(images, checked_fails)
    report = process_batch(messages, dataclasses.replace(world[4], images=store))
    job = jobs.get_job(json.loads(messages[0].body)["job_id"])
    assert store.reads[:2] == [False, True]
    if checked_fails:
        assert report.failed == ["m0"] and job.status is JobStatus.QUEUED and report.failed_jobs == []
    else:
        assert report.completed_jobs == [job.job_id] and job.status is JobStatus.COMPLETED
