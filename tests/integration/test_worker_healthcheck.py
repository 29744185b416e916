"""The worker image's HEALTHCHECK script against the real worker supervisor: healthy on moto, unhealthy in a crash loop."""
from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from cxr_local.processes import stop
from cxr_local.waiting import wait_until
from tests.integration.conftest import REPO, python_with

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def start_worker(env: dict, processes: int) -> subprocess.Popen:
    command, full_env = python_with({**env, "POWERTOOLS_METRICS_DISABLED": "true"})
    return subprocess.Popen(command + ["-m", "cxr_worker", "--processes", str(processes)],
                            cwd=REPO, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def worker_pids(supervisor: subprocess.Popen) -> set[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    pids = set()
    for child in psutil.Process(supervisor.pid).children():
        try:
            if "resource_tracker" not in " ".join(child.cmdline()):
                pids.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return pids


def healthcheck(supervisor: subprocess.Popen, workers: int, min_age: float, env: dict | None = None
                ) -> subprocess.CompletedProcess:
    """The image's HEALTHCHECK command, in the worker's environment (as the container gives it)."""
    _, full_env = python_with(env or {})
    return subprocess.run([sys.executable, "-m", "cxr_worker.healthcheck", "--workers", str(workers), "--min-age", str(min_age),
                           "--supervisor-pid", str(supervisor.pid)], capture_output=True, text=True, timeout=30,
                          env=full_env)


def test_running_workers_are_healthy_and_a_missing_one_is_not(stack_env):
    worker = start_worker(stack_env, processes=2)
    try:
        checks = []

        def healthy_check():  # as the container's HEALTHCHECK retries: healthy once both are up past min_age
            checks.append(healthcheck(worker, workers=2, min_age=2, env=stack_env))
            return checks[-1] if checks[-1].returncode == 0 else None

        healthy = wait_until(healthy_check, 90, interval_s=0.2, what=lambda: f"healthy; last: {checks[-1].stdout}")
        assert "2 worker processes up" in healthy.stdout and "ready (" in healthy.stdout
        queue_gone = healthcheck(worker, workers=2, min_age=2,
                                 env={**stack_env, "QUEUE_URL": stack_env["QUEUE_URL"] + "-gone"})
        assert queue_gone.returncode == 1 and "not ready: queue:" in queue_gone.stdout, queue_gone.stdout
        short = healthcheck(worker, workers=3, min_age=2, env=stack_env)
        assert short.returncode == 1 and "2 of 3" in short.stdout
    finally:
        stop(worker, grace_s=30)
    gone = healthcheck(worker, workers=2, min_age=2, env=stack_env)
    assert gone.returncode == 1 and "no worker supervisor" in gone.stdout


def test_workers_that_keep_crashing_are_unhealthy(stack_env, tmp_path):
    env = {**stack_env, "MODEL_DIR": str(tmp_path / "no-weights-here")}
    worker = start_worker(env, processes=2)
    try:
        # proof of the crash loop first: the supervisor has replaced a worker process (a third pid appeared; on a
        # loaded machine a worker takes seconds to import, then crash)
        seen: set[int] = set()
        wait_until(lambda: seen.update(worker_pids(worker)) or len(seen) > 2, 90, interval_s=0.05,
                   what=lambda: f"a worker process replaced; pids seen {seen}")
        results = [healthcheck(worker, workers=2, min_age=3, env=env) for _ in range(3)]

        def crash_loop_named() -> bool:  # a check that names the young or missing processes
            if any("younger than" in r.stdout or " of 2 worker" in r.stdout for r in results):
                return True
            results.append(healthcheck(worker, workers=2, min_age=3, env=env))
            return False

        wait_until(crash_loop_named, 60, interval_s=0, what=lambda: [r.stdout for r in results])
        assert all(result.returncode == 1 for result in results), [r.stdout for r in results]
    finally:
        stop(worker, grace_s=30)


def test_readiness_in_process_names_each_broken_dependency(runtime, tmp_path):
    """The function the healthcheck runs (the same as GET /v1/ops/ready): ready on moto; a missing bucket, table,
    or model artifact each make it unready, named."""
    from dataclasses import replace

    from cxr_core.bootstrap import Runtime
    from cxr_core.records import JobRecord
    from cxr_worker.healthcheck import check_ready

    ready, reason = check_ready(runtime)
    assert ready, reason
    assert reason == "ready (jobs_table, results_table, images_bucket, queue, model)"
    no_bucket = Runtime(replace(runtime.settings, images_bucket="cxr-no-such-bucket"))
    no_bucket.model_identity  # what it served before its artifacts went away
    ready, reason = check_ready(no_bucket)
    assert not ready and "images_bucket:" in reason and "queue:" not in reason
    moved = Runtime(replace(runtime.settings, model_dir=str(tmp_path)))
    moved.__dict__["model_identity"] = runtime.model_identity
    ready, reason = check_ready(moved)
    assert not ready and "model: FileNotFoundError" in reason, reason
    original = JobRecord.Meta.table_name
    JobRecord.Meta.table_name = "cxr-no-such-table"
    try:
        ready, reason = check_ready(runtime)
    finally:
        JobRecord.Meta.table_name = original
        JobRecord._connection = None
    assert not ready and "jobs_table:" in reason and "results_table" not in reason, reason
