"""SRs at the gateway's pace: highdicom builds each model's SR once; each image's SR is that document, filled in.

Building a TID 1500 document with highdicom takes ~5 times the worker's time per image (content tree validation,
deep copies, re-parsing): a PACS routing whole studies would make the gateway the bottleneck. So highdicom builds a
template per model (placeholder image, distinct placeholder scores, every sequence of the content tree written with
undefined length so that an element may change size), and each image's values replace the placeholders' encoded
elements: patient and study modules, UIDs, evidence and acquisition equipment at the top level through pydicom;
tracking UIDs, source image, scores, present/absent and job id in the content bytes. tests/unit/test_gateway_sr.py
checks that the result equals highdicom's own build of the same image.
"""
from __future__ import annotations

import datetime
import io
import struct
import threading
from functools import lru_cache
from dataclasses import dataclass

import pydicom
from highdicom._standard_utils import get_iod_module_map, get_module_attribute_map, get_sop_class_iod_map
from highdicom.base_content import ContributingEquipment
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.valuerep import DS

from . import codes
from . import sr as sr_module

_PLACEHOLDER_CLASS = "1.2.840.10008.5.1.4.1.1.1"  # CR Image Storage
_PLACEHOLDER_INSTANCE = "2.25.271828182845904523536028747135266249775"
CONTENT_SEQUENCE = 0x0040A730
_REFERENCED_CLASS, _REFERENCED_INSTANCE = 0x00081150, 0x00081155
_TEXT_VALUE, _CODE_VALUE, _CODE_MEANING = 0x0040A160, 0x00080100, 0x00080104
_NUMERIC_VALUE, _FLOATING_POINT_VALUE, _UID = 0x0040A30A, 0x0040A161, 0x0040A124
_TEMPLATE_JOB = "template-job-id-0123456789"


@lru_cache(maxsize=64)
def patient_and_study_keywords(sop_class_uid: str) -> tuple[str, ...]:
    """The root attributes highdicom copies from a source of this SOP class (its Patient and Study modules)."""
    iod = get_sop_class_iod_map()[sop_class_uid]
    attributes = get_module_attribute_map()
    return tuple(str(item["keyword"]) for module in get_iod_module_map()[iod] if module["ie"] in ("Patient", "Study")
                 for item in attributes[module["key"]] if len(item["path"]) == 0)


_PADDING = {"UI": b"\0", "FD": b""}
_LONG_VRS = ("UT", "OB", "OW", "SQ", "UN", "UC", "UR")


def _encoded(tag: int, vr: str, value) -> bytes:
    """One element as explicit VR little endian bytes (tag, VR, length, value), as pydicom writes it."""
    raw = struct.pack("<d", value) if vr == "FD" else str(value).encode("ascii")
    if len(raw) % 2:
        raw += _PADDING.get(vr, b" ")
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode()
    length = struct.pack("<HI", 0, len(raw)) if vr in _LONG_VRS else struct.pack("<H", len(raw))
    return head + length + raw


def _placeholder_scores(labels) -> dict[str, float]:
    """Distinct per label (so each encoded score is unique) and all below the operating point (all Absent)."""
    return {label: round(0.001 * (index + 1) + 0.000123457, 9) for index, label in enumerate(labels)}


def _undefined_lengths(element: DataElement) -> None:
    element.is_undefined_length = True
    for item in element.value:
        item.is_undefined_length_sequence_item = True
        for child in item:
            if child.VR == "SQ":
                _undefined_lengths(child)


@dataclass(frozen=True)
class _Template:
    document: bytes  # the SR without its content sequence
    content: bytes  # the content sequence element, every nested length undefined
    tracking: dict[str, bytes]  # label -> its tracking UID element
    scores: dict[str, float]  # label -> placeholder score


def _score_elements(score: float) -> tuple[bytes, bytes]:
    return _encoded(_NUMERIC_VALUE, "DS", DS(score, auto_format=True)), _encoded(_FLOATING_POINT_VALUE, "FD", score)


class SrFactory:
    def __init__(self) -> None:
        self._templates: dict[tuple, _Template] = {}
        self._lock = threading.Lock()

    def build(self, source: Dataset, result: dict, allow_stand_in: bool) -> bytes:
        """The encoded SR for one scored image, equal to sr.build_sr's (apart from creation times)."""
        model = result["model"]
        if model.get("weights") != "real" and not allow_stand_in:
            raise sr_module.StandInRefused(
                f"result from {model.get('weights')!r} weights: not delivered without --allow-stand-in")
        key = (sr_module.model_identity(model), model.get("weights"), tuple(result["output"]),
               bool(result.get("job_id")))
        with self._lock:
            template = self._templates.get(key)
        if template is None:
            template = _make_template(result)
            with self._lock:
                self._templates[key] = template
        return _fill(template, sr_module.with_type2(source), result)


def _make_template(result: dict) -> _Template:
    source = sr_module.with_type2(Dataset())
    source.SOPClassUID, source.SOPInstanceUID = _PLACEHOLDER_CLASS, _PLACEHOLDER_INSTANCE
    source.StudyInstanceUID, source.SeriesInstanceUID = "2.25.2", "2.25.3"
    scores = _placeholder_scores(result["output"])
    placeholder = {**result, "output": scores, "job_id": _TEMPLATE_JOB if result.get("job_id") else None}
    document = sr_module.build_sr(source, placeholder, allow_stand_in=True)
    if max(document.keys()) != CONTENT_SEQUENCE:
        raise ValueError("the content sequence is not the SR's last element")  # the splice below relies on it
    content = document[CONTENT_SEQUENCE]
    del document[CONTENT_SEQUENCE]
    _undefined_lengths(content)
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_data_element(fp, content)
    tracking = {label: _encoded(_UID, "UI", sr_module.finding_tracking_uid(_PLACEHOLDER_INSTANCE, label))
                for label in scores}
    return _Template(sr_module.encode(document), fp.getvalue(), tracking, scores)


def _fill(template: _Template, source: Dataset, result: dict) -> bytes:
    report = pydicom.dcmread(io.BytesIO(template.document))
    model_id = sr_module.model_identity(result["model"])
    for keyword in patient_and_study_keywords(_PLACEHOLDER_CLASS):
        if keyword in report:
            del report[keyword]
    for keyword in patient_and_study_keywords(str(source.SOPClassUID)):
        if keyword in source:
            report.add(source[keyword])
    if "SpecificCharacterSet" in source:
        report.SpecificCharacterSet = source.SpecificCharacterSet
    elif "SpecificCharacterSet" in report:
        del report.SpecificCharacterSet
    instance_uid = sr_module.sr_instance_uid(str(source.SOPInstanceUID), model_id)
    report.SOPInstanceUID = report.file_meta.MediaStorageSOPInstanceUID = instance_uid
    report.SeriesInstanceUID = sr_module.sr_series_uid(str(source.StudyInstanceUID), model_id)
    now = datetime.datetime.now()
    report.InstanceCreationDate = report.ContentDate = now.strftime("%Y%m%d")
    report.InstanceCreationTime = report.ContentTime = now.strftime("%H%M%S.%f")
    software = report.ContributingEquipmentSequence[-1]
    try:
        report.ContributingEquipmentSequence = [ContributingEquipment.for_image_acquisition(source), software]
    except Exception:  # noqa: BLE001 - as highdicom: a source without equipment attributes contributes none
        report.ContributingEquipmentSequence = [software]
    evidence = report.CurrentRequestedProcedureEvidenceSequence[0]
    evidence.StudyInstanceUID = source.StudyInstanceUID
    series = evidence.ReferencedSeriesSequence[0]
    series.SeriesInstanceUID = source.SeriesInstanceUID
    series.ReferencedSOPSequence[0].ReferencedSOPClassUID = source.SOPClassUID
    series.ReferencedSOPSequence[0].ReferencedSOPInstanceUID = source.SOPInstanceUID
    buffer = io.BytesIO()
    report.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue() + _fill_content(template, source, result)


def _replace_once(data: bytes, old: bytes, new: bytes, start: int = 0, end: int | None = None) -> bytes:
    at = data.find(old, start, len(data) if end is None else end)
    if at < 0 or data.find(old, at + 1, len(data) if end is None else end) >= 0:
        raise ValueError("an SR template placeholder is missing or not unique")
    return data[:at] + new + data[at + len(old):]


def _fill_content(template: _Template, source: Dataset, result: dict) -> bytes:
    content = template.content
    content = content.replace(_encoded(_REFERENCED_INSTANCE, "UI", _PLACEHOLDER_INSTANCE),
                              _encoded(_REFERENCED_INSTANCE, "UI", str(source.SOPInstanceUID)))
    content = content.replace(_encoded(_REFERENCED_CLASS, "UI", _PLACEHOLDER_CLASS),
                              _encoded(_REFERENCED_CLASS, "UI", str(source.SOPClassUID)))
    if result.get("job_id"):
        content = _replace_once(content, _encoded(_TEXT_VALUE, "UT", sr_module.job_text(_TEMPLATE_JOB)),
                                _encoded(_TEXT_VALUE, "UT", sr_module.job_text(result["job_id"])))
    absent = (_encoded(_CODE_VALUE, "SH", codes.ABSENT.value), _encoded(_CODE_MEANING, "LO", codes.ABSENT.meaning))
    present = (_encoded(_CODE_VALUE, "SH", codes.PRESENT.value), _encoded(_CODE_MEANING, "LO", codes.PRESENT.meaning))
    for label, placeholder in template.scores.items():
        score = float(result["output"][label])
        for old, new in zip(_score_elements(placeholder), _score_elements(score)):
            content = _replace_once(content, old, new)
        new_uid = _encoded(_UID, "UI", sr_module.finding_tracking_uid(str(source.SOPInstanceUID), label))
        content = _replace_once(content, template.tracking[label], new_uid)
        if score >= sr_module.OPERATING_POINT:  # this group's evaluation: the first Absent after its own score
            at = content.find(_score_elements(score)[1], content.find(new_uid))
            for old, new in zip(absent, present):
                content = _replace_once(content, old, new, at, content.find(old, at) + len(old))
    return content
