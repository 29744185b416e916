"""The embedded local stack (`python -m cxr_local`) as a child process on free ports: what tests and benches start."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .processes import stop
from .waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 300  # includes a cold model build
_WORKER_READY = re.compile(r"worker (\d+) ready")


@dataclass
class StackProcess:
    """A running `python -m cxr_local`: its ready file's contents, its logs (all under log_dir) and its processes."""
    process: subprocess.Popen
    info: dict
    log_dir: Path
    start_s: float  # wall seconds from launch until the stack was ready

    @property
    def url(self) -> str:
        return self.info["url"]

    @property
    def moto_endpoint(self) -> str:
        return self.info["moto_endpoint"]

    @property
    def ready_file(self) -> Path:
        return self.log_dir / "ready.json"

    @property
    def log_path(self) -> Path:
        return self.log_dir / "stack.log"

    @property
    def worker_log(self) -> Path:
        return self.log_dir / "worker.log"

    @property
    def auth_headers(self) -> dict[str, str]:
        """The operator key the stack registered (AuthMode=api_key), else nothing."""
        return {"x-api-key": self.info["api_key"]} if self.info.get("api_key") else {}

    def aws(self, service: str):
        """A client of the stack's moto, signed with the AWS identity the stack wrote to its ready file."""
        import boto3

        from .sam_env import stack_credentials

        key, secret = stack_credentials(self.info)
        return boto3.client(service, endpoint_url=self.moto_endpoint, region_name=self.info["aws_region"],
                            aws_access_key_id=key, aws_secret_access_key=secret)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def pids(self, split_functions: bool = False) -> dict[str, list[int]]:
        """Process ids by role: api (cxr_local's HTTP server and its function environments), moto, worker.
        split_functions: api is the HTTP server alone (API Gateway's part on AWS) and functions its Lambda
        execution environments (the functions' own CPU)."""
        import psutil

        root = psutil.Process(self.process.pid)
        found: dict[str, list[int]] = {"api": [root.pid], "moto": [], "worker": []}
        if split_functions:
            found["functions"] = []
        for child in root.children():
            try:
                line = " ".join(child.cmdline())
                family = [child.pid] + [p.pid for p in child.children(recursive=True)]
            except psutil.NoSuchProcess:  # a function environment that timed out and was replaced
                continue
            if "moto" in line:
                found["moto"].append(child.pid)
            elif "-m cxr_worker" in line:
                found["worker"] += family
            else:
                found["functions" if split_functions else "api"] += family
        return found

    def stop(self, grace_s: float = 60) -> int | None:
        """SIGTERM (the stack stops in order), SIGKILL past grace_s; the exit code."""
        return stop(self.process, grace_s)

    def __enter__(self) -> "StackProcess":
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()


def launch_stack(log_dir: Path, *args: str, workers: int = 1, env: dict[str, str] | None = None,
                 params: dict[str, str] | None = None, wait_for_workers: bool = False, new_session: bool = False,
                 script: str | None = None, cwd: Path = REPO, ready_timeout_s: float = READY_TIMEOUT_S) -> StackProcess:
    """Start `python -m cxr_local --port 0` with its ready file and logs in log_dir; return once it is ready and
    /v1/ops/health answers 200.

    env: --env KEY=VALUE for the handlers and workers; params: --param Name=Value template overrides; args: any
    other flags. wait_for_workers: also wait until every EC2 worker process (InferPath=ec2) loaded the model.
    new_session: a process group of its own (that a test may signal as a whole). script: a file to run in place of
    `-m cxr_local` with the same flags (a scratch copy with a prototype fix, measured side by side).
    The child never inherits an AWS endpoint or credentials (AWS_*) nor stack options (CXR_LOCAL_*) of this process.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    ready_file, log_path = log_dir / "ready.json", log_dir / "stack.log"
    ready_file.unlink(missing_ok=True)
    entry = [str(Path(script).resolve())] if script else ["-m", "cxr_local"]
    command = [sys.executable, *entry, "--port", "0", "--workers", str(workers), "--ready-file", str(ready_file),
               "--log-dir", str(log_dir)]
    command += [flag for key, value in (env or {}).items() for flag in ("--env", f"{key}={value}")]
    command += [flag for key, value in (params or {}).items() for flag in ("--param", f"{key}={value}")]
    child_env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "CXR_LOCAL_"))}
    began = time.monotonic()
    with open(log_path, "ab") as log:  # the child keeps its own handle for its whole life
        process = subprocess.Popen([*command, *args], cwd=cwd, env=child_env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=new_session)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"local stack exited with {process.returncode} before it was ready:\n"
                               + log_path.read_text(errors="replace")[-4000:])
        return ready_file.exists() and (not wait_for_workers or _workers_ready(log_dir / "worker.log") >= workers)

    try:
        wait_until(ready, ready_timeout_s, interval_s=0.05,
                   what=lambda: "local stack ready:\n" + log_path.read_text(errors="replace")[-4000:])
        info = json.loads(ready_file.read_text())
        stack = StackProcess(process, info, log_dir, time.monotonic() - began)
        request = urllib.request.Request(f"{stack.url}/v1/ops/health", headers=stack.auth_headers)
        with urllib.request.urlopen(request, timeout=30) as health:  # an error status raises HTTPError
            health.read()
    except BaseException:
        stop(process, grace_s=30)
        raise
    return stack


def _workers_ready(worker_log: Path) -> int:
    if not worker_log.exists():
        return 0
    return len(set(_WORKER_READY.findall(worker_log.read_text(errors="replace"))))
