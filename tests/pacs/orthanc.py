"""A real Orthanc (Debian's `orthanc` + `orthanc-dicomweb`) on loopback with a generated config, for tests and demos."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from cxr_local.processes import free_port

ORTHANC_BINARY_CANDIDATES = ("Orthanc", "/usr/sbin/Orthanc")
DICOMWEB_PLUGIN_CANDIDATES = ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so",)
START_TIMEOUT_S = 60
ORTHANC_AE = "ORTHANC"


def orthanc_binary() -> str | None:
    for candidate in ORTHANC_BINARY_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def dicomweb_plugin() -> str | None:
    """Where Debian's orthanc-dicomweb puts the plugin (`dpkg -L orthanc-dicomweb`), else what dpkg says."""
    for candidate in DICOMWEB_PLUGIN_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    try:
        listing = subprocess.run(["dpkg", "-L", "orthanc-dicomweb"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    plugins = [line for line in listing.stdout.splitlines() if "libOrthancDicomWeb.so" in line]
    return plugins[0] if plugins else None


def missing_reason() -> str | None:
    """Why Orthanc cannot run here (None when it can): `make orthanc` installs both packages."""
    if orthanc_binary() is None:
        return "Orthanc is not installed (make orthanc)"
    if dicomweb_plugin() is None:
        return "Orthanc's DICOMweb plugin is not installed (make orthanc)"
    return None


@dataclass
class Modality:
    """A DICOM peer Orthanc may send to and accept from (DicomModalities)."""
    aet: str
    host: str
    port: int


@dataclass
class StowServer:
    """A DICOMweb server Orthanc's plugin may STOW to (DicomWeb.Servers), with the headers it must send."""
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Orthanc:
    """One Orthanc process: start(), stop(), restart() with the same storage and ports, and its REST API."""
    workdir: Path
    modalities: dict[str, Modality] = field(default_factory=dict)
    stow_servers: dict[str, StowServer] = field(default_factory=dict)
    aet: str = ORTHANC_AE
    http_port: int = 0
    dicom_port: int = 0
    process: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.http_port = self.http_port or free_port()
        self.dicom_port = self.dicom_port or free_port()
        self.session = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def explorer_url(self) -> str:
        return f"{self.url}/app/explorer.html"

    @property
    def config_path(self) -> Path:
        return self.workdir / "orthanc.json"

    @property
    def log_path(self) -> Path:
        return self.workdir / "orthanc.log"

    def config(self) -> dict:
        """Loopback only, no authentication (nothing else can reach it), only known peers may store."""
        return {
            "Name": "cxr-test-pacs",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "storage"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomAlwaysAllowStore": False,  # only the modalities below may send it objects ...
            "DicomAlwaysAllowEcho": True,
            "DicomCheckModalityHost": True,  # ... and only from their host
            "DicomScuTimeout": 30,
            "HttpTimeout": 60,
            "StableAge": 2,
            "SaveJobs": False,
            "Plugins": [dicomweb_plugin()],
            "DicomModalities": {name: [peer.aet, peer.host, peer.port] for name, peer in self.modalities.items()},
            "DicomWeb": {
                "Enable": True,
                "Root": "/dicom-web/",
                # chunked request bodies, Orthanc's default, spelt out: the gateway's STOW-RS takes them
                "Servers": {name: {"Url": server.url, "HttpHeaders": server.headers, "ChunkedTransfers": True}
                            for name, server in self.stow_servers.items()},
            },
        }

    def start(self, timeout_s: float = START_TIMEOUT_S) -> "Orthanc":
        reason = missing_reason()
        if reason:
            raise RuntimeError(reason)
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes to it for its whole life
        self.process = subprocess.Popen([orthanc_binary(), str(self.config_path)], cwd=self.workdir, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if self.session.get(f"{self.url}/system", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Orthanc did not answer within {timeout_s}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, grace_s: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def restart(self) -> "Orthanc":
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # --- REST API ---
    def get(self, path: str, **kwargs):
        response = self.session.get(f"{self.url}{path}", timeout=kwargs.pop("timeout", 30), **kwargs)
        response.raise_for_status()
        return response

    def post(self, path: str, body=None, timeout: float = 120, **kwargs):
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        response = self.session.post(f"{self.url}{path}", data=data, timeout=timeout, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"POST {path} -> {response.status_code} {response.text[:500]}")
        return response

    def upload(self, dicom: bytes) -> dict:
        """POST /instances: store one DICOM file; its ids (ID, ParentStudy, ...)."""
        return self.post("/instances", dicom, headers={"Content-Type": "application/dicom"}).json()

    def store_to_modality(self, modality: str, resources: list[str], timeout: float = 300) -> dict:
        """C-STORE the resources (Orthanc ids) to a DicomModalities entry, synchronously."""
        return self.post(f"/modalities/{modality}/store",
                         {"Resources": resources, "Synchronous": True, "Timeout": int(timeout)},
                         timeout=timeout + 10).json()

    def stow_to_server(self, server: str, resources: list[str], timeout: float = 300) -> dict:
        """STOW-RS the resources to a DicomWeb.Servers entry, synchronously."""
        return self.post(f"/dicom-web/servers/{server}/stow", {"Resources": resources, "Synchronous": True},
                         timeout=timeout).json()

    def study_instances(self, study_id: str) -> list[dict]:
        return self.get(f"/studies/{study_id}/instances").json()

    def instance_file(self, instance_id: str) -> bytes:
        return self.get(f"/instances/{instance_id}/file").content

    def find_study(self, study_instance_uid: str) -> str | None:
        found = self.post("/tools/lookup", study_instance_uid).json()
        studies = [item["ID"] for item in found if item["Type"] == "Study"]
        return studies[0] if studies else None

    def echo(self, modality: str) -> bool:
        try:
            self.post(f"/modalities/{modality}/echo", {"Timeout": 10}, timeout=20)
            return True
        except RuntimeError:
            return False

    def __enter__(self) -> "Orthanc":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def env_flag_required() -> bool:
    """`make test` sets CXR_REQUIRE_ORTHANC=1: a missing Orthanc is then a failure, not a skip."""
    return os.environ.get("CXR_REQUIRE_ORTHANC") == "1"
