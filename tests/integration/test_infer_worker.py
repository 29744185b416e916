"""The EC2-mode worker as real processes against moto: kill -9, duplicates, poison, SIGTERM drain."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from cxr_core.domain import Job, JobMessage, JobStatus, Upload, iso, parse_iso, utc_now
from cxr_local.waiting import wait_until
from tests.images import perturbed_png
from tests.integration.conftest import REPO, purge_queue, python_with

pytestmark = [pytest.mark.integration, pytest.mark.slow]
COMPLETED_LINE = re.compile(r"job ([0-9a-f-]{36}) completed")
DELIVERY_LINE = re.compile(r"job ([0-9a-f-]{36}) completed \(delivery (\d+)\)")
VISIBILITY_S = 6
READY_LINE = re.compile(r" (infer-worker-\d+) \S+ \w+ worker (\d+) ready")
LATE_CLAIM_S = 1.5  # a slow fetch or a batching window between a message's receipt and its job's claim
CLAIM_LINE = re.compile(r" (infer-worker-\d+) \S+ \w+ job [0-9a-f-]{36} claimed")


@pytest.fixture
def submit(runtime):
    from cxr_core.services.submit import submit_image
    purge_queue(runtime)
    deps = runtime.submit_deps()
    seeds = iter(range(10_000 * os.getpid(), 10_000 * os.getpid() + 10_000))

    def _submit(count: int) -> list[str]:
        return [submit_image(Upload(perturbed_png(next(seeds) + int(time.time() * 1000))), deps).job.job_id
                for _ in range(count)]
    return _submit


class Worker:
    def __init__(self, stack_env: dict, log_path: Path, processes: int = 1, **settings: str):
        command, env = python_with({**stack_env, "VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_S),
                                    "INFER_BATCH_WINDOW_SECONDS": "0.2", "POWERTOOLS_METRICS_DISABLED": "true",
                                    **settings})
        self.log_path = log_path
        self.process = subprocess.Popen(command + ["-m", "cxr_worker", "--processes", str(processes)],
                                        cwd=REPO, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT)

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children()

    def completions(self) -> list[str]:
        return COMPLETED_LINE.findall(self.log_path.read_text())

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def statuses(runtime, job_ids) -> dict[str, JobStatus]:
    return {job_id: runtime.jobs.get_job(job_id).status for job_id in job_ids}


def all_final(runtime, job_ids) -> bool:
    return all(status.is_final for status in statuses(runtime, job_ids).values())


def claimer_pid(log_path: Path) -> int | None:
    """The pid of a worker process that has logged a claim (each logs its pid once ready)."""
    text = log_path.read_text()
    pids = dict(READY_LINE.findall(text))
    claimers = [pids.get(name) for name in CLAIM_LINE.findall(text)]
    return int(claimers[0]) if claimers and claimers[0] else None


def test_jobs_complete_exactly_once_when_a_worker_is_killed_mid_batch(runtime, stack_env, submit, tmp_path):
    """Two processes: when one is killed, the other takes the redelivered messages the moment they are visible."""
    job_ids = submit(12)
    worker = Worker(stack_env, tmp_path / "worker.log", processes=2, INFER_BATCH_SIZE="4")
    try:
        pid = wait_until(lambda: claimer_pid(worker.log_path), 60, 0.01)
        os.kill(pid, signal.SIGKILL)  # mid-batch: its claimed jobs keep their lease, their messages reappear later
        killed_at = utc_now()
        wait_until(lambda: all_final(runtime, job_ids), 120)
        assert set(statuses(runtime, job_ids).values()) == {JobStatus.COMPLETED}
        completions = worker.completions()
        assert sorted(c for c in completions if c in job_ids) == sorted(job_ids)  # each exactly once
        # the killed batch is done on its second delivery: retried after one visibility timeout, not two
        deliveries = dict(DELIVERY_LINE.findall(worker.log_path.read_text()))
        for job in map(runtime.jobs.get_job, job_ids):
            if job.attempts > 1:  # claimed by the killed process (on a busy host it may have finished first)
                waited = (parse_iso(job.finished_at) - killed_at).total_seconds()
                assert job.attempts == 2 and waited <= VISIBILITY_S + 30, (job.job_id, waited, job.attempts)
                assert int(deliveries[job.job_id]) == 2, (job.job_id, deliveries)
        assert wait_until(lambda: len(READY_LINE.findall(worker.log_path.read_text())) >= 3, 30)  # restarted
    finally:
        assert worker.stop() == 0


def test_duplicate_messages_for_one_job_give_one_result(runtime, stack_env, submit, tmp_path):
    [job_id] = submit(1)
    job = runtime.jobs.get_job(job_id)
    body = json.dumps(JobMessage(job.job_id, job.image_key, job.image_sha256, job.model_id).to_dict())
    for _ in range(3):
        runtime.sqs.send_message(QueueUrl=runtime.settings.queue_url, MessageBody=body)
    worker = Worker(stack_env, tmp_path / "worker.log", processes=2, INFER_BATCH_SIZE="1")
    try:
        wait_until(lambda: all_final(runtime, [job_id]), 60)
        wait_until(lambda: runtime.queue.depth()["visible"] + runtime.queue.depth()["in_flight"] == 0, 60)
        assert worker.completions().count(job_id) == 1
        assert runtime.jobs.get_job(job_id).status is JobStatus.COMPLETED
    finally:
        assert worker.stop() == 0


def _inject(runtime, label: str, image: bytes | None) -> Job:
    """A job as submit writes it, QUEUED with its message sent; image None: its object is missing from the bucket."""
    digest = __import__("hashlib").sha256(image if image is not None else os.urandom(32)).hexdigest()
    moment = iso(utc_now())
    job = Job(job_id=f"{os.urandom(4).hex()}-{label}-0000-0000-000000000000"[:36], status=JobStatus.QUEUED,
              image_sha256=digest, image_key=f"images/{digest}", model_id="densenet121-res224-all@test",
              created_at=moment, updated_at=moment)
    if image is not None:
        runtime.images.put(job.image_key, image, "image/png")
    runtime.jobs.create_job(job)
    runtime.queue.send(JobMessage(job.job_id, job.image_key, job.image_sha256, job.model_id))
    return job


def test_a_job_that_keeps_failing_is_retried_then_failed_and_dead_lettered_an_undecodable_image_fails_at_once(
        runtime, stack_env, tmp_path):
    """A failure a retry may cure (the image cannot be read) goes round MaxReceiveCount times, then FAILED + DLQ; an
    image the decoder refuses (noise after a PNG signature: what structural checks at submit would refuse, and
    stands for damage only a decode finds, issue 28) is FAILED at its first delivery with the decoder's reason."""
    purge_queue(runtime)
    missing = _inject(runtime, "gone", None)
    undecodable = _inject(runtime, "bad", b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    worker = Worker(stack_env, tmp_path / "worker.log", processes=1)
    try:
        refused = wait_until(lambda: (j := runtime.jobs.get_job(undecodable.job_id)).status is JobStatus.FAILED and j, 90)
        assert refused.attempts == 1 and refused.error.startswith("UNDECODABLE_IMAGE: "), refused.error
        failed = wait_until(lambda: (j := runtime.jobs.get_job(missing.job_id)).status is JobStatus.FAILED and j, 90)
        assert failed.error and failed.attempts == runtime.settings.max_receive_count
        wait_until(lambda: runtime.queue.depth()["dead_letter"] == 1, 60)  # the missing image's message only
    finally:
        assert worker.stop() == 0
    from cxr_core.services.ops import dead_letters
    listed = dead_letters(runtime.jobs, runtime.queue)
    assert {missing.job_id, undecodable.job_id} <= {entry["id"] for entry in listed["failed_jobs"]}


def test_sigterm_finishes_the_batch_in_hand_and_loses_nothing(runtime, stack_env, submit, tmp_path):
    job_ids = submit(10)
    worker = Worker(stack_env, tmp_path / "worker.log", processes=1, INFER_BATCH_SIZE="4")
    wait_until(lambda: any(s is JobStatus.IN_PROGRESS for s in statuses(runtime, job_ids).values()), 60, 0.02)
    assert worker.stop() == 0
    after_stop = statuses(runtime, job_ids)
    assert JobStatus.IN_PROGRESS not in after_stop.values()  # the batch in hand was finished and settled
    assert JobStatus.FAILED not in after_stop.values()
    second = Worker(stack_env, tmp_path / "worker2.log", processes=1)
    try:
        wait_until(lambda: all_final(runtime, job_ids), 120)
        assert set(statuses(runtime, job_ids).values()) == {JobStatus.COMPLETED}
        assert sorted(worker.completions() + second.completions()) == sorted(job_ids)
    finally:
        assert second.stop() == 0


class _DiesAfterClaiming:
    """A predictor whose process 'dies' (SystemExit is no Exception: the claim is neither released nor finished)."""

    def __init__(self, real):
        self.identity, self.model_id = real.identity, real.model_id

    def preprocess(self, data):
        raise SystemExit("killed")


def test_a_redelivery_at_the_end_of_the_visibility_timeout_claims_the_job(runtime, submit):
    """The first delivery claims late (a slow fetch, a batching window): its lease must still end with the message's
    visibility, so the second delivery runs the job instead of finding a live lease and waiting a whole timeout."""
    from dataclasses import replace

    from cxr_core.services.infer import process_batch
    from cxr_core.sqs_consumer import SqsBatchSource
    from tests.integration.conftest import TEST_VISIBILITY_SECONDS

    [job_id] = submit(1)
    source = SqsBatchSource(runtime.sqs, runtime.settings.queue_url, 4, 0.0, TEST_VISIBILITY_SECONDS, poll_seconds=5)
    first = source.next_batch(lambda: False)
    time.sleep(LATE_CLAIM_S)  # the scenario, not a wait: the first delivery claims this long after its receipt
    deps = runtime.infer_deps()
    with pytest.raises(SystemExit):
        process_batch(first, replace(deps, predictor=_DiesAfterClaiming(deps.predictor), predictor_for=None,
                                     lease_seconds=TEST_VISIBILITY_SECONDS))
    assert runtime.jobs.get_job(job_id).status is JobStatus.IN_PROGRESS
    second = wait_until(lambda: source.next_batch(lambda: False), 3 * TEST_VISIBILITY_SECONDS, 0)
    report = process_batch(second, replace(deps, lease_seconds=TEST_VISIBILITY_SECONDS))
    source.settle(report)
    assert second[0].receive_count == 2 and report.completed_jobs == [job_id], report
