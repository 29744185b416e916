"""A standalone `python -m cxr_gateway` for the tests that need a second gateway with other flags, and client keys."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import requests

from cxr_local.processes import free_port
from cxr_local.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
GATEWAY_AE = "CXR_GATEWAY"
START_TIMEOUT_S = 60


def create_client_key(ready_file: Path, client: str) -> str:
    """A client key of the stack's own (the gateway is a client of the public API, with its own identity)."""
    done = subprocess.run([sys.executable, "-m", "cxr_core.admin", "--stack", str(ready_file), "keys", "create",
                           "--client", client], cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)["api_key"]


@dataclass
class GatewayProcess:
    """`python -m cxr_gateway` with a store that outlives the process (restart() resumes it)."""
    workdir: Path
    api_url: str
    api_key: str
    destination: str
    allowed_aets: list[str]
    allow_stand_in: bool = False
    ae_title: str = GATEWAY_AE
    stow_token: str = field(default_factory=lambda: os.urandom(16).hex())
    dicom_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # e.g. CXR_GATEWAY_RETRY_MAX_S for quick redelivery
    process: subprocess.Popen | None = None
    info: dict = field(default_factory=dict)

    @property
    def store_path(self) -> Path:
        return self.workdir / "store.sqlite3"

    @property
    def log_path(self) -> Path:
        return self.workdir / "gateway.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def stow_url(self) -> str:
        return f"{self.url}/studies"

    @property
    def stow_headers(self) -> dict[str, str]:
        return {"x-api-key": self.stow_token}

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "cxr_gateway", "--api-url", self.api_url, "--ae-title", self.ae_title,
                   "--host", "127.0.0.1", "--dicom-port", str(self.dicom_port), "--http-port", str(self.http_port),
                   "--destination", self.destination, "--stow-token", self.stow_token,
                   "--store", str(self.store_path), "--ready-file", str(self.workdir / "ready.json"),
                   *[arg for aet in self.allowed_aets for arg in ("--allow", aet)], *self.extra_args]
        return command + (["--allow-stand-in"] if self.allow_stand_in else [])

    def start(self, timeout_s: float = START_TIMEOUT_S) -> "GatewayProcess":
        self.workdir.mkdir(parents=True, exist_ok=True)
        ready = self.workdir / "ready.json"
        ready.unlink(missing_ok=True)
        env = {**os.environ, **self.env, "CXR_GATEWAY_API_KEY": self.api_key}
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes to it for its whole life
        self.process = subprocess.Popen(self.command(), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        try:
            wait_until(lambda: ready.exists() or self.process.poll() is not None, timeout_s, 0.1,
                       what="the gateway's ready file")
        finally:
            if not ready.exists():
                self.stop()
        if not ready.exists():
            raise RuntimeError(f"gateway not ready (exit {self.process.returncode}):\n{self.log_tail()}")
        self.info = json.loads(ready.read_text())
        return self

    def stop(self, grace_s: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (what a crash or the OOM killer does)."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def restart(self) -> "GatewayProcess":
        self.stop()
        return self.start()

    def health(self) -> dict:
        return requests.get(f"{self.url}/health", timeout=10).json()

    def metrics(self) -> dict:
        return requests.get(f"{self.url}/metrics", timeout=10).json()

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
