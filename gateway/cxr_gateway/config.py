"""The gateway's settings: a JSON or TOML file, then CXR_GATEWAY_* environment variables, then the command line."""
from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

ENV_PREFIX = "CXR_GATEWAY_"
_AE_DESTINATION = re.compile(r"^(?P<ae>[^@]{1,16})@(?P<host>\[[^\]]+\]|[^:]+):(?P<port>\d+)$")


@dataclass(frozen=True)
class Destination:
    """Where SRs go: C-STORE to an AE (ae_title, host, port) or STOW-RS to a DICOMweb URL (with headers)."""
    ae_title: str | None = None
    host: str | None = None
    port: int | None = None
    url: str | None = None
    headers: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, headers: dict | None = None) -> "Destination":
        """`AE_TITLE@HOST:PORT` (C-STORE) or `http(s)://...` (STOW-RS: the studies resource URL)."""
        text = text.strip()
        if text.lower().startswith(("http://", "https://")):
            return cls(url=text.rstrip("/"), headers=dict(headers or {}))
        match = _AE_DESTINATION.match(text)
        if not match:
            raise ValueError(f"destination {text!r}: expected AE_TITLE@HOST:PORT or an http(s) STOW-RS URL")
        return cls(ae_title=match["ae"], host=match["host"].strip("[]"), port=int(match["port"]))

    def describe(self) -> str:
        return f"STOW-RS {self.url}" if self.url else f"C-STORE {self.ae_title}@{self.host}:{self.port}"


@dataclass
class GatewayConfig:
    api_url: str = "http://127.0.0.1:8080"
    api_key: str | None = None
    ae_title: str = "CXR_GATEWAY"
    host: str = "127.0.0.1"
    dicom_port: int = 11112
    http_port: int = 8044  # STOW-RS, /health, /metrics (8042 is Orthanc's)
    allowed_aets: list[str] = field(default_factory=list)  # calling AE titles that may associate (empty: none)
    allowed_networks: list[str] = field(default_factory=list)  # source CIDRs for DICOM and STOW-RS (empty: any)
    stow_tokens: list[str] = field(default_factory=list)  # accepted as x-api-key or Authorization: Bearer
    destination: str | None = None
    destination_headers: dict = field(default_factory=dict)
    allow_stand_in: bool = False
    send_heatmaps: int = 0  # also send heatmap overlays (Secondary Capture) of this many top findings (0: off)
    store_path: str = "cxr-gateway/store.sqlite3"
    store_key: str | None = None  # AES-256-GCM key (URL-safe base64 of 32 bytes); default: a 0600 key file beside the store
    store_ttl_hours: float = 72.0
    workers: int = 4  # items uploaded or delivered at once
    poll_workers: int = 8  # jobs long-polled at once (each waits on GET /v1/jobs/{id}?wait=20)
    retry_base_s: float = 2.0
    retry_max_s: float = 300.0
    tls_cert: str | None = None  # DICOM TLS (and HTTPS for STOW-RS) when both are set
    tls_key: str | None = None
    tls_ca: str | None = None  # with it, peers must present a certificate it signed
    destination_tls: bool = False  # C-STORE of SRs over DICOM TLS (the destination's certificate is verified)
    destination_tls_ca: str | None = None  # the CA that signed the destination's certificate (default: the system's)
    ready_file: str | None = None

    def parsed_destination(self) -> Destination | None:
        return Destination.parse(self.destination, self.destination_headers) if self.destination else None

    def networks(self) -> list:
        return [ipaddress.ip_network(cidr, strict=False) for cidr in self.allowed_networks]

    def validate(self) -> None:
        if not self.allowed_aets:
            raise ValueError("no calling AE title is allowed: set allowed_aets (--allow AE_TITLE)")
        self.parsed_destination()
        self.networks()
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("DICOM TLS needs both tls_cert and tls_key")
        destination = self.parsed_destination()
        if (self.destination_tls or self.destination_tls_ca) and (destination is None or destination.url):
            raise ValueError("destination_tls is for a C-STORE destination (AE_TITLE@HOST:PORT); a STOW-RS URL "
                             "takes https://")


_LISTS = {"allowed_aets", "allowed_networks", "stow_tokens"}


def _coerce(name: str, raw: str, kind) -> object:
    if name in _LISTS:
        return [item.strip() for item in raw.split(",") if item.strip()]
    if name in ("destination_headers",):
        return json.loads(raw)
    if kind in ("bool", bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind in ("int", int):
        return int(raw)
    if kind in ("float", float):
        return float(raw)
    return raw


def load(path: str | Path | None = None, environ: dict | None = None, overrides: dict | None = None) -> GatewayConfig:
    """File (JSON, or TOML by its .toml suffix), then CXR_GATEWAY_<NAME> variables, then overrides (not None)."""
    environ = os.environ if environ is None else environ
    values: dict = {}
    if path:
        text = Path(path).read_text()
        values.update(tomllib.loads(text) if str(path).endswith(".toml") else json.loads(text))
    known = {f.name: f.type for f in fields(GatewayConfig)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown gateway setting(s) in {path}: {', '.join(sorted(unknown))}")
    for name, kind in known.items():
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = _coerce(name, raw, kind)
    values.update({key: value for key, value in (overrides or {}).items() if value is not None})
    return GatewayConfig(**values)
