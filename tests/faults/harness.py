"""Real processes for fault tests: moto + API (`python -m cxr_local --workers 0`), the fault proxy, infer workers.

Everything the service does goes through the proxy (AWS_ENDPOINT_URL); the checks read moto directly.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from cxr_local.intrinsics import StackIdentity
from cxr_local.processes import free_port
from cxr_local.aws_backend import LOCAL_AWS_ENV
from cxr_local.template import StackTemplate
from cxr_local.waiting import wait_until
from cxr_local.launcher import StackProcess
from tests.e2e.conftest import start_stack
from tests.faults.proxy import FaultProxy, ProxyControl
from tests.model_support import built_model_dir

REPO = Path(__file__).resolve().parents[2]
VISIBILITY_S = 6  # redelivery after a lost worker shows within a test's time
STUCK_JOB_S = 12  # the recovery pass re-enqueues a QUEUED job without a message after this
COMPLETED_LINE = re.compile(r"job ([0-9a-f-]{36}) completed")
FINAL = ("COMPLETED", "FAILED")
SERVICE_ENV = {"VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_S), "STUCK_JOB_SECONDS": str(STUCK_JOB_S),
               "INFER_BATCH_WINDOW_SECONDS": "0.2", "POWERTOOLS_METRICS_DISABLED": "true"}


class Worker:
    """`python -m cxr_worker` in its own process group, logging to its own file."""

    def __init__(self, env: dict, log_path: Path, processes: int = 2) -> None:
        self.log_path = log_path
        self.process = subprocess.Popen([sys.executable, "-m", "cxr_worker", "--processes", str(processes)],
                                        cwd=REPO, env=env, stdout=log_path.open("ab"), stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def children(self) -> list[psutil.Process]:
        """The worker processes (not multiprocessing's resource tracker)."""
        try:
            found = psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return []
        workers = []
        for child in found:
            try:
                if "resource_tracker" not in " ".join(child.cmdline()):
                    workers.append(child)
            except psutil.NoSuchProcess:
                pass
        return workers

    def kill_group(self) -> None:
        """kill -9 the supervisor and its worker processes at once; return once every one is gone."""
        members = psutil.Process(self.process.pid).children(recursive=True)
        os.killpg(self.process.pid, signal.SIGKILL)
        for member in members:
            try:
                member.kill()
            except psutil.NoSuchProcess:
                pass
        self.process.wait(10)
        wait_until(lambda: all(map(_gone, members)), 10, what=lambda: f"worker processes gone: {members}")

    def stop(self, timeout: float = 60) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill_group()
        return self.process.returncode


def _gone(process: psutil.Process) -> bool:
    """Exited: no such process, or a zombie its new parent has not reaped yet."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@dataclass
class FaultStack:
    tmp: Path
    proxy: FaultProxy
    control: ProxyControl
    backend: StackProcess
    worker_env: dict
    workers: list[Worker] = field(default_factory=list)
    fronts: list[StackProcess] = field(default_factory=list)

    @property
    def moto(self) -> str:
        return self.backend.moto_endpoint

    def aws(self, service: str):
        """A client straight to moto, past the proxy: what the checks see is what is stored."""
        return self.backend.aws(service)

    @property
    def resources(self) -> dict:
        return self.backend.info["resources"]

    def start_worker(self, processes: int = 2) -> Worker:
        worker = Worker(self.worker_env, self.tmp / f"worker{len(self.workers)}.log", processes)
        self.workers.append(worker)
        return worker

    def completions(self) -> Counter:
        return Counter(job_id for worker in self.workers
                       for job_id in COMPLETED_LINE.findall(worker.log_path.read_text(errors="replace")))

    def start_front(self) -> StackProcess:
        """Another API process (cxr_local, no workers) on the same moto through the proxy: one that can be killed."""
        identity = {key: self.backend.info[key.lower()] for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        front = start_stack(self.tmp / f"front{len(self.fronts)}", "--no-build", "--env",
                            f"AWS_ENDPOINT_URL={self.proxy.url}", *_env_args(identity), workers=0)
        self.fronts.append(front)
        return front

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        for front in self.fronts:
            front.stop(grace_s=10)
        self.backend.stop(grace_s=30)
        self.proxy.shutdown()
        self.proxy.server_close()


def _env_args(extra: dict[str, str] | None = None) -> list[str]:
    local = {**SERVICE_ENV, "MODEL_DIR": built_model_dir(), **(extra or {})}
    return [arg for key, value in local.items() for arg in ("--env", f"{key}={value}")]


def start_fault_stack(tmp: Path) -> FaultStack:
    moto_port = free_port()
    proxy = FaultProxy(f"http://127.0.0.1:{moto_port}", seed=7).start()
    backend = start_stack(tmp / "backend", "--moto-port", str(moto_port), "--env", f"AWS_ENDPOINT_URL={proxy.url}",
                          *_env_args(), workers=0)
    moto = backend.moto_endpoint
    backend.aws("sqs").set_queue_attributes(
        QueueUrl=backend.info["resources"]["queues"]["JobsQueue"], Attributes={"VisibilityTimeout": str(VISIBILITY_S)})
    template = StackTemplate(REPO / "template.yaml", {"Stage": "local"},
                             StackIdentity(stack_name="cxr-local", queue_url_base=moto))
    worker_env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "CXR_LOCAL_"))}
    worker_env.update(template.function("InferFunction").environment)
    worker_env.update(LOCAL_AWS_ENV, AWS_ACCESS_KEY_ID=backend.info["aws_access_key_id"],
                      AWS_SECRET_ACCESS_KEY=backend.info["aws_secret_access_key"], AWS_ENDPOINT_URL=proxy.url,
                      MODEL_DIR=built_model_dir(),
                      PYTHONPATH=str(REPO), **SERVICE_ENV)
    return FaultStack(tmp, proxy, ProxyControl(proxy.url), backend, worker_env)
