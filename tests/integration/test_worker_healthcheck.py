"""The worker image's HEALTHCHECK script against the real worker supervisor: healthy on moto, unhealthy in a crash loop."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from cxr_local.processes import stop
from tests.integration.conftest import REPO, python_with

pytestmark = [pytest.mark.integration, pytest.mark.slow]
HEALTHCHECK = REPO / "infra" / "worker_healthcheck.py"


def start_worker(env: dict, processes: int) -> subprocess.Popen:
    command, full_env = python_with({**env, "POWERTOOLS_METRICS_DISABLED": "true"})
    return subprocess.Popen(command + ["-m", "functions.infer.worker", "--processes", str(processes)],
                            cwd=REPO, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def healthcheck(supervisor: subprocess.Popen, workers: int, min_age: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HEALTHCHECK), "--workers", str(workers), "--min-age", str(min_age),
                           "--supervisor-pid", str(supervisor.pid)], capture_output=True, text=True, timeout=30)


def test_running_workers_are_healthy_and_a_missing_one_is_not(stack_env):
    worker = start_worker(stack_env, processes=2)
    try:
        time.sleep(4)
        healthy = healthcheck(worker, workers=2, min_age=2)
        assert healthy.returncode == 0, healthy.stdout
        assert "2 worker processes up" in healthy.stdout
        short = healthcheck(worker, workers=3, min_age=2)
        assert short.returncode == 1 and "2 of 3" in short.stdout
    finally:
        stop(worker, grace_s=30)
    gone = healthcheck(worker, workers=2, min_age=2)
    assert gone.returncode == 1 and "no worker supervisor" in gone.stdout


def test_workers_that_keep_crashing_are_unhealthy(stack_env, tmp_path):
    worker = start_worker({**stack_env, "MODEL_DIR": str(tmp_path / "no-weights-here")}, processes=2)
    try:
        time.sleep(4)
        results = [healthcheck(worker, workers=2, min_age=3) for _ in range(3)]
        assert all(result.returncode == 1 for result in results), [r.stdout for r in results]
        assert any("younger than" in r.stdout or " of 2 worker" in r.stdout for r in results)
    finally:
        stop(worker, grace_s=30)
