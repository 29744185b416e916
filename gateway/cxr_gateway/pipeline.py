"""One step of an item's way: received -> submitted (de-identified upload) -> ready (SR built) -> delivered (gone)."""
from __future__ import annotations

import io
import logging
import threading
from collections import Counter

import pydicom
from cxr_cli.api import ApiError
from cxr_model.privacy import deidentify_dicom
from pydicom.uid import ExplicitVRLittleEndian

from . import sr as sr_module
from .sr_template import SrFactory
from .delivery import backoff_s
from .store import READY, RECEIVED, SUBMITTED, Item, Store, Unopenable

LOG = logging.getLogger("cxr_gateway")
LONG_POLL_S = 20
REFUSED_STATUSES = (400, 413, 415, 422)  # the service's final word on this image: skip it, never retry


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter = Counter()
        self.skipped: Counter = Counter()

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n

    def skip(self, reason: str) -> None:
        with self._lock:
            self.counts["skipped"] += 1
            self.skipped[reason.split(":")[0]] += 1

    def snapshot(self) -> dict:
        with self._lock:
            return {"counts": dict(self.counts), "skipped_by_reason": dict(self.skipped)}


def header_bytes(data: bytes) -> bytes:
    """The received instance without its pixels: what filing the result needs (patient, study, series, UIDs)."""
    header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
    header.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    header.save_as(buffer, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return buffer.getvalue()


class Pipeline:
    def __init__(self, store: Store, client, sender, metrics: Metrics, allow_stand_in: bool,
                 retry_base_s: float = 2.0, retry_max_s: float = 300.0) -> None:
        self.store, self.client, self.sender, self.metrics = store, client, sender, metrics
        self.allow_stand_in, self.retry_base_s, self.retry_max_s = allow_stand_in, retry_base_s, retry_max_s
        self.reports = SrFactory()

    def step(self, item: Item) -> None:
        """Advance one item by one state; a failure that may pass schedules a retry with backoff."""
        handler = {RECEIVED: self._submit, SUBMITTED: self._poll, READY: self._deliver}[item.state]
        try:
            handler(item)
        except Unopenable:  # logged by the store; the row waits for the TTL sweep, never retried or used
            self.metrics.count("unopenable")
        except Exception as error:  # noqa: BLE001 - anything else is transient until proven otherwise
            delay = backoff_s(item.attempts, self.retry_base_s, self.retry_max_s)
            detail = f"{type(error).__name__}: {error}"
            LOG.warning("item %s (%s): %s; retry in %.0fs", item.key[:12], item.state, detail, delay)
            self.metrics.count(f"retries_{item.state}")
            self.store.retry_later(item.key, delay, detail)

    def _submit(self, item: Item) -> None:
        try:
            submitted = self.client.submit(deidentify_dicom(item.payload), "application/dicom")
        except ApiError as error:
            if error.status in REFUSED_STATUSES:
                self._drop(item, f"the service refused the image: {error.status} {error.code}: {error}")
                return
            raise
        self.metrics.count("submitted")
        body = submitted.body
        header = header_bytes(item.payload)
        if body.get("cached") and body.get("result"):
            self._scored(item.key, header, body["result"])
        else:
            self.store.advance(item.key, SUBMITTED, header, job_id=body["id"])

    def _poll(self, item: Item) -> None:
        job = self.client.job(item.job_id, wait=LONG_POLL_S)
        status = job.get("status")
        if status == "COMPLETED":
            self._scored(item.key, item.payload, self.client.result(item.job_id))
        elif status == "FAILED":
            self.metrics.count("jobs_failed")
            self._drop(item, f"job {item.job_id} FAILED: {job.get('error')}")
        else:
            self.store.poll_again(item.key)

    def _scored(self, key: str, header: bytes, result: dict) -> None:
        source = pydicom.dcmread(io.BytesIO(header))
        try:
            report = self.reports.build(source, result, self.allow_stand_in)
        except sr_module.StandInRefused as refusal:
            self.metrics.count("withheld_stand_in")
            LOG.warning("item %s: SR withheld: %s", key[:12], refusal)
            self.store.delete(key)
            return
        self.metrics.count("scored")
        self.store.advance(key, READY, report)

    def _deliver(self, item: Item) -> None:
        if self.sender is None:
            raise RuntimeError("no destination configured")
        self.sender.send(item.payload)
        self.metrics.count("delivered")
        LOG.info("item %s: SR delivered", item.key[:12])
        self.store.delete(item.key)

    def _drop(self, item: Item, reason: str) -> None:
        LOG.warning("item %s skipped: %s", item.key[:12], reason)
        self.metrics.skip(reason)
        self.store.delete(item.key)
