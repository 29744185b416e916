"""Issue 7 faults mid-submit: S3/DynamoDB/SQS errors while POST /v1/jobs runs never leave a job half-created."""
from __future__ import annotations

import time

import pytest
import requests

from tests.faults.checks import Ledger, consistency_problems, jobs_table, queued_messages, report, wait_final
from tests.faults.harness import STUCK_JOB_S
from tests.images import perturbed_png

pytestmark = [pytest.mark.faults, pytest.mark.slow]

EXHAUST = 12  # more consecutive failures than botocore's / pynamodb's retries absorb: the service itself sees it
# (label, rules): each case uploads one fresh image while its rules are active
CASES = [
    ("s3 PutObject 500", [{"service": "s3", "operation": "PutObject", "fault": "500", "times": EXHAUST}]),
    ("s3 PutObject connection drop", [{"service": "s3", "operation": "PutObject", "fault": "drop", "times": EXHAUST}]),
    ("dynamodb GetItem 503", [{"service": "dynamodb", "operation": "GetItem", "fault": "503", "times": EXHAUST}]),
    ("dynamodb TransactWriteItems 500", [{"service": "dynamodb", "operation": "TransactWriteItems", "fault": "500",
                                          "times": EXHAUST}]),
    ("dynamodb TransactWriteItems throttled", [{"service": "dynamodb", "operation": "TransactWriteItems",
                                                "fault": "throttle", "times": EXHAUST}]),
    ("sqs SendMessage 500", [{"service": "sqs", "operation": "SendMessage", "fault": "500", "times": EXHAUST}]),
    ("sqs SendMessage dropped", [{"service": "sqs", "operation": "SendMessage", "fault": "drop", "times": EXHAUST}]),
    ("sqs SendMessage throttled twice (absorbed by retries)", [{"service": "sqs", "operation": "SendMessage",
                                                                "fault": "throttle", "times": 2}]),
    ("every call 30% 500", [{"fault": "500", "probability": 0.3}]),
    ("every call 30% 500 (again)", [{"fault": "500", "probability": 0.3}]),
]


def test_submit_faults_leave_no_half_created_job(fault_stack):
    stack, ledger, seed = fault_stack, Ledger(), 700_000
    outcome = {}
    with requests.Session() as session:
        for label, rules in CASES:
            stack.control.set(*rules)
            seed += 1
            outcome[label] = ledger.post(session, stack.backend, perturbed_png(seed), label)
            stack.control.clear()
        for extra in range(4):  # and a few uploads with no fault at all
            ledger.post(session, stack.backend, perturbed_png(seed + 100 + extra), "no fault")
    codes = {label: code for label, _, code in ledger.rejected}
    print("\n[faults] submit outcomes: " + "; ".join(f"{label} -> {status} {codes.get(label, '')}".rstrip()
                                                 for label, status in outcome.items()))
    assert all(status in (200, 201, 503) for status in outcome.values()), outcome  # outages: 503, never 500

    # before any worker runs: every message names a job, every job came from an accepted upload, and an
    # accepted job lacks its message only where SendMessage failed (the recovery pass sends those)
    jobs = jobs_table(stack)
    messages = queued_messages(stack)
    assert not [job_id for job_id in messages if job_id not in jobs], "SQS message without a job"
    assert not consistency_problems(stack)
    assert set(jobs) <= set(ledger.accepted), "a rejected upload left a job behind"
    send_failed = {job_id for job_id, label in ledger.accepted.items() if "SendMessage" in label}
    without_message = {job_id for job_id, job in jobs.items() if job["status"] == "QUEUED" and job_id not in messages}
    assert without_message <= send_failed, "an accepted job has no message though its send succeeded"
    unexplained = without_message

    stack.start_worker(processes=2)
    statuses = wait_final(stack, set(jobs) | set(ledger.accepted), timeout_s=STUCK_JOB_S * 3 + 40)
    accepted_statuses = {job_id: statuses[job_id] for job_id in ledger.accepted}
    row = report("submit faults", stack, ledger, accepted_statuses,
                 {"accepted without a message (sent by the recovery pass)": len(unexplained)})
    assert row["lost"] == 0 and row["duplicated"] == 0, statuses
    assert all(status in ("COMPLETED", "FAILED") for status in statuses.values()), statuses  # orphans finish too
    assert not consistency_problems(stack)


def test_send_whose_answer_is_lost_leaves_no_message_without_a_job(fault_stack):
    """SendMessage reached SQS but its answers were lost: the job is kept (201), so every copy names it,
    and the copies complete it once."""
    stack, ledger = fault_stack, Ledger()
    stack.control.set({"service": "sqs", "operation": "SendMessage", "fault": "drop_after", "times": EXHAUST})
    with requests.Session() as session:
        status = ledger.post(session, stack.backend, perturbed_png(710_001), "send answer lost")
    stack.control.clear()
    jobs, messages = jobs_table(stack), queued_messages(stack)
    print(f"\n[faults] SendMessage answer lost: HTTP {status}, jobs {len(jobs)}, messages {len(messages)}")
    assert status == 201 and len(jobs) == 1
    assert messages and not [job_id for job_id in messages if job_id not in jobs], "SQS message without a job"
    stack.start_worker(processes=1)
    statuses = wait_final(stack, ledger.accepted, timeout_s=60)
    row = report("send answer lost", stack, ledger, statuses, {"copies of the message": len(messages)})
    assert row["lost"] == 0 and row["duplicated"] == 0 and row["completed"] == 1


def test_create_whose_answer_is_lost_still_gets_its_job_run(fault_stack):
    """TransactWriteItems committed but unheard: the retry finds its own cache claim and still sends the message.

    Real DynamoDB replays the transaction's ClientRequestToken; moto does not, so the retry meets its own write."""
    stack, ledger = fault_stack, Ledger()
    stack.control.set({"service": "dynamodb", "operation": "TransactWriteItems", "fault": "drop_after", "times": 1})
    with requests.Session() as session:
        status = ledger.post(session, stack.backend, perturbed_png(720_001), "create answer lost")
    stack.control.clear()
    jobs, messages = jobs_table(stack), queued_messages(stack)
    print(f"\n[faults] TransactWriteItems answer lost: HTTP {status}, jobs {len(jobs)}, messages {len(messages)}")
    assert status == 201 and len(jobs) == 1 and list(messages) == list(jobs)
    stack.start_worker(processes=1)
    started = time.monotonic()
    statuses = wait_final(stack, ledger.accepted, timeout_s=STUCK_JOB_S * 3 + 30)
    row = report("create answer lost", stack, ledger, statuses,
                 {"messages before workers": len(messages),
                  "seconds to COMPLETED": round(time.monotonic() - started, 1)})
    assert row["lost"] == 0 and row["completed"] == 1
