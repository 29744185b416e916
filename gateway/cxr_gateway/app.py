"""The gateway process: the store, the DICOM and HTTP listeners, and the loop that advances due items."""
from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .config import GatewayConfig
from .delivery import make_sender
from .pipeline import Metrics, Pipeline
from .receiving import Receiver
from .scp import StorageScp
from .store import READY, RECEIVED, SUBMITTED, Store, load_or_create_key
from .stow import HttpServer

LOG = logging.getLogger("cxr_gateway")
SWEEP_EVERY_S = 60.0
IDLE_WAIT_S = 0.5
WORK, POLL = "work", "poll"
LANES = {WORK: (RECEIVED, READY), POLL: (SUBMITTED,)}  # upload and deliver | long-poll the service's job


def server_ssl_context(config: GatewayConfig) -> ssl.SSLContext | None:
    if not config.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    if config.tls_ca:
        context.load_verify_locations(config.tls_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def destination_ssl_context(config: GatewayConfig) -> ssl.SSLContext | None:
    """TLS for C-STORE to the destination: its certificate verified (against destination_tls_ca, else the system's
    CAs) and its host name checked; the gateway presents tls_cert where it has one (a destination may require it)."""
    if not (config.destination_tls or config.destination_tls_ca):
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=config.destination_tls_ca)
    if config.tls_cert:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


def api_client(config: GatewayConfig):
    from cxr_cli.api import Client  # the same client `cxr` uses: inline or presigned upload by size, retries

    client = Client(config.api_url, config.api_key)
    client.session.headers["User-Agent"] = "cxr-gateway/0.1"
    return client


class Gateway:
    def __init__(self, config: GatewayConfig, client=None, sender=None, clock=time.time) -> None:
        config.validate()
        self.config = config
        self.allowed_networks = config.networks()
        self.stow_tokens = list(config.stow_tokens)
        key = load_or_create_key(config.store_path, config.store_key)
        self.store = Store(config.store_path, key, ttl_s=config.store_ttl_hours * 3600, clock=clock)
        self.metrics = Metrics()
        self.destination = config.parsed_destination()
        self.sender = sender if sender is not None else make_sender(self.destination, config.ae_title,
                                                                    destination_ssl_context(config))
        self.pipeline = Pipeline(self.store, client if client is not None else api_client(config), self.sender,
                                 self.metrics, config.allow_stand_in, config.retry_base_s, config.retry_max_s,
                                 heatmaps=config.send_heatmaps)
        self._wake = threading.Event()
        self.receiver = Receiver(self.store, self.metrics, on_accepted=self._wake.set)
        self._stop = threading.Event()
        self._in_flight: dict[str, set[str]] = {lane: set() for lane in LANES}
        self._in_flight_lock = threading.Lock()
        # long polls wait on the service: they get threads of their own, so uploads and deliveries never queue
        # behind them
        self._capacity = {WORK: max(1, config.workers), POLL: max(1, config.poll_workers)}
        self._pools = {lane: ThreadPoolExecutor(size, thread_name_prefix=f"gateway-{lane}")
                       for lane, size in self._capacity.items()}
        self.scp: StorageScp | None = None
        self.http: HttpServer | None = None
        self.dicom_port = self.http_port = None
        self.started_at = time.time()

    # ---- the loop ---------------------------------------------------------------------------
    def run_due_once(self) -> int:
        """Hand every due item not already in hand to its lane's pool; the number handed over."""
        handed = 0
        for lane, states in LANES.items():
            with self._in_flight_lock:
                busy = set(self._in_flight[lane])
            free = self._capacity[lane] - len(busy)
            if free <= 0:
                continue
            for item in self.store.due(free, exclude=busy, states=states):
                with self._in_flight_lock:
                    self._in_flight[lane].add(item.key)
                self._pools[lane].submit(self._step, lane, item)
                handed += 1
        return handed

    def _step(self, lane: str, item) -> None:
        try:
            self.pipeline.step(item)
        finally:
            with self._in_flight_lock:
                self._in_flight[lane].discard(item.key)
            self._wake.set()

    def in_hand(self) -> int:
        """Items being worked on now (handed to a pool, step not finished)."""
        with self._in_flight_lock:
            return sum(len(keys) for keys in self._in_flight.values())

    def sweep(self) -> int:
        swept = self.store.sweep()
        if swept:
            LOG.warning("TTL sweep deleted %d undelivered item(s)", swept)
            self.metrics.count("swept", swept)
        return swept

    def _loop(self) -> None:
        last_sweep = 0.0
        while not self._stop.is_set():
            if time.monotonic() - last_sweep > SWEEP_EVERY_S:
                self.sweep()
                last_sweep = time.monotonic()
            self._wake.clear()
            if not self.run_due_once():
                self._wake.wait(IDLE_WAIT_S)

    # ---- views ------------------------------------------------------------------------------
    def health(self) -> dict:
        return {"status": "ok", "ae_title": self.config.ae_title, "dicom_port": self.dicom_port,
                "destination": self.destination.describe() if self.destination else None,
                "allow_stand_in": self.config.allow_stand_in, "backlog": self.store.backlog()}

    def metrics_view(self) -> dict:
        return {**self.metrics.snapshot(), "backlog": self.store.backlog(),
                "uptime_s": round(time.time() - self.started_at, 1)}

    # ---- start / stop -----------------------------------------------------------------------
    def start(self, serve_dicom: bool = True, serve_http: bool = True, process: bool = True) -> dict:
        context = server_ssl_context(self.config)
        if serve_dicom:
            self.scp = StorageScp(self.receiver, self.config.ae_title, self.config.allowed_aets,
                                  self.allowed_networks, context)
            self.dicom_port = self.scp.start(self.config.host, self.config.dicom_port)
        if serve_http:
            self.http = HttpServer(self, self.config.host, self.config.http_port, context)
            self.http.start()
            self.http_port = self.http.port
        if process:
            threading.Thread(target=self._loop, name="gateway-loop", daemon=True).start()
        info = self.ready_info()
        if self.config.ready_file:
            _write_private_json(Path(self.config.ready_file), info)
        return info

    def ready_info(self) -> dict:
        scheme = "https" if self.config.tls_cert else "http"
        base = f"{scheme}://{self.config.host}:{self.http_port}" if self.http_port else None
        return {"ae_title": self.config.ae_title, "host": self.config.host, "dicom_port": self.dicom_port,
                "http_url": base, "stow_url": f"{base}/studies" if base else None,
                "health_url": f"{base}/health" if base else None, "pid": os.getpid(),
                "destination": self.destination.describe() if self.destination else None,
                "allow_stand_in": self.config.allow_stand_in, "tls": bool(self.config.tls_cert),
                "destination_tls": bool(self.config.destination_tls or self.config.destination_tls_ca)}

    def stop(self) -> None:
        if self.config.ready_file:
            Path(self.config.ready_file).unlink(missing_ok=True)
        self._stop.set()
        self._wake.set()
        if self.scp:
            self.scp.stop()
        if self.http:
            self.http.stop()
        # uploads and deliveries in hand finish; a long poll in hand is left to end (its item is durable, and is
        # polled again after a restart)
        self._pools[POLL].shutdown(wait=False, cancel_futures=True)
        self._pools[WORK].shutdown(wait=True, cancel_futures=True)
        with self._in_flight_lock:
            polling = bool(self._in_flight[POLL])
        if not polling:
            self.store.close()  # else the process exit closes it, after the poll threads are gone


def _write_private_json(path: Path, info: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(json.dumps(info, indent=2))
    tmp.replace(path)
