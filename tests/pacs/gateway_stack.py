"""The local stack, the DICOM gateway and a real Orthanc wired to each other on loopback (tests, bench and demo)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from cxr_local.processes import free_port
from cxr_local.waiting import wait_until
from tests.pacs.gateway_process import START_TIMEOUT_S
from tests.pacs.orthanc import ORTHANC_AE, Modality, Orthanc, StowServer

REPO = Path(__file__).resolve().parents[2]
GATEWAY_MODALITY = "cxr"  # Orthanc's name for the gateway (DicomModalities and DicomWeb.Servers)


@dataclass
class StackGateway:
    """The gateway `python -m cxr_local --gateway` started, as its ready file describes it; restart() starts it
    again from its own config and store, as a supervisor would after a crash."""
    info: dict  # the ready file's "gateway"
    log_path: Path
    process: subprocess.Popen | None = None  # set once this harness restarted it

    @property
    def ae_title(self) -> str:
        return self.info["ae_title"]

    @property
    def dicom_port(self) -> int:
        return self.info["dicom_port"]

    @property
    def url(self) -> str:
        return self.info["health_url"].rsplit("/health", 1)[0]

    @property
    def stow_url(self) -> str:
        return self.info["stow_url"]

    @property
    def stow_headers(self) -> dict[str, str]:
        return self.info["stow_headers"]

    @property
    def store_path(self) -> Path:
        return Path(self.info["store"]) / "store.sqlite3"

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else self.info["pid"]

    @property
    def api_key(self) -> str:
        """The gateway's own client key (in its 0600 config beside the store)."""
        return json.loads((Path(self.info["store"]) / "config.json").read_text())["api_key"]

    def health(self) -> dict:
        return requests.get(f"{self.url}/health", timeout=10).json()

    def metrics(self) -> dict:
        return requests.get(f"{self.url}/metrics", timeout=10).json()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (a crash, the OOM killer)."""
        import psutil

        try:
            victim = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        victim.send_signal(signal.SIGKILL)
        wait_until(lambda: not victim.is_running() or victim.status() == psutil.STATUS_ZOMBIE, 10,
                   what="the killed gateway gone")

    def restart(self, env: dict | None = None, timeout_s: float = START_TIMEOUT_S) -> "StackGateway":
        store = Path(self.info["store"])
        ready = store / "ready.json"
        ready.unlink(missing_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes to it for its whole life
        self.process = subprocess.Popen([sys.executable, "-m", "cxr_gateway", "--config", str(store / "config.json")],
                                        cwd=REPO, env={**os.environ, **(env or {})}, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_until(lambda: ready.exists() or self.process.poll() is not None, timeout_s,
                   what="the restarted gateway's ready file")
        if self.process.poll() is not None:
            raise RuntimeError(f"the restarted gateway exited with {self.process.returncode}")
        self.info.update({key: value for key, value in json.loads(ready.read_text()).items()
                          if key in ("dicom_port", "health_url", "pid")})
        return self

    def stop(self) -> None:
        """Stops the gateway this harness restarted (the stack stops its own)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class PacsStack:
    stack: object  # cxr_local.launcher.StackProcess
    gateway: StackGateway
    orthanc: Orthanc

    def stop(self) -> int | None:
        self.orthanc.stop()
        self.gateway.stop()
        return self.stack.stop()


def orthanc_for(workdir: Path, gateway, http_port: int, dicom_port: int) -> Orthanc:
    """Orthanc that knows the gateway as a DICOM modality (C-STORE both ways) and as a STOW-RS server."""
    return Orthanc(workdir, http_port=http_port, dicom_port=dicom_port,
                   modalities={GATEWAY_MODALITY: Modality(gateway.ae_title, "127.0.0.1", gateway.dicom_port)},
                   stow_servers={GATEWAY_MODALITY: StowServer(gateway.stow_url.rsplit("/studies", 1)[0],
                                                              gateway.stow_headers)})


def start_pacs_stack(workdir: Path, *, allow_stand_in: bool, destination: str = "cstore",
                     gateway_env: dict | None = None, stack_args: tuple[str, ...] = (), workers: int = 1
                     ) -> PacsStack:
    """`python -m cxr_local --gateway ...` (the e2e launcher) sending SRs to a fresh Orthanc by C-STORE ("cstore")
    or STOW-RS ("stow"), and that Orthanc, configured from the stack's ready file."""
    from tests.e2e.conftest import start_stack

    orthanc_http, orthanc_dicom = free_port(), free_port()
    target = (f"{ORTHANC_AE}@127.0.0.1:{orthanc_dicom}" if destination == "cstore"
              else f"http://127.0.0.1:{orthanc_http}/dicom-web/studies")
    args = ["--gateway", "--gateway-destination", target, "--gateway-allow", ORTHANC_AE,
            "--gateway-dicom-port", str(free_port()), "--gateway-http-port", str(free_port()),
            "--gateway-store", str(workdir / "gateway-store"),
            *(["--gateway-allow-stand-in"] if allow_stand_in else []),
            *[arg for key, value in (gateway_env or {}).items() for arg in ("--env", f"{key}={value}")], *stack_args]
    stack = start_stack(workdir / "stack", *args, workers=workers)
    gateway = StackGateway(stack.info["gateway"], workdir / "stack" / "gateway.log")
    orthanc = orthanc_for(workdir / "orthanc", gateway, orthanc_http, orthanc_dicom)
    try:
        orthanc.start()
    except Exception:
        stack.stop()
        raise
    return PacsStack(stack, gateway, orthanc)
