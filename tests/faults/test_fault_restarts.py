"""Issue 7: the API process killed and restarted, and workers killed with -9, during load: nothing lost or doubled."""
from __future__ import annotations

import threading
import time

import pytest
import requests

from cxr_local.waiting import wait_until
from tests.faults.checks import Ledger, consistency_problems, jobs_table, report, wait_final
from tests.faults.harness import STUCK_JOB_S
from tests.images import perturbed_png

pytestmark = [pytest.mark.faults, pytest.mark.slow]

UPLOADS = 30
# slow S3 a little, so an upload is mid-request when the API dies and a batch is mid-flight when a worker dies
IN_FLIGHT = [{"service": "s3", "operation": "PutObject", "fault": "delay", "seconds": 0.3, "probability": 1.0},
             {"service": "s3", "operation": "GetObject", "fault": "delay", "seconds": 0.5, "probability": 1.0}]


class PatientClient(threading.Thread):
    """Uploads images one after another; on no answer it retries the same image (a lost answer is not a no)."""

    def __init__(self, ledger: Ledger, front_holder: list, seeds: range) -> None:
        super().__init__(daemon=True)
        self.ledger, self.front_holder, self.seeds = ledger, front_holder, seeds
        self.retries = 0

    def run(self) -> None:
        with requests.Session() as session:
            for seed in self.seeds:
                data = perturbed_png(seed)
                deadline = time.monotonic() + 60
                while self.ledger.post(session, self.front_holder[0], data, f"seed {seed}") in (None, 500, 502, 503):
                    self.retries += 1
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.3)
                time.sleep(0.05)


def _wait_accepted(ledger: Ledger, count: int, timeout_s: float = 60) -> None:
    wait_until(lambda: len(ledger.accepted) >= count, timeout_s, what=f"{count} uploads accepted")


def _in_progress(stack, timeout_s: float = 15) -> int:
    """Wait until some job is IN_PROGRESS (a batch in a worker's hands); how many are."""
    return wait_until(lambda: sum(job["status"] == "IN_PROGRESS" for job in jobs_table(stack).values()), timeout_s,
                      interval_s=0.02, what="a job IN_PROGRESS")


def test_api_restart_and_worker_kill_9_under_load_lose_nothing(fault_stack):
    stack, ledger = fault_stack, Ledger()
    stack.control.set(*IN_FLIGHT)
    worker = stack.start_worker(processes=2)
    fronts = [stack.start_front()]
    client = PatientClient(ledger, fronts, range(900_000, 900_000 + UPLOADS))
    client.start()
    kills = []

    _wait_accepted(ledger, 6)
    fronts[0].process.kill()  # kill -9 the API process mid-load (its requests in flight get no answer)
    fronts[0].process.wait(10)
    kills.append("API process kill -9")
    fronts[0] = stack.start_front()  # the client keeps retrying until the new one listens

    _wait_accepted(ledger, 14)
    in_flight = [_in_progress(stack)]
    victims = worker.children()
    victims[0].kill()  # kill -9 one worker process mid-batch: its supervisor starts another
    kills.append("worker process kill -9")

    _wait_accepted(ledger, 22)
    in_flight.append(_in_progress(stack))
    worker.kill_group()  # kill -9 the supervisor and every worker process at once (returns once all are gone)
    kills.append("worker supervisor + processes kill -9")
    stack.start_worker(processes=2)

    client.join(120)
    stack.control.clear()
    assert not client.is_alive()
    jobs = jobs_table(stack)
    statuses = wait_final(stack, set(ledger.accepted) | set(jobs), timeout_s=STUCK_JOB_S * 3 + 30)
    accepted = {job_id: statuses[job_id] for job_id in ledger.accepted}
    row = report("API restart + worker kill -9", stack, ledger, accepted,
                 {"kills": len(kills), "jobs IN_PROGRESS at the worker kills": in_flight,
                  "client retries": client.retries,
                  "jobs not handed to a client (answer lost)": len(set(jobs) - set(ledger.accepted))})
    assert client.retries > 0, "the client never met the API's restart"
    assert set(ledger.accepted.values()) == {f"seed {seed}" for seed in client.seeds}, ledger.responses
    assert row["lost"] == 0 and row["duplicated"] == 0, statuses
    assert all(status in ("COMPLETED", "FAILED") for status in statuses.values()), statuses
    assert not consistency_problems(stack)
