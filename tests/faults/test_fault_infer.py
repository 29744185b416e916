"""Issue 7 faults mid-infer: S3/DynamoDB/SQS errors under real worker processes; every job ends once, none lost."""
from __future__ import annotations

import pytest
import requests

from tests.faults.checks import (Ledger, cache_table, consistency_problems, jobs_table, report, wait_final,
                                 wait_queue_settled)
from tests.faults.harness import VISIBILITY_S
from tests.images import perturbed_png

pytestmark = [pytest.mark.faults, pytest.mark.slow]

EXHAUST = 12
INFER_FAULTS = [  # first matching rule with turns left wins: order sets which fault a request meets first
    {"service": "s3", "operation": "GetObject", "fault": "500", "times": EXHAUST},
    {"service": "dynamodb", "operation": "BatchGetItem", "fault": "503", "times": 6},
    {"service": "dynamodb", "operation": "TransactWriteItems", "fault": "throttle", "times": EXHAUST},
    {"service": "dynamodb", "operation": "TransactWriteItems", "fault": "drop_after", "times": 2},
    {"service": "dynamodb", "operation": "UpdateItem", "fault": "500", "times": 6},
    {"service": "sqs", "operation": "ReceiveMessage", "fault": "drop", "times": 3},
    {"service": "sqs", "operation": "DeleteMessageBatch", "fault": "500", "times": EXHAUST},
    {"service": "sqs", "operation": "DeleteMessage", "fault": "500", "times": 6},
    {"service": "sqs", "operation": "ChangeMessageVisibilityBatch", "fault": "500", "times": 6},
]
NOISE = [{"fault": "500", "probability": 0.3}, {"fault": "drop", "probability": 0.05}]


def _upload(stack, ledger, seeds, must_succeed: bool = True) -> None:
    """Under noise an upload may fail (5xx, documented JSON): then it must leave nothing, which the checks verify."""
    with requests.Session() as session:
        for seed in seeds:
            status = ledger.post(session, stack.backend, perturbed_png(seed), f"seed {seed}")
            assert status in (200, 201) or (not must_succeed and status is not None and status >= 500), status


def test_infer_faults_finish_every_job_exactly_once(fault_stack):
    stack, ledger = fault_stack, Ledger()
    _upload(stack, ledger, range(800_000, 800_016))  # queued with no worker running yet
    stack.control.set(*INFER_FAULTS)
    worker = stack.start_worker(processes=2)
    statuses = wait_final(stack, ledger.accepted, timeout_s=50)
    pids = sorted(child.pid for child in worker.children())
    stack.control.set(*NOISE)  # a second wave under random errors on every call
    _upload(stack, ledger, range(800_100, 800_108), must_succeed=False)
    statuses = wait_final(stack, ledger.accepted, timeout_s=40)
    stack.control.clear()
    statuses = wait_final(stack, ledger.accepted, timeout_s=40)
    restarts = worker.log_path.read_text(errors="replace").count("restarting")
    row = report("infer faults", stack, ledger, statuses, {"worker process restarts": restarts,
                                                            "completion log lines": sum(stack.completions().values())})
    assert row["lost"] == 0 and row["duplicated"] == 0, statuses
    assert restarts == 0, "a worker process died of an AWS error"
    jobs = jobs_table(stack)
    assert all(jobs[job_id].get("error") for job_id, s in statuses.items() if s == "FAILED")
    assert not consistency_problems(stack)
    leftovers = wait_final(stack, jobs, timeout_s=5)  # jobs of uploads that answered 5xx after a failed cleanup
    assert all(status in ("COMPLETED", "FAILED") for status in leftovers.values()), leftovers
    # the same two worker processes that met every fault still serve: one more job completes through them
    _upload(stack, ledger, [800_200])
    assert set(wait_final(stack, ledger.accepted, timeout_s=40).values()) <= {"COMPLETED", "FAILED"}
    assert worker.process.poll() is None and sorted(child.pid for child in worker.children()) == pids
    assert worker.log_path.read_text(errors="replace").count("restarting") == 0


def test_completion_whose_answer_is_lost_still_gives_one_result(fault_stack):
    """The completing transaction lands but its answer is lost: the job is COMPLETED once, its result and cache kept.

    (Real DynamoDB replays the retry's ClientRequestToken; moto fails it on its own condition: either way one result.)"""
    stack, ledger = fault_stack, Ledger()
    _upload(stack, ledger, [810_001])
    stack.control.set({"service": "dynamodb", "operation": "TransactWriteItems", "fault": "delay", "seconds": 0,
                       "times": 1},  # the claim goes through
                      {"service": "dynamodb", "operation": "TransactWriteItems", "fault": "drop_after", "times": 1})
    stack.start_worker(processes=1)
    statuses = wait_final(stack, ledger.accepted, timeout_s=40)
    wait_queue_settled(stack, timeout_s=4 * VISIBILITY_S + 30)  # a redelivery, if any, has run by then
    row = report("completion answer lost", stack, ledger, statuses,
                 {"completion log lines": sum(stack.completions().values())})
    assert row["lost"] == 0 and row["completed"] == 1 and row["duplicated"] == 0
    [job] = [jobs_table(stack)[job_id] for job_id in ledger.accepted]
    assert job["status"] == "COMPLETED" and job["result"]
    assert not consistency_problems(stack)
    assert any(entry["state"] == "DONE" for entry in cache_table(stack))
