"""Issue 25 item 6: the embedded stack keeps its state across a clean restart (--fresh starts empty), and stops
itself loudly, with no zombie and no ready file left, when moto or the stack process itself is killed."""
from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
import requests

from tests.images import perturbed_png

from cxr_local.waiting import wait_until

from .conftest import start_stack, wait_for_terminal_status

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def moto_of(stack) -> psutil.Process:
    return next(child for child in psutil.Process(stack.process.pid).children(recursive=True)
                if "cxr_local.moto_server" in " ".join(child.cmdline()))


def gone(process: psutil.Process) -> bool:
    """Exited and reaped: no process, not even a zombie, under that pid."""
    try:
        process.status()
        return False
    except psutil.NoSuchProcess:
        return True


def test_jobs_and_queued_messages_survive_a_clean_restart_and_fresh_starts_empty(tmp_path):
    folder = tmp_path / "stack"
    first = start_stack(folder, workers=0)  # nothing consumes the queue: the job waits in SQS
    submitted = requests.post(f"{first.url}/v1/jobs", data=perturbed_png(2501),
                              headers={"Content-Type": "image/png", **first.auth_headers}, timeout=60)
    assert submitted.status_code == 201, submitted.text
    job_id = submitted.json()["id"]
    assert first.stop() == 0, first.log_tail()
    assert (folder / "state" / "manifest.json").is_file()

    second = start_stack(folder, workers=1)  # same folder: restored, and its worker takes the queued message
    try:
        assert "restored the state" in second.log_path.read_text()
        with requests.Session() as http:
            http.headers.update(second.auth_headers)
            status, _ = wait_for_terminal_status(http, second.url, job_id)
            assert status["status"] == "COMPLETED", status
            assert http.get(f"{second.url}/v1/jobs/{job_id}/result", timeout=30).status_code == 200
    finally:
        assert second.stop() == 0, second.log_tail()

    third = start_stack(folder, "--fresh", workers=0)
    try:
        missing = requests.get(f"{third.url}/v1/jobs/{job_id}", headers=third.auth_headers, timeout=30)
        assert missing.status_code == 404
    finally:
        assert third.stop() == 0, third.log_tail()


def test_a_killed_moto_stops_the_stack_loudly_without_a_zombie_or_ready_file(tmp_path):
    stack = start_stack(tmp_path / "stack", workers=0)
    moto = moto_of(stack)
    os.kill(moto.pid, signal.SIGKILL)
    killed = time.monotonic()
    try:
        ready = requests.get(f"{stack.url}/v1/ops/ready", headers=stack.auth_headers, timeout=10)
        assert ready.status_code != 200
    except requests.ConnectionError:
        pass  # already stopped
    code = stack.process.wait(30)
    assert time.monotonic() - killed < 15
    log = stack.log_path.read_text()
    assert code != 0 and "FATAL" in log and "moto server" in log and "lost" in log, log[-2000:]
    assert not stack.ready_file.exists() and not (stack.ready_file.parent / "env.json").exists()
    assert gone(moto)


def test_a_killed_stack_process_leaves_no_ready_file_and_says_what_was_lost(tmp_path):
    stack = start_stack(tmp_path / "stack", workers=0, new_session=True)
    moto = moto_of(stack)
    os.kill(stack.process.pid, signal.SIGKILL)
    stack.process.wait(10)
    wait_until(lambda: not stack.ready_file.exists(), 10, what="the ready file (with the stack's AWS secret) removed")
    wait_until(lambda: "died without stopping" in stack.log_path.read_text(), 10, what="the janitor's message")
    wait_until(lambda: gone(moto), 10, what="moto gone with the stack")
    try:
        os.killpg(stack.process.pid, signal.SIGKILL)  # whatever of the group is left (nothing, normally)
    except ProcessLookupError:
        pass
