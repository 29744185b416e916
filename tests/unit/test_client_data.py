"""A client's own data with in-memory ports: the listing (pages, filters, tenancy), erasure (holds across clients,
in flight, the cache) and the audit line of each route."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from cxr_core.domain import ErrorKind, JobStatus, ServiceError, Upload
from cxr_core.services.erasure import ErasureDeps, delete_job
from cxr_core.services.infer import InboundMessage, InferDeps, process_batch
from cxr_core.services.jobs import ListQuery, decode_cursor, encode_cursor, list_jobs, parse_list_query
from cxr_core.services.submit import SubmitDeps, submit_image
from cxr_model.privacy import deidentify_dicom
from tests.fakes import (FakePredictor, InMemoryImageHolds, InMemoryImageStore, InMemoryJobStore, InMemoryQueue,
                         fake_check_image)


def png(n: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + f"pixels-{n}".encode()


class Ports:
    def __init__(self):
        self.jobs, self.images, self.queue, self.holds = (InMemoryJobStore(), InMemoryImageStore(), InMemoryQueue(),
                                                          InMemoryImageHolds())

    def submit(self, data: bytes, client: str, scope: str = "client"):
        return submit_image(Upload(data), SubmitDeps(
            jobs=self.jobs, images=self.images, queue=self.queue, model_id="model@1", check_image=fake_check_image,
            deidentify_dicom=deidentify_dicom, cache_scope=scope, holds=self.holds), client_id=client)

    def erase(self, job_id: str, client: str):
        return delete_job(ErasureDeps(jobs=self.jobs, images=self.images, holds=self.holds), job_id, client)

    def infer_deps(self, predictor=None) -> InferDeps:
        return InferDeps(jobs=self.jobs, images=self.images, predictor=predictor or FakePredictor(),
                         executor=ThreadPoolExecutor(2), max_receive_count=3, lease_seconds=60)

    def run_queue(self):
        messages = [InboundMessage(str(i), json.dumps(m.to_dict())) for i, m in enumerate(self.queue.messages)]
        self.queue.messages.clear()
        return process_batch(messages, self.infer_deps())


@pytest.fixture
def ports():
    return Ports()


# ---- listing ---------------------------------------------------------------------------------------------------

def test_the_listing_pages_through_the_callers_own_jobs_newest_first(ports):
    mine = [ports.submit(png(i), "hospital-a").job.job_id for i in range(7)]
    ports.submit(png(100), "hospital-b")
    seen, cursor = [], None
    while True:
        page = list_jobs(ports.jobs, "hospital-a", ListQuery(limit=3, cursor=cursor))
        assert len(page["jobs"]) <= 3
        seen += page["jobs"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(job["id"] for job in seen) == sorted(mine)  # each once, none of hospital-b's
    stamps = [job["created_at"] for job in seen]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    assert set(seen[0]) >= {"id", "status", "created_at", "updated_at", "cached"} and "result" not in seen[0]


def test_the_listing_filters_by_status_and_time(ports):
    first = ports.submit(png(1), "hospital-a").job
    ports.run_queue()
    later = ports.submit(png(2), "hospital-a").job
    done = list_jobs(ports.jobs, "hospital-a", ListQuery(status=JobStatus.COMPLETED))
    assert [job["id"] for job in done["jobs"]] == [first.job_id]
    queued = list_jobs(ports.jobs, "hospital-a", ListQuery(status=JobStatus.QUEUED))
    assert [job["id"] for job in queued["jobs"]] == [later.job_id]
    since = list_jobs(ports.jobs, "hospital-a", ListQuery(since=later.created_at))
    assert later.job_id in [job["id"] for job in since["jobs"]]
    assert list_jobs(ports.jobs, "hospital-a", ListQuery(until="2000-01-01T00:00:00.000Z"))["jobs"] == []


def test_list_parameters_are_checked():
    assert parse_list_query({}) == ListQuery()
    query = parse_list_query({"limit": "100", "status": "FAILED", "since": "2026-12-01T00:00:00Z",
                              "until": "2026-12-02T00:00:00+01:00"})
    assert (query.limit, query.status, query.since, query.until) == (
        100, JobStatus.FAILED, "2026-12-01T00:00:00.000Z", "2026-12-01T23:00:00.000Z")
    for bad in ({"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"status": "DONE"}, {"since": "yesterday"},
                {"since": "2026-12-01T00:00:00"}, {"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}):
        with pytest.raises(ServiceError) as refused:
            parse_list_query(bad)
        assert refused.value.kind is ErrorKind.INVALID, bad


def test_a_cursor_is_opaque_and_only_the_client_it_was_made_for_may_use_it(ports):
    for i in range(3):
        ports.submit(png(i), "hospital-a")
    cursor = list_jobs(ports.jobs, "hospital-a", ListQuery(limit=1))["next_cursor"]
    assert cursor and "hospital-a" not in cursor  # not readable as is
    with pytest.raises(ServiceError) as refused:
        list_jobs(ports.jobs, "hospital-b", ListQuery(cursor=cursor))
    assert refused.value.kind is ErrorKind.INVALID
    forged = encode_cursor({"job_id": {"S": "x"}, "client_id": {"S": "hospital-b"}, "created_at": {"S": "z"}})
    for bad in ("not-base64!", encode_cursor({"job_id": {"S": "x"}}), forged):
        with pytest.raises(ServiceError):
            decode_cursor(bad, "hospital-a")


# ---- erasure ---------------------------------------------------------------------------------------------------

def test_delete_erases_the_job_its_cache_entry_and_its_image(ports):
    job = ports.submit(png(1), "hospital-a").job
    ports.run_queue()
    ports.images.objects[f"derived/{job.job_id}/heatmap.png"] = b"derived"
    assert ports.jobs.get_cache(job.cache_key).done
    erased = ports.erase(job.job_id, "hospital-a")
    assert erased.image_deleted
    assert ports.jobs.get_job(job.job_id) is None and ports.jobs.get_cache(job.cache_key) is None
    assert ports.images.objects == {}
    again = ports.submit(png(1), "hospital-a")  # no cached answer brings the result back
    assert again.created and not again.job.cached


def test_a_second_delete_and_another_clients_delete_answer_not_found(ports):
    job = ports.submit(png(1), "hospital-a").job
    with pytest.raises(ServiceError) as other:
        ports.erase(job.job_id, "hospital-b")
    assert other.value.kind is ErrorKind.NOT_FOUND and ports.jobs.get_job(job.job_id) is not None
    ports.erase(job.job_id, "hospital-a")
    with pytest.raises(ServiceError) as second:
        ports.erase(job.job_id, "hospital-a")
    assert second.value.kind is ErrorKind.NOT_FOUND


def test_the_image_stays_while_another_clients_job_still_holds_it(ports):
    mine = ports.submit(png(1), "hospital-a").job
    theirs = ports.submit(png(1), "hospital-b").job  # per-client cache: its own job, the same stored object
    assert mine.image_key == theirs.image_key
    assert not ports.erase(mine.job_id, "hospital-a").image_deleted
    assert mine.image_key in ports.images.objects
    assert ports.run_queue().completed_jobs == [theirs.job_id]  # it still runs on the image
    assert ports.erase(theirs.job_id, "hospital-b").image_deleted and ports.images.objects == {}


def test_a_cache_hit_copy_holds_no_image_and_deleting_it_keeps_the_original(ports):
    first = ports.submit(png(1), "hospital-a").job
    ports.run_queue()
    copy = ports.submit(png(1), "hospital-a").job
    assert copy.cached
    assert not ports.erase(copy.job_id, "hospital-a").image_deleted
    assert first.image_key in ports.images.objects and ports.jobs.get_cache(first.cache_key).done


def test_a_job_in_flight_is_cancelled_no_result_is_written_after_the_delete(ports):
    job = ports.submit(png(1), "hospital-a").job
    entered, release = threading.Event(), threading.Event()

    class SlowPredictor(FakePredictor):
        def predict(self, images):
            entered.set()
            release.wait(10)
            return super().predict(images)

    messages = [InboundMessage("m1", json.dumps(m.to_dict())) for m in ports.queue.messages]
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(process_batch, messages, ports.infer_deps(SlowPredictor()))
        assert entered.wait(10)  # claimed, image loaded, forward pass under way
        ports.erase(job.job_id, "hospital-a")
        release.set()
        report = running.result(10)
    assert report.completed_jobs == [] and report.succeeded == ["m1"]  # dropped and acknowledged
    assert ports.jobs.get_job(job.job_id) is None and ports.jobs.get_cache(job.cache_key) is None


def test_a_failing_job_deleted_meanwhile_is_not_brought_back_as_failed(ports):
    job = ports.submit(png(1), "hospital-a").job
    ports.erase(job.job_id, "hospital-a")
    assert not ports.jobs.fail_job(job, None, "late failure") and ports.jobs.get_job(job.job_id) is None


def test_a_submit_waits_out_an_erasure_of_its_image_and_stores_it_again(ports, monkeypatch):
    from cxr_core.services import submit as submit_module

    old = ports.submit(png(1), "hospital-a").job
    mark = ports.holds.release(old.image_key, old.job_id)  # an erasure of the image is under way
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        if len(waits) == 2:  # the erasure finishes meanwhile
            ports.images.delete(old.image_key)
            ports.holds.deleted(old.image_key, mark)

    monkeypatch.setattr(submit_module.time, "sleep", sleep)
    fresh = ports.submit(png(1), "hospital-b")
    assert fresh.created and len(waits) == 2
    assert ports.images.objects[fresh.job.image_key] == png(1)  # stored after the erasure, not before
    assert fresh.job.job_id in ports.holds.holders[fresh.job.image_key]


def test_a_submit_answered_by_another_job_gives_its_hold_back(ports):
    first = ports.submit(png(1), "hospital-a").job
    again = ports.submit(png(1), "hospital-a")  # the same client's job in flight answers
    assert not again.created and again.job.job_id == first.job_id
    assert ports.holds.holders[first.image_key] == {first.job_id}
