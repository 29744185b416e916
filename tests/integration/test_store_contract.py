"""The JobStore contract, run against the in-memory fake the unit tests trust and the DynamoDB store on moto.

Where the two disagree, the fake is wrong: it is fixed to do what DynamoDB does.
"""
from __future__ import annotations

import random
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from cxr_core.domain import JobStatus, iso
from cxr_core.ports import CacheKeyTaken, ClaimState
from tests.fakes import InMemoryJobStore
from tests.integration.test_dynamo_store import new_job

pytestmark = pytest.mark.integration
RESULT = {"top_label": "x", "output": {"x": 0.5}}


@pytest.fixture(params=["fake", "dynamodb"])
def store(request):
    if request.param == "fake":
        return InMemoryJobStore()
    return request.getfixturevalue("runtime").jobs


def created(store, sha=None):
    job = new_job(sha)
    store.create_job(job)
    return job


def claimed(store, token="t", lease=60):
    job = created(store)
    assert store.claim_jobs([job.job_id], token, lease)[job.job_id].state is ClaimState.CLAIMED
    return job


# ---- job store and cache/dedup --------------------------------------------------------------------------------

def test_create_writes_the_job_and_a_pending_cache_entry(store):
    job = created(store)
    stored = store.get_job(job.job_id)
    assert (stored.status, stored.image_sha256, stored.attempts, stored.result) == (JobStatus.QUEUED, job.image_sha256, 0, None)
    entry = store.get_cache(job.cache_key)
    assert (entry.job_id, entry.done, entry.result) == (job.job_id, False, None)
    assert store.get_job("no-such-job") is None and store.get_cache("no-such-key") is None


def test_a_held_cache_key_refuses_a_second_job_and_writes_neither_item(store):
    first = created(store)
    rival = new_job(first.image_sha256)
    with pytest.raises(CacheKeyTaken):
        store.create_job(rival)
    assert store.get_job(rival.job_id) is None and store.get_cache(first.cache_key).job_id == first.job_id
    alone = new_job(first.image_sha256)
    store.create_job(alone, claim_cache=False)  # another client's copy runs on its own
    assert store.get_job(alone.job_id).status is JobStatus.QUEUED
    assert store.get_cache(first.cache_key).job_id == first.job_id


def test_a_stale_pending_entry_can_be_taken_over_but_not_a_done_one(store):
    stale = claimed(store)
    store.fail_job(stale, "t", "poison")
    stale_owner = new_job(stale.image_sha256)
    store.create_job(stale_owner)  # fail_job freed the key
    successor = new_job(stale.image_sha256)
    with pytest.raises(CacheKeyTaken):
        store.create_job(successor, stale_job_id="some-other-job")
    store.create_job(successor, stale_job_id=stale_owner.job_id)
    assert store.get_cache(successor.cache_key).job_id == successor.job_id
    store.claim_jobs([successor.job_id], "s", 60)
    assert store.complete_job(successor, "s", RESULT)
    with pytest.raises(CacheKeyTaken):
        store.create_job(new_job(stale.image_sha256), stale_job_id=successor.job_id)


def test_put_job_never_overwrites(store):
    job = new_job()
    job.status, job.cached, job.result = JobStatus.COMPLETED, True, RESULT
    store.put_job(job)
    assert store.get_job(job.job_id).cached and store.get_job(job.job_id).result == RESULT
    with pytest.raises(Exception):
        store.put_job(job)


# ---- claims ----------------------------------------------------------------------------------------------------

def test_claims_classify_every_id_once(store):
    fresh, running, done = created(store), claimed(store, "other"), claimed(store, "d")
    assert store.complete_job(done, "d", RESULT)
    ids = [fresh.job_id, running.job_id, done.job_id, "no-such-job", fresh.job_id]
    claims = store.claim_jobs(ids, "me", 60)
    assert set(claims) == set(ids)
    assert [claims[i].state for i in ids[:4]] == [ClaimState.CLAIMED, ClaimState.BUSY, ClaimState.FINAL,
                                                   ClaimState.MISSING]
    job = claims[fresh.job_id].job
    assert (job.status, job.attempts, job.job_id) == (JobStatus.IN_PROGRESS, 1, fresh.job_id) and job.started_at
    stored = store.get_job(fresh.job_id)
    assert (stored.status, stored.attempts) == (JobStatus.IN_PROGRESS, 1) and stored.started_at == job.started_at
    assert claims[done.job_id].job.status is JobStatus.COMPLETED


def test_an_expired_lease_is_taken_over_and_the_old_token_loses(store):
    job = claimed(store, "dead", lease=-1)
    claim = store.claim_jobs([job.job_id], "live", 60)[job.job_id]
    assert claim.state is ClaimState.CLAIMED and claim.job.attempts == 2
    assert not store.complete_job(job, "dead", RESULT)
    assert store.complete_job(job, "live", RESULT)


# ---- completion, release, failure ------------------------------------------------------------------------------

def test_completion_needs_the_claim_and_fills_the_cache(store):
    job = claimed(store)
    assert not store.complete_job(job, "wrong", RESULT)
    assert store.complete_job(job, "t", RESULT)
    stored = store.get_job(job.job_id)
    assert (stored.status, stored.result, stored.error) == (JobStatus.COMPLETED, RESULT, None) and stored.finished_at
    entry = store.get_cache(job.cache_key)
    assert (entry.job_id, entry.done, entry.result) == (job.job_id, True, RESULT)
    assert not store.complete_job(job, "t", {"top_label": "again"})
    assert store.get_job(job.job_id).result == RESULT


def test_a_release_requeues_with_the_reason_and_ends_the_claim(store):
    job = claimed(store)
    before = store.get_job(job.job_id).updated_at
    store.release_job(job, "wrong", "not mine")
    assert store.get_job(job.job_id).status is JobStatus.IN_PROGRESS
    time.sleep(0.002)
    store.release_job(job, "t", "S3 read failed")
    stored = store.get_job(job.job_id)
    assert (stored.status, stored.error) == (JobStatus.QUEUED, "S3 read failed") and stored.updated_at > before
    assert not store.complete_job(job, "t", RESULT)  # the released claim is gone
    again = store.claim_jobs([job.job_id], "u", 60)[job.job_id]
    assert again.state is ClaimState.CLAIMED and again.job.attempts == 2
    assert store.complete_job(job, "u", RESULT) and store.get_job(job.job_id).error is None


def test_a_failure_is_final_and_frees_only_its_own_pending_entry(store):
    job = claimed(store)
    store.fail_job(job, "wrong", "not mine")
    assert store.get_job(job.job_id).status is JobStatus.IN_PROGRESS
    store.fail_job(job, "t", "poison image")
    stored = store.get_job(job.job_id)
    assert (stored.status, stored.error) == (JobStatus.FAILED, "poison image") and stored.finished_at
    assert store.get_cache(job.cache_key) is None
    store.fail_job(job, None, "again")
    assert store.get_job(job.job_id).error == "poison image"
    assert not store.complete_job(job, "t", RESULT)
    assert store.claim_jobs([job.job_id], "u", 60)[job.job_id].state is ClaimState.FINAL
    done = claimed(store, "d")
    assert store.complete_job(done, "d", RESULT)
    loose = new_job(done.image_sha256)
    store.create_job(loose, claim_cache=False)
    store.fail_job(loose, None, "abandoned")  # another job's DONE entry stays
    assert store.get_job(loose.job_id).status is JobStatus.FAILED and store.get_cache(done.cache_key).done


# ---- recovery queries --------------------------------------------------------------------------------------------

def test_touch_and_reset_move_only_the_jobs_they_name(store):
    queued = created(store)
    before = store.get_job(queued.job_id).updated_at
    time.sleep(0.002)
    assert store.touch_queued(queued) and store.get_job(queued.job_id).updated_at > before
    running = claimed(store)
    assert not store.touch_queued(running) and not store.reset_to_queued(running)  # its lease is live
    abandoned = claimed(store, "dead", lease=-1)
    assert not store.touch_queued(abandoned)
    assert store.reset_to_queued(abandoned) and not store.reset_to_queued(abandoned)
    stored = store.get_job(abandoned.job_id)
    assert stored.status is JobStatus.QUEUED and stored.attempts == 1
    assert not store.complete_job(abandoned, "dead", RESULT)
    assert not store.reset_to_queued(queued)


def test_jobs_by_status_newest_first_within_since_and_before(store):
    base = datetime(2001, 1, 1, tzinfo=timezone.utc) + timedelta(days=random.randrange(3000))
    moments = [iso(base + timedelta(minutes=m)) for m in range(5)]
    jobs = []
    for moment in moments:  # written in the past, so no other test's jobs fall inside the window
        job = new_job()
        job.created_at = job.updated_at = moment
        job.status = JobStatus.FAILED
        job.error = "old"
        store.put_job(job)
        jobs.append(job)
    ids = [job.job_id for job in jobs]

    def listed(**window):
        return [j.job_id for j in store.jobs_by_status(JobStatus.FAILED, **window) if j.job_id in ids]

    assert listed(since=moments[1], before=None) == ids[:0:-1]
    assert listed(since="", before=moments[3]) == ids[2::-1]
    assert ids[3] not in listed(since="", before=moments[3])  # before is exclusive
    assert listed(since="", before=moments[3], limit=2) == [ids[2], ids[1]]
    assert listed(since=moments[0], before=None)[0] == ids[4] and listed(since=moments[4]) == [ids[4]]
    assert all(j.error == "old" for j in store.jobs_by_status(JobStatus.FAILED, moments[0]) if j.job_id in ids)
    assert not [j for j in store.jobs_by_status(JobStatus.QUEUED, moments[0]) if j.job_id in ids]
    assert uuid.UUID(ids[0])  # random ids, never sequential
