"""`--gateway`: the DICOM gateway (cxr_gateway) beside the stack, a client of its API with a key of its own."""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .processes import spawn, stop

READY_TIMEOUT_S = 60


@dataclass
class GatewayOptions:
    destination: str | None = None  # AE_TITLE@HOST:PORT (C-STORE) or a STOW-RS URL
    allowed_aets: list[str] = field(default_factory=list)
    allow_stand_in: bool = False
    send_heatmaps: int = 0  # heatmap Secondary Captures of this many top findings with each SR (0: off)
    ae_title: str = "CXR_GATEWAY"
    dicom_port: int = 11112
    http_port: int = 8044
    store_dir: Path | None = None  # default <repo>/.cxr_local/gateway: outlives a restart (nothing lost)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("DICOM gateway (docs/pacs.md)")
    group.add_argument("--gateway", action="store_true", help="also start the DICOM gateway (python -m cxr_gateway)")
    group.add_argument("--gateway-destination", metavar="AE_TITLE@HOST:PORT|URL",
                       help="where result SRs go: C-STORE to an AE, or a STOW-RS URL")
    group.add_argument("--gateway-allow", action="append", default=[], metavar="AE_TITLE",
                       help="a calling AE title that may connect (repeatable; default ORTHANC)")
    group.add_argument("--gateway-allow-stand-in", action="store_true",
                       help="send SRs from stand-in weights too (marked as such in the SR)")
    group.add_argument("--gateway-send-heatmaps", type=int, nargs="?", const=3, default=0, metavar="N",
                       help="also send heatmap overlays of the N top findings (default 3) as Secondary Captures")
    group.add_argument("--gateway-ae-title", default="CXR_GATEWAY")
    group.add_argument("--gateway-dicom-port", type=int, default=11112, help="0: any free port")
    group.add_argument("--gateway-http-port", type=int, default=8044, help="STOW-RS and health; 0: any free port")
    group.add_argument("--gateway-store", type=Path, default=None,
                       help="folder of the gateway's encrypted store (default .cxr_local/gateway)")


def options_from(args: argparse.Namespace) -> GatewayOptions | None:
    if not args.gateway:
        return None
    return GatewayOptions(destination=args.gateway_destination, allowed_aets=args.gateway_allow or ["ORTHANC"],
                          allow_stand_in=args.gateway_allow_stand_in, send_heatmaps=args.gateway_send_heatmaps,
                          ae_title=args.gateway_ae_title,
                          dicom_port=args.gateway_dicom_port, http_port=args.gateway_http_port,
                          store_dir=args.gateway_store)


class GatewayProcess:
    def __init__(self, options: GatewayOptions, repo_root: Path, say) -> None:
        self.options, self.repo_root, self.say = options, repo_root, say
        self.process = None

    def start(self, api_url: str, host: str, auth_mode: str, env: dict, log=None) -> dict:
        """Mint the gateway's client key through the admin path, start it, wait for its ready file."""
        api_key = None
        if auth_mode == "api_key":
            from cxr_core.bootstrap import Runtime
            from cxr_core.config import read_settings

            api_key = Runtime(read_settings(os.environ)).api_keys.create("cxr-gateway", label="cxr_local --gateway")
        store_dir = (self.options.store_dir or self.repo_root / ".cxr_local" / "gateway").resolve()
        store_dir.mkdir(parents=True, exist_ok=True)
        ready = store_dir / "ready.json"
        ready.unlink(missing_ok=True)
        token = secrets.token_urlsafe(24)
        settings = {"api_url": api_url, "api_key": api_key, "ae_title": self.options.ae_title, "host": host,
                    "dicom_port": self.options.dicom_port, "http_port": self.options.http_port,
                    "allowed_aets": self.options.allowed_aets, "stow_tokens": [token],
                    "destination": self.options.destination, "allow_stand_in": self.options.allow_stand_in,
                    "send_heatmaps": self.options.send_heatmaps or None,
                    "store_path": str(store_dir / "store.sqlite3"), "ready_file": str(ready)}
        config = store_dir / "config.json"  # holds the keys: readable by its owner only
        config.unlink(missing_ok=True)
        with os.fdopen(os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            json.dump({key: value for key, value in settings.items() if value is not None}, handle, indent=2)
        self.process = spawn([sys.executable, "-m", "cxr_gateway", "--config", str(config)], env=env,
                             cwd=self.repo_root, log=log)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not ready.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited with code {self.process.returncode} before it was ready")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway was not ready within {READY_TIMEOUT_S}s")
            time.sleep(0.1)
        info = json.loads(ready.read_text())
        return {"ae_title": info["ae_title"], "host": info["host"], "dicom_port": info["dicom_port"],
                "stow_url": info["stow_url"], "stow_headers": {"x-api-key": token}, "health_url": info["health_url"],
                "destination": info["destination"], "allow_stand_in": info["allow_stand_in"],
                "allowed_aets": self.options.allowed_aets, "pid": self.process.pid, "store": str(store_dir)}

    def stop(self) -> None:
        stop(self.process, grace_s=10)


def announce(info: dict, say) -> None:
    say(f"DICOM gateway: AE title {info['ae_title']} at {info['host']}:{info['dicom_port']} "
        f"(calling AE titles allowed: {', '.join(info['allowed_aets'])}); STOW-RS {info['stow_url']} "
        f"(send header x-api-key: see the ready file's gateway.stow_headers)")
    say(f"  results to: {info['destination'] or 'no destination (--gateway-destination): SRs wait in its store'}"
        + ("; stand-in results ALLOWED" if info["allow_stand_in"] else ""))
