"""A whole local stack (`python -m cxr_local`) on free ports for the session, and helpers to drive it over HTTP."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import requests

from tests.model_support import built_model_dir

REPO = Path(__file__).resolve().parents[2]
XRAYS = Path(os.environ.get("CXR_XRAYS_DIR", REPO.parent / "shared" / "data" / "xrays"))
READY_TIMEOUT_S = 300  # includes a cold model build
COMPLETION_SLA_S = float(os.environ.get("CXR_E2E_SLA_S", "60"))  # upload -> COMPLETED, incl. a worker's model load
POLL_INTERVAL_S = 0.1  # what a seed-platform client does


@dataclass
class RunningStack:
    base_url: str
    moto_endpoint: str
    info: dict
    process: subprocess.Popen
    log_path: Path
    ready_file: Path | None = None

    def aws(self, service: str):
        """A client of the stack's moto, signed with the AWS identity the stack wrote to its ready file."""
        return boto3.client(service, endpoint_url=self.moto_endpoint, region_name=self.info["aws_region"],
                            aws_access_key_id=self.info["aws_access_key_id"],
                            aws_secret_access_key=self.info["aws_secret_access_key"])

    @property
    def auth_headers(self) -> dict[str, str]:
        """The operator key the stack registered (AuthMode=api_key), else nothing."""
        return {"x-api-key": self.info["api_key"]} if self.info.get("api_key") else {}

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def start_stack(tmp_dir: Path, *extra_args: str, workers: int = 1, new_session: bool = False) -> RunningStack:
    """Run `python -m cxr_local` on free ports; return once it has written its ready file and health answers.
    new_session: in a process group of its own (that a test may signal as a whole)."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    ready_file, log_path = tmp_dir / "ready.json", tmp_dir / "stack.log"
    # the stack must not inherit an endpoint or credentials another fixture exported into this process
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "CXR_LOCAL_"))}
    command = [sys.executable, "-m", "cxr_local", "--port", "0", "--workers", str(workers),
               "--ready-file", str(ready_file), "--log-dir", str(tmp_dir), "--model-dir", built_model_dir(), *extra_args]
    log = open(log_path, "wb")  # noqa: SIM115 - the child writes to it for its whole life
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=new_session)
    log.close()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_stack(process)
            raise RuntimeError(f"local stack not ready (exit {process.returncode}):\n"
                               + log_path.read_text(errors="replace")[-4000:])
        time.sleep(0.1)
    info = json.loads(ready_file.read_text())
    stack = RunningStack(info["url"], info["moto_endpoint"], info, process, log_path, ready_file)
    health = requests.get(f"{stack.base_url}/v1/ops/health", headers=stack.auth_headers, timeout=30)
    if health.status_code != 200:
        stop_stack(process)
        raise RuntimeError(f"GET /v1/ops/health -> {health.status_code} {health.text}\n{stack.log_tail()}")
    return stack


def stop_stack(process: subprocess.Popen, grace_s: float = 60) -> int | None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return process.returncode


def _stack_fixture(tmp_path_factory):
    stack = start_stack(tmp_path_factory.mktemp("cxr_local"), workers=int(os.environ.get("CXR_E2E_WORKERS", "1")))
    yield stack
    code = stop_stack(stack.process)
    assert code == 0, f"local stack exited with {code}:\n{stack.log_tail()}"


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory) -> RunningStack:
    """One stack shared by the e2e session: do not assume an empty cache or idle workers on it."""
    yield from _stack_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def fresh_stack(tmp_path_factory) -> RunningStack:
    """A stack of the module's own, for tests whose expectations need an empty cache.

    A module opts in by overriding local_stack with it (see test_e2e_core.py), so `http` and every other
    fixture built on local_stack use it too."""
    yield from _stack_fixture(tmp_path_factory)


@pytest.fixture
def base_url(local_stack) -> str:
    return local_stack.base_url


@pytest.fixture
def http(local_stack):
    """A client of the local stack, authenticated with the operator key it registered."""
    with requests.Session() as session:
        session.headers.update(local_stack.auth_headers)
        yield session


def wait_for_terminal_status(http: requests.Session, base_url: str, job_id: str,
                             sla_s: float = COMPLETION_SLA_S) -> tuple[dict, float]:
    """Poll GET /v1/jobs/{id} every 100 ms until COMPLETED or FAILED; fail the test past sla_s."""
    started = time.monotonic()
    seen = []
    while True:
        response = http.get(f"{base_url}/v1/jobs/{job_id}", timeout=10)
        assert response.status_code == 200, (response.status_code, response.text)
        body = response.json()
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] in ("COMPLETED", "FAILED"):
            return body, time.monotonic() - started
        if time.monotonic() - started > sla_s:
            pytest.fail(f"job {job_id} not done within {sla_s}s; statuses seen: {seen}; last: {body}")
        time.sleep(POLL_INTERVAL_S)


def assert_json_error(response: requests.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("code"), str) and body["code"].isupper(), body
    if code is not None:
        assert body["code"] == code, body
    return body
