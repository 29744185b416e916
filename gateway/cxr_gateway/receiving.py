"""What happens to an instance as it arrives (by C-STORE or STOW-RS): skipped with a reason, or spooled."""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import pydicom
from pydicom.errors import InvalidDicomError

from .pipeline import Metrics
from .rules import skip_reason
from .store import Store

LOG = logging.getLogger("cxr_gateway")
ACCEPTED, SKIPPED, FAILED = "accepted", "skipped", "failed"


@dataclass(frozen=True)
class Outcome:
    status: str  # accepted (spooled for scoring), skipped (not scored, reason says why) or failed
    reason: str | None = None
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    study_instance_uid: str | None = None


class Receiver:
    def __init__(self, store: Store, metrics: Metrics, on_accepted=lambda: None) -> None:
        self.store, self.metrics, self.on_accepted = store, metrics, on_accepted

    def receive(self, data: bytes, expected_study: str | None = None) -> Outcome:
        """Spool a frontal chest radiograph (on disk before this returns), skip anything else; never raises."""
        try:
            header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        except (InvalidDicomError, AttributeError, ValueError, EOFError, OSError) as error:
            return self._invalid(error)
        return self.receive_parsed(header, [data], expected_study)

    def _invalid(self, error: Exception) -> Outcome:
        self.metrics.count("received_invalid")
        return Outcome(FAILED, f"not a DICOM instance with SOP class and instance UIDs: {type(error).__name__}")

    def receive_parsed(self, header, parts: list, expected_study: str | None = None) -> Outcome:
        """As receive, for an instance whose header (without pixels) is already read; parts: its file's bytes, in
        pieces (the C-STORE path hands the file meta and the received dataset without joining them)."""
        try:
            sop_class, sop_instance = str(header.SOPClassUID), str(header.SOPInstanceUID)
            study = str(header.get("StudyInstanceUID", ""))
        except (AttributeError, ValueError) as error:
            return self._invalid(error)
        self.metrics.count("received")
        ids = dict(sop_class_uid=sop_class, sop_instance_uid=sop_instance, study_instance_uid=study)
        if expected_study and study != expected_study:
            return Outcome(FAILED, "StudyInstanceUID differs from the study in the request URL", **ids)
        reason = skip_reason(header)
        if reason:
            self.metrics.skip(reason)
            LOG.info("instance %s skipped: %s", self.store.row_key(sop_instance)[:12], reason)
            return Outcome(SKIPPED, reason, **ids)
        new = self.store.put_received(sop_instance, parts)
        self.metrics.count("accepted" if new else "accepted_already_in_flight")
        LOG.info("instance %s accepted%s", self.store.row_key(sop_instance)[:12], "" if new else " (already in flight)")
        self.on_accepted()
        return Outcome(ACCEPTED, None if new else "already in flight", **ids)
