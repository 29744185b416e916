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
from .delivery import backoff_s, pack, unpack
from .heatmaps import build_heatmap, top_findings
from .sr_template import SrFactory
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
                 retry_base_s: float = 2.0, retry_max_s: float = 300.0, heatmaps: int = 0) -> None:
        self.store, self.client, self.sender, self.metrics = store, client, sender, metrics
        self.allow_stand_in, self.retry_base_s, self.retry_max_s = allow_stand_in, retry_base_s, retry_max_s
        self.heatmaps = heatmaps  # overlays sent with the SR for this many top findings (0: none)
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
            self._scored(item.key, header, body["result"], body.get("id"))
        else:
            self.store.advance(item.key, SUBMITTED, header, job_id=body["id"])

    def _poll(self, item: Item) -> None:
        job = self.client.job(item.job_id, wait=LONG_POLL_S)
        status = job.get("status")
        if status == "COMPLETED":
            self._scored(item.key, item.payload, self.client.result(item.job_id), item.job_id)
        elif status == "FAILED":
            self.metrics.count("jobs_failed")
            self._drop(item, f"job {item.job_id} FAILED: {job.get('error')}")
        else:
            self.store.poll_again(item.key)

    def _scored(self, key: str, header: bytes, result: dict, job_id: str | None) -> None:
        source = pydicom.dcmread(io.BytesIO(header))
        try:
            report = self.reports.build(source, result, self.allow_stand_in)
        except sr_module.StandInRefused as refusal:
            self.metrics.count("withheld_stand_in")
            LOG.warning("item %s: SR withheld: %s", key[:12], refusal)
            self.store.delete(key)
            return
        self.metrics.count("scored")
        self.store.advance(key, READY, pack([report, *self._heatmaps(key, source, result, job_id)]))

    def _heatmaps(self, key: str, source, result: dict, job_id: str | None) -> list[bytes]:
        """Secondary Captures of the top findings' overlays (GET /v1/jobs/{id}/heatmap); one the service cannot
        give (4xx: an older deployment, no map for that finding) is left out and the SR still goes."""
        images = []
        if not self.heatmaps or not job_id:
            return images
        for rank, label in enumerate(top_findings(result, self.heatmaps), start=1):
            try:
                overlay = self.client.heatmap(job_id, label)
            except ApiError as error:
                if error.status is None or error.status >= 500 or error.status == 429:
                    raise  # the service is down or busy: the step is retried
                self.metrics.count("heatmaps_unavailable")
                LOG.warning("item %s: no heatmap for %s: %s", key[:12], label, error)
                continue
            images.append(build_heatmap(source, {**result, "job_id": job_id}, label, rank, overlay))
        self.metrics.count("heatmaps", len(images))
        return images

    def _deliver(self, item: Item) -> None:
        if self.sender is None:
            raise RuntimeError("no destination configured")
        for instance in unpack(item.payload):  # the SR, then its heatmaps; a retry re-sends the same UIDs
            self.sender.send(instance)
        self.metrics.count("delivered")
        LOG.info("item %s: SR delivered", item.key[:12])
        self.store.delete(item.key)

    def _drop(self, item: Item, reason: str) -> None:
        LOG.warning("item %s skipped: %s", item.key[:12], reason)
        self.metrics.skip(reason)
        self.store.delete(item.key)
