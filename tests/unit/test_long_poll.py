"""GET /v1/jobs/{id}?wait=N: the wait parameter's bounds and the long poll's loop, on a fake clock."""
from __future__ import annotations

import pytest

from cxr_core.domain import Job, JobStatus, ServiceError
from cxr_core.http import status_of
from cxr_core.services.jobs import MAX_WAIT_SECONDS, parse_wait, wait_for_job
from tests.fakes import InMemoryJobStore


class FakeClock:
    def __init__(self, on_sleep=None):
        self.now, self.sleeps, self.on_sleep = 100.0, [], on_sleep

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(self)


def _store(status=JobStatus.QUEUED, client="a") -> InMemoryJobStore:
    store = InMemoryJobStore()
    store.jobs["j1"] = Job("j1", status, "h", "images/h", "m", "2026-01-01T00:00:00.000Z",
                           "2026-01-01T00:00:00.000Z", client_id=client)
    return store


@pytest.mark.parametrize("raw, expected", [(None, None), ("1", 1.0), ("0.5", 0.5), ("20", 20.0)])
def test_wait_within_bounds_is_accepted(raw, expected):
    assert parse_wait(raw) == expected


@pytest.mark.parametrize("raw", ["0", "-1", "20.5", "21", "abc", "", "nan", "inf", "1e9"])
def test_wait_outside_bounds_is_a_400(raw):
    with pytest.raises(ServiceError) as caught:
        parse_wait(raw)
    assert (status_of(caught.value), caught.value.code) == (400, "BAD_REQUEST")
    assert str(MAX_WAIT_SECONDS.__int__()) in caught.value.message


def test_a_final_job_is_answered_without_sleeping():
    clock = FakeClock()
    job = wait_for_job(_store(JobStatus.COMPLETED), "j1", "a", 20, 0.25, clock=clock, sleep=clock.sleep)
    assert job.status is JobStatus.COMPLETED and clock.sleeps == []


def test_answers_as_soon_as_the_job_finishes():
    store = _store()

    def finish_after_one_second(clock):
        if clock.now >= 101.0:
            store.jobs["j1"].status = JobStatus.FAILED

    clock = FakeClock(finish_after_one_second)
    job = wait_for_job(store, "j1", "a", 20, 0.5, clock=clock, sleep=clock.sleep)
    assert job.status is JobStatus.FAILED
    assert 101.0 <= clock.now <= 101.0 + 0.5  # seen within one read gap of finishing
    assert clock.sleeps[:3] == pytest.approx([0.1, 0.15, 0.225]) and max(clock.sleeps) == 0.5


def test_answers_with_the_current_state_when_the_wait_runs_out():
    clock = FakeClock()
    job = wait_for_job(_store(JobStatus.IN_PROGRESS), "j1", "a", 1.1, 0.25, clock=clock, sleep=clock.sleep)
    assert job.status is JobStatus.IN_PROGRESS
    assert clock.now == pytest.approx(101.1) and max(clock.sleeps) <= 0.25


def test_another_clients_job_is_404_before_any_wait():
    clock = FakeClock()
    with pytest.raises(ServiceError) as caught:
        wait_for_job(_store(client="b"), "j1", "a", 20, 0.25, clock=clock, sleep=clock.sleep)
    assert status_of(caught.value) == 404 and clock.sleeps == []
