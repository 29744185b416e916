"""Submit service with in-memory ports: new jobs, cache hits, in-flight dedup, nothing half-created."""
import threading

import pytest

from cxr_core.domain import JobStatus, ServiceError, Upload, undecodable
from cxr_core.http import status_of
from cxr_core.services.infer import InboundMessage, InferDeps, process_batch
from cxr_core.services.submit import SubmitDeps, submit_image
from cxr_model.privacy import deidentify_dicom
from tests.fakes import (FakePredictor, InMemoryImageStore, InMemoryJobStore, InMemoryQueue,
                         fake_check_image)
from concurrent.futures import ThreadPoolExecutor
import json

PNG = b"\x89PNG\r\n\x1a\n" + b"pixels-1"


@pytest.fixture
def ports():
    return InMemoryJobStore(), InMemoryImageStore(), InMemoryQueue()


def deps_for(ports, model_id="model@1"):
    jobs, images, queue = ports
    return SubmitDeps(jobs=jobs, images=images, queue=queue, model_id=model_id, check_image=fake_check_image,
                      deidentify_dicom=deidentify_dicom)


def run_queue(ports):
    jobs, images, queue = ports
    messages = [InboundMessage(str(i), json.dumps(m.to_dict())) for i, m in enumerate(queue.messages)]
    queue.messages.clear()
    deps = InferDeps(jobs=jobs, images=images, predictor=FakePredictor(), executor=ThreadPoolExecutor(2),
                     max_receive_count=3, lease_seconds=60)
    return process_batch(messages, deps)


def test_new_image_is_stored_recorded_and_queued(ports):
    outcome = submit_image(Upload(PNG), deps_for(ports))
    jobs, images, queue = ports
    assert outcome.created and outcome.job.status is JobStatus.QUEUED
    assert images.objects[outcome.job.image_key] == PNG
    assert [m.job_id for m in queue.messages] == [outcome.job.job_id]
    assert jobs.get_job(outcome.job.job_id).status is JobStatus.QUEUED


def test_same_image_while_queued_returns_that_job(ports):
    first = submit_image(Upload(PNG), deps_for(ports))
    second = submit_image(Upload(PNG), deps_for(ports))
    assert not second.created and second.job.job_id == first.job.job_id
    assert len(ports[2].messages) == 1


def test_completed_image_is_a_cache_hit_with_its_own_completed_job(ports):
    first = submit_image(Upload(PNG), deps_for(ports))
    run_queue(ports)
    hit = submit_image(Upload(PNG), deps_for(ports))
    assert not hit.created and hit.job.cached and hit.job.status is JobStatus.COMPLETED
    assert hit.job.job_id != first.job.job_id
    assert hit.job.result["output"] == ports[0].get_job(first.job.job_id).result["output"]
    assert ports[2].messages == []


def test_another_model_does_not_serve_the_old_answer(ports):
    submit_image(Upload(PNG), deps_for(ports, "model@1"))
    run_queue(ports)
    other = submit_image(Upload(PNG), deps_for(ports, "model@2"))
    assert other.created and not other.job.cached


def test_racing_identical_uploads_make_one_job(ports):
    results = []
    barrier = threading.Barrier(8)

    def upload():
        barrier.wait()
        results.append(submit_image(Upload(PNG), deps_for(ports)))

    threads = [threading.Thread(target=upload) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len({r.job.job_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert len(ports[2].messages) == 1


@pytest.mark.parametrize("data, status, code", [
    (b"hello, not an image", 415, "UNSUPPORTED_MEDIA_TYPE"),
    (b"\x89PNG\r\n\x1a\nBROKEN", 422, "UNDECODABLE_IMAGE"),
])
def test_rejected_upload_writes_nothing(ports, data, status, code):
    with pytest.raises(ServiceError) as raised:
        submit_image(Upload(data), deps_for(ports))
    assert (status_of(raised.value), raised.value.code) == (status, code)
    jobs, images, queue = ports
    assert not jobs.jobs and not jobs.cache and not images.objects and not queue.messages


def test_queue_failure_keeps_the_job_for_the_recovery_pass(ports):
    from cxr_core.services.recovery import recover_stuck_jobs
    jobs, images, queue = ports
    broken = InMemoryQueue(fail_sends=True)
    outcome = submit_image(Upload(PNG), deps_for((jobs, images, broken)))
    assert outcome.created and jobs.get_job(outcome.job.job_id).status is JobStatus.QUEUED
    assert broken.messages == []  # nothing reached the queue: no message without a job either way
    report = recover_stuck_jobs(jobs, queue, older_than_seconds=-1, max_attempts=3)
    assert report.requeued == [outcome.job.job_id] and [m.job_id for m in queue.messages] == report.requeued


def test_a_committed_create_whose_answer_was_lost_still_sends_its_message(ports):
    jobs, images, queue = ports

    class LostAnswer(InMemoryJobStore):
        def create_job(self, job, stale_job_id=None, claim_cache=True):
            super().create_job(job, stale_job_id, claim_cache)
            from cxr_core.ports import CacheKeyTaken
            raise CacheKeyTaken(job.cache_key)  # the retry tripped over its own committed write

    store = LostAnswer()
    outcome = submit_image(Upload(PNG), deps_for((store, images, queue)))
    assert outcome.created and [m.job_id for m in queue.messages] == [outcome.job.job_id]


def test_failed_job_does_not_block_a_fresh_upload(ports):
    first = submit_image(Upload(PNG), deps_for(ports))
    ports[0].fail_job(first.job, None, "poison")
    again = submit_image(Upload(PNG), deps_for(ports))
    assert again.created and again.job.job_id != first.job.job_id


def test_another_clients_job_is_never_handed_out(ports):
    from cxr_core.services.jobs import get_job
    first = submit_image(Upload(PNG), deps_for(ports), client_id="hospital-a")
    other = submit_image(Upload(PNG), deps_for(ports), client_id="hospital-b")
    assert other.created and other.job.job_id != first.job.job_id
    assert len(ports[2].messages) == 2
    with pytest.raises(ServiceError) as raised:
        get_job(ports[0], first.job.job_id, "hospital-b")
    assert status_of(raised.value) == 404
    run_queue(ports)
    hit = submit_image(Upload(PNG), deps_for(ports), client_id="hospital-b")
    assert hit.job.cached and hit.job.client_id == "hospital-b"


def test_a_cache_hit_does_not_wait_for_the_image_check(ports):
    submit_image(Upload(PNG), deps_for(ports))
    run_queue(ports)
    release = threading.Event()

    def slow_check(data):
        release.wait(10)
        return fake_check_image(data)

    deps = SubmitDeps(jobs=ports[0], images=ports[1], queue=ports[2], model_id="model@1", check_image=slow_check,
                      deidentify_dicom=deidentify_dicom, executor=ThreadPoolExecutor(1))
    try:
        hit = submit_image(Upload(PNG), deps)
        assert hit.job.cached and not release.is_set()
    finally:
        release.set()
        deps.executor.shutdown(wait=True)


def test_with_an_executor_a_bad_new_image_is_still_rejected_and_nothing_is_written(ports):
    def refuse(data):
        raise undecodable("PNG pixel data is not a valid zlib stream")

    deps = SubmitDeps(jobs=ports[0], images=ports[1], queue=ports[2], model_id="model@1", check_image=refuse,
                      deidentify_dicom=deidentify_dicom, executor=ThreadPoolExecutor(1))
    with pytest.raises(ServiceError) as raised:
        submit_image(Upload(b"\x89PNG\r\n\x1a\nbroken"), deps)
    assert status_of(raised.value) == 422
    assert ports[1].objects == {} and ports[2].messages == []
    deps.executor.shutdown(wait=True)


def test_by_default_the_cache_answers_a_client_only_from_its_own_uploads(ports):
    first = submit_image(Upload(PNG), deps_for(ports), client_id="hospital-a")
    run_queue(ports)
    other = submit_image(Upload(PNG), deps_for(ports), client_id="hospital-b")
    assert other.created and not other.job.cached and other.job.job_id != first.job.job_id  # runs on its own
    again = submit_image(Upload(PNG), deps_for(ports), client_id="hospital-a")
    assert not again.created and again.job.cached
    assert again.job.result["created_at"] == ports[0].get_job(first.job.job_id).result["created_at"]


def test_in_global_scope_a_hit_on_another_clients_upload_tells_nothing_of_when(ports):
    import time

    deps = deps_for(ports)
    deps.cache_scope = "global"
    first = submit_image(Upload(PNG), deps, client_id="hospital-a")
    run_queue(ports)
    time.sleep(0.01)  # timestamps have millisecond resolution
    hit = submit_image(Upload(PNG), deps, client_id="hospital-b")
    assert not hit.created and hit.job.cached
    inferred = ports[0].get_job(first.job.job_id)
    stamps = {inferred.created_at, inferred.updated_at, inferred.finished_at, inferred.result["created_at"]}
    shown = {hit.job.created_at, hit.job.updated_at, hit.job.finished_at, hit.job.result["created_at"]}
    assert not stamps & shown and hit.job.result["created_at"] == hit.job.created_at


def test_an_upload_whose_sha256_the_store_verified_is_not_hashed_again(ports, monkeypatch):
    """Issue 28: a presigned upload sent with its SHA-256 was checked by S3 at the PUT; submit keys the cache on
    that checksum instead of hashing the bytes again, and a second upload of the same bytes finds the first."""
    import hashlib

    import cxr_core.services.submit as submit

    digest = hashlib.sha256(PNG).hexdigest()
    hashed = []
    monkeypatch.setattr(submit, "sha256_hex", lambda data: hashed.append(data) or hashlib.sha256(data).hexdigest())
    first = submit_image(Upload(PNG, sha256=digest), deps_for(ports))
    assert first.created and first.job.image_sha256 == digest and first.job.image_key == f"images/{digest}"
    assert hashed == []
    again = submit_image(Upload(PNG), deps_for(ports))  # inline: hashed here, the same key
    assert hashed == [PNG] and again.job.job_id == first.job.job_id and not again.created
