"""The client-data parts of the JobStore contract (listing by client, deletion) and the ImageHolds contract, run
against the in-memory fakes and the DynamoDB adapters on moto. Where the two disagree, the fake is wrong."""
from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from cxr_core.domain import JobStatus, iso, utc_now
from cxr_core.dynamo_image_holds import DynamoImageHolds
from cxr_core.ports import ClaimState
from tests.fakes import InMemoryImageHolds, InMemoryJobStore
from tests.integration.test_dynamo_store import new_job

pytestmark = pytest.mark.integration
RESULT = {"top_label": "x", "output": {"x": 0.5}}


@pytest.fixture(params=["fake", "dynamodb"])
def store(request):
    if request.param == "fake":
        return InMemoryJobStore()
    return request.getfixturevalue("runtime").jobs


@pytest.fixture(params=["fake", "dynamodb"])
def holds(request):
    if request.param == "fake":
        return InMemoryImageHolds()
    request.getfixturevalue("runtime")  # binds the tables to moto's
    return DynamoImageHolds(ttl_days=1)


def client_job(store, client: str, status: JobStatus = JobStatus.QUEUED):
    job = new_job()
    job.client_id, job.cache_owner = client, client
    store.create_job(job)
    if status is not JobStatus.QUEUED:
        store.claim_jobs([job.job_id], "t", 60)
        if status is JobStatus.COMPLETED:
            assert store.complete_job(job, "t", RESULT)
    time.sleep(0.002)  # created_at has millisecond resolution: keep the order observable
    return job


def every_page(store, client: str, limit: int, **filters) -> list:
    seen, key = [], None
    for _ in range(50):
        page, key = store.client_jobs(client, limit, key, **filters)
        assert len(page) <= limit
        seen += page
        if key is None:
            return seen
    raise AssertionError("the pages never ended")


def test_a_clients_jobs_come_newest_first_in_pages_and_never_anothers(store):
    client, other = f"c-{uuid.uuid4().hex}", f"c-{uuid.uuid4().hex}"
    mine = [client_job(store, client) for _ in range(5)]
    client_job(store, other)
    listed = every_page(store, client, 2)
    assert [job.job_id for job in listed] == [job.job_id for job in reversed(mine)]
    assert all(job.client_id == client and job.result is None for job in listed)  # what the index projects
    assert every_page(store, f"c-{uuid.uuid4().hex}", 3) == []


def test_the_listing_filters_by_status_and_creation_time(store):
    client = f"c-{uuid.uuid4().hex}"
    done = client_job(store, client, JobStatus.COMPLETED)
    queued = [client_job(store, client) for _ in range(3)]
    assert [job.job_id for job in every_page(store, client, 2, status=JobStatus.COMPLETED)] == [done.job_id]
    assert ({job.job_id for job in every_page(store, client, 2, status=JobStatus.QUEUED)}
            == {job.job_id for job in queued})
    window = every_page(store, client, 10, since=queued[0].created_at, until=queued[1].created_at)
    assert [job.job_id for job in window] == [queued[1].job_id, queued[0].job_id]
    assert every_page(store, client, 10, until=iso(utc_now().replace(year=2000))) == []


def test_deleting_removes_the_job_and_its_own_cache_entry_once(store):
    job = client_job(store, f"c-{uuid.uuid4().hex}", JobStatus.COMPLETED)
    assert store.get_cache(job.cache_key).done
    assert store.delete_job(job)
    assert store.get_job(job.job_id) is None and store.get_cache(job.cache_key) is None
    assert not store.delete_job(job)  # already gone


def test_deleting_leaves_a_cache_entry_another_job_holds(store):
    first = client_job(store, f"c-{uuid.uuid4().hex}")
    store.fail_job(first, None, "poison")  # frees the key
    successor = new_job(first.image_sha256)
    successor.client_id = successor.cache_owner = first.client_id
    store.create_job(successor)
    assert store.delete_job(first)
    assert store.get_cache(successor.cache_key).job_id == successor.job_id


def test_a_deleted_job_is_neither_completed_nor_failed_nor_claimed_afterwards(store):
    job = client_job(store, f"c-{uuid.uuid4().hex}", JobStatus.IN_PROGRESS)
    assert store.delete_job(job)
    assert not store.complete_job(job, "t", RESULT)
    assert not store.fail_job(job, "t", "late") and not store.fail_job(job, None, "late")
    assert store.get_job(job.job_id) is None and store.get_cache(job.cache_key) is None  # nothing written back
    assert store.claim_jobs([job.job_id], "u", 60)[job.job_id].state is ClaimState.MISSING


def test_an_image_is_marked_for_deletion_only_when_its_last_holder_lets_go(holds):
    image = f"images/{uuid.uuid4().hex}"
    assert holds.hold(image, "a") and holds.hold(image, "b")
    assert holds.release(image, "a") is None  # b still needs it
    mark = holds.release(image, "b")
    assert mark is not None
    assert not holds.hold(image, "c")  # no hold while the deletion is under way
    assert holds.release(image, "d") is None  # nor a second deletion
    holds.deleted(image, mark)
    assert holds.hold(image, "c")  # after it, an upload may store the image again


def test_racing_holds_and_releases_never_mark_an_image_someone_holds(holds):
    image = f"images/{uuid.uuid4().hex}"
    assert holds.hold(image, "first")

    def hold(n: int) -> bool:
        return holds.hold(image, f"job-{n}")

    with ThreadPoolExecutor(6) as pool:
        racing = pool.submit(holds.release, image, "first")
        held = list(pool.map(hold, range(10)))
        mark = racing.result()
    # a hold before the mark makes the mark fail; a hold after it is refused: never a mark and a granted hold
    assert (mark is None and all(held)) or (mark is not None and not any(held)), (mark, held)
    if mark is not None:
        holds.deleted(image, mark)


def test_a_job_in_flight_on_dynamodb_and_s3_is_cancelled_by_its_deletion(runtime):
    """The real store, bucket and model: the forward pass is under way when the job is deleted; the worker writes no
    result, no cache entry, and acknowledges the message; the image is gone."""
    import json
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import replace

    from cxr_core.domain import Upload
    from cxr_core.heatmaps import model_input_key
    from cxr_core.services.erasure import delete_job
    from cxr_core.services.infer import InboundMessage, process_batch
    from cxr_core.services.submit import submit_image
    from tests.images import perturbed_png

    client = f"c-{uuid.uuid4().hex}"
    job = submit_image(Upload(perturbed_png(uuid.uuid4().int % 10**9)), runtime.submit_deps(), client).job
    entered, release = threading.Event(), threading.Event()
    deps = runtime.infer_deps()

    class HeldPredictor:
        identity, model_id = deps.predictor.identity, deps.predictor.model_id

        def preprocess(self, data):
            return deps.predictor.preprocess(data)

        def model_input_pixels(self, tensor):
            return deps.predictor.model_input_pixels(tensor)

        def predict(self, images):
            entered.set()
            release.wait(30)
            return deps.predictor.predict(images)

    body = json.dumps({"job_id": job.job_id, "image_key": job.image_key, "image_sha256": job.image_sha256,
                       "model_id": job.model_id})
    with ThreadPoolExecutor(1) as pool:
        held = replace(deps, predictor=HeldPredictor(), predictor_for=None)  # every job to the held predictor
        running = pool.submit(process_batch, [InboundMessage("m1", body)], held)
        assert entered.wait(60)
        assert runtime.jobs.get_job(job.job_id).status is JobStatus.IN_PROGRESS
        assert runtime.images.head(model_input_key(job.image_key))  # stored before the forward pass
        assert delete_job(runtime.erasure_deps(), job.job_id, client).image_deleted
        release.set()
        report = running.result(60)
    assert report.completed_jobs == [] and report.succeeded == ["m1"]
    assert runtime.jobs.get_job(job.job_id) is None and runtime.jobs.get_cache(job.cache_key) is None
    assert runtime.images.head(job.image_key) is None
    assert runtime.images.head(model_input_key(job.image_key)) is None  # the heatmap background went with it
