"""The DynamoDB job store against moto's server: conditional transitions, transactions, the status index."""
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from cxr_core.domain import Job, JobStatus, iso, utc_now
from cxr_core.ports import CacheKeyTaken, ClaimState

pytestmark = pytest.mark.integration


def new_job(sha=None) -> Job:
    moment = iso(utc_now())
    sha = sha or uuid.uuid4().hex
    return Job(job_id=str(uuid.uuid4()), status=JobStatus.QUEUED, image_sha256=sha, image_key=f"images/{sha}",
               model_id="m@1", created_at=moment, updated_at=moment)


def test_create_claims_the_cache_key_once(runtime):
    store = runtime.jobs
    first, rival = new_job("same" + uuid.uuid4().hex), None
    store.create_job(first)
    rival = new_job(first.image_sha256)
    with pytest.raises(CacheKeyTaken):
        store.create_job(rival)
    assert store.get_job(rival.job_id) is None  # the transaction wrote neither item
    assert store.get_cache(first.cache_key).job_id == first.job_id


def test_racing_creates_of_one_image_leave_one_job(runtime):
    sha = uuid.uuid4().hex
    jobs = [new_job(sha) for _ in range(6)]

    def create(job):
        try:
            runtime.jobs.create_job(job)
            return True
        except CacheKeyTaken:
            return False
        except Exception:  # a TransactionConflict is a loss too
            return False

    with ThreadPoolExecutor(6) as pool:
        won = list(pool.map(create, jobs))
    assert won.count(True) == 1
    winner = jobs[won.index(True)]
    assert runtime.jobs.get_cache(winner.cache_key).job_id == winner.job_id


def test_claim_complete_and_duplicate_claims(runtime):
    store = runtime.jobs
    jobs = [new_job() for _ in range(3)]
    for job in jobs:
        store.create_job(job)
    claims = store.claim_jobs([j.job_id for j in jobs] + ["no-such-job"], "token-a", 60)
    assert [claims[j.job_id].state for j in jobs] == [ClaimState.CLAIMED] * 3
    assert claims["no-such-job"].state is ClaimState.MISSING
    again = store.claim_jobs([jobs[0].job_id], "token-b", 60)
    assert again[jobs[0].job_id].state is ClaimState.BUSY
    assert store.complete_job(jobs[0], "token-a", {"top_label": "x", "output": {"x": 0.5}})
    assert not store.complete_job(jobs[0], "token-b", {"top_label": "y", "output": {}})
    done = store.get_job(jobs[0].job_id)
    assert done.status is JobStatus.COMPLETED and done.result["top_label"] == "x" and done.attempts == 1
    assert store.get_cache(jobs[0].cache_key).done
    assert store.claim_jobs([jobs[0].job_id], "token-c", 60)[jobs[0].job_id].state is ClaimState.FINAL


def test_expired_lease_can_be_reclaimed(runtime):
    job = new_job()
    runtime.jobs.create_job(job)
    runtime.jobs.claim_jobs([job.job_id], "dead-worker", -1)  # its lease is already over
    claim = runtime.jobs.claim_jobs([job.job_id], "live-worker", 60)[job.job_id]
    assert claim.state is ClaimState.CLAIMED and claim.job.attempts == 2


def test_fail_frees_the_dedup_record_and_lists_in_the_status_index(runtime):
    job = new_job()
    runtime.jobs.create_job(job)
    runtime.jobs.claim_jobs([job.job_id], "t", 60)
    runtime.jobs.fail_job(job, "t", "poison image")
    assert runtime.jobs.get_cache(job.cache_key) is None
    failed = runtime.jobs.jobs_by_status(JobStatus.FAILED, "")
    assert job.job_id in [j.job_id for j in failed]
    assert [j for j in failed if j.job_id == job.job_id][0].error == "poison image"


def test_recovery_pass_on_dynamodb_requeues_the_orphan_once(runtime):
    from cxr_core.services.recovery import recover_stuck_jobs
    from tests.integration.conftest import purge_queue
    purge_queue(runtime)
    orphan = new_job()
    runtime.jobs.create_job(orphan)  # as if the submitter died before sending its message
    first = recover_stuck_jobs(runtime.jobs, runtime.queue, older_than_seconds=-1, max_attempts=3)
    assert orphan.job_id in first.requeued
    again = recover_stuck_jobs(runtime.jobs, runtime.queue, older_than_seconds=60, max_attempts=3)
    assert orphan.job_id not in again.requeued  # touched: not re-sent on every pass
    bodies = [m["Body"] for m in runtime.sqs.receive_message(QueueUrl=runtime.settings.queue_url,
                                                             MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]]
    assert sum(orphan.job_id in body for body in bodies) == 1
    purge_queue(runtime)
