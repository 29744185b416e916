"""Reading the gateway's SR back from Orthanc: highdicom's view of its findings, texts and job id."""
from __future__ import annotations

import io
import re

import pydicom

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"


def read_sr(data: bytes):
    import highdicom as hd

    return hd.sr.Comprehensive3DSR.from_dataset(pydicom.dcmread(io.BytesIO(data)))


def texts(report) -> list[str]:
    return [item.TextValue for item in report.ContentSequence if item.ValueType == "TEXT"]


def scores(report) -> dict[str, float]:
    """{finding label (the tracking identifier): score} of every measurement group."""
    found = {}
    for group in report.content.get_image_measurement_groups():
        (measurement,) = group.get_measurements()
        found[group.tracking_identifier] = float(measurement.value)
    return found


def source_uids(report) -> set[str]:
    return {image.referenced_sop_instance_uid for group in report.content.get_image_measurement_groups()
            for image in group.source_images}


def job_id(report) -> str | None:
    """The service's job id the SR names (so its scores can be checked against GET /v1/jobs/{id}/result)."""
    for text in texts(report):
        if "job" in text and (match := UUID.search(text)):
            return match.group(0)
    return None
