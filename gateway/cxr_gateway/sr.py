"""The result as a DICOM Comprehensive 3D SR (TID 1500 measurement report), filed in the source image's study."""
from __future__ import annotations

import io
import math
import uuid

import highdicom as hd
from highdicom.sr import (AlgorithmIdentification, Comprehensive3DSR, DeviceObserverIdentifyingAttributes,
                          Measurement, MeasurementReport, MeasurementsAndQualitativeEvaluations, ObservationContext,
                          ObserverContext, QualitativeEvaluation, SourceImageForMeasurementGroup, TextContentItem,
                          TrackingIdentifier)
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes as dicom_codes

from . import codes
from .notice import RESEARCH_USE_ONLY

_UID_NAMESPACE = uuid.UUID("6b1f0c1e-3c55-5d0e-9a51-2a0f4b1e7c24")  # this gateway's name-based UUIDs
OPERATING_POINT = 0.5  # torchxrayvision's op_norm maps each label's calibrated threshold to 0.5
SR_SERIES_NUMBER = 7701
MANUFACTURER = "cxr-serverless"
STAND_IN_TEXT = ("STAND-IN WEIGHTS ({kind}): these scores do not come from torchxrayvision's published weights; "
                 "they are meaningless for any patient. NOT FOR CLINICAL USE.")


def derived_uid(*parts: str) -> str:
    """2.25.<UUID> (PS3.5 B.2) from a name-based UUID (RFC 4122 version 5): the same parts, the same UID."""
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, chr(31).join(parts)).int}"


class StandInRefused(Exception):
    """A result from weights that are not `real`, and the gateway was not started with --allow-stand-in."""


def sr_instance_uid(source_sop_instance_uid: str, model_id: str) -> str:
    """The same source image scored by the same model always gives the same SR: a re-send never duplicates."""
    return derived_uid("cxr-gateway-sr", source_sop_instance_uid, model_id)


def sr_series_uid(study_instance_uid: str, model_id: str) -> str:
    return derived_uid("cxr-gateway-series", study_instance_uid, model_id)


def finding_tracking_uid(source_sop_instance_uid: str, label: str) -> str:
    return derived_uid("cxr-gateway-finding", source_sop_instance_uid, label)


def job_text(job_id: str) -> str:
    return f"cxr-serverless job {job_id} (GET /v1/jobs/{job_id}/result)"


def model_identity(model: dict) -> str:
    """The service's own model id (weights and preprocessing decide the scores), from the result's model block."""
    from cxr_model.identity import model_id

    return model.get("model_id") or model_id(model["name"], model["weights_sha256"], model.get("preprocess", "exact"))


def _algorithm(model: dict) -> AlgorithmIdentification:
    parameters = [f"weights: {model.get('weights')}", f"weights SHA-256: {model.get('weights_sha256')}",
                  f"preprocessing: {model.get('preprocess')} (torchxrayvision pipeline)",
                  f"engine: {model.get('engine')}", f"model id: {model_identity(model)}",
                  f"operating point: {OPERATING_POINT} after op_norm calibration"]
    return AlgorithmIdentification(name=str(model.get("name")), version=str(model.get("weights_sha256"))[:64],
                                   parameters=parameters, manufacturer=MANUFACTURER)


def _thresholds(model_name: str) -> dict[str, float]:
    from cxr_model.specs import get_spec  # the service's own label list and calibration thresholds

    spec = get_spec(model_name)
    return dict(zip(spec.labels, spec.op_threshs))


def _group(label: str, score: float, calibrated: bool, source: Dataset, algorithm) -> MeasurementsAndQualitativeEvaluations:
    finding = codes.finding_concept(label)
    evaluations = None
    if calibrated:  # a label without a calibrated threshold has no operating point: no present/absent claim
        evaluations = [QualitativeEvaluation(finding, codes.PRESENT if score >= OPERATING_POINT else codes.ABSENT)]
    return MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(uid=finding_tracking_uid(str(source.SOPInstanceUID), label),
                                               identifier=label),
        finding_type=finding, algorithm_id=algorithm, finding_sites=None,
        measurements=[Measurement(name=codes.SCORE, value=float(score), unit=codes.NO_UNITS)],
        qualitative_evaluations=evaluations,
        source_images=[SourceImageForMeasurementGroup(str(source.SOPClassUID), str(source.SOPInstanceUID))])


# type 2 (present, maybe empty) in the source's IOD; highdicom reads them, and some senders leave them out
TYPE2_PATIENT_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
                       "StudyDate", "StudyTime", "ReferringPhysicianName")


def with_type2(source: Dataset) -> Dataset:
    """The source header with every type 2 patient/study attribute present (empty where the sender left it out)."""
    missing = [keyword for keyword in TYPE2_PATIENT_STUDY if keyword not in source]
    if not missing:
        return source
    completed = Dataset(source)  # a shallow copy: the received header is not changed
    for keyword in missing:
        setattr(completed, keyword, None)
    return completed


def build_sr(source: Dataset, result: dict, allow_stand_in: bool) -> Dataset:
    """The SR for one scored image (`source`: its header, `result`: GET /v1/jobs/{id}/result)."""
    source = with_type2(source)
    model = result["model"]
    kind = model.get("weights")
    if kind != "real" and not allow_stand_in:
        raise StandInRefused(f"result from {kind!r} weights: not delivered without --allow-stand-in")
    thresholds = _thresholds(model["name"])
    algorithm = _algorithm(model)
    device = DeviceObserverIdentifyingAttributes(
        uid=derived_uid("cxr-gateway-device", model_identity(model)),
        name="cxr-gateway", manufacturer_name=MANUFACTURER, model_name=str(model["name"]))
    groups = [_group(label, score, not math.isnan(thresholds.get(label, math.nan)), source, algorithm)
              for label, score in result["output"].items()]
    report = MeasurementReport(
        observation_context=ObservationContext(observer_device_context=ObserverContext(
            observer_type=dicom_codes.DCM.Device, observer_identifying_attributes=device)),
        procedure_reported=codes.CHEST, imaging_measurements=groups)
    notes = [RESEARCH_USE_ONLY]
    if result.get("job_id"):
        notes.append(job_text(result["job_id"]))
    if kind != "real":
        notes.append(STAND_IN_TEXT.format(kind=kind))
    for note in notes:
        report[0].ContentSequence.append(TextContentItem(codes.COMMENT, note, relationship_type="CONTAINS"))
    model_id = model_identity(model)
    description = ("CXR AI findings - research use only" if kind == "real"
                   else f"CXR AI - STAND-IN WEIGHTS ({kind}) - research use only")  # 64 characters at most
    sr = Comprehensive3DSR(
        evidence=[source], content=report[0], series_instance_uid=sr_series_uid(str(source.StudyInstanceUID), model_id),
        series_number=SR_SERIES_NUMBER, sop_instance_uid=sr_instance_uid(str(source.SOPInstanceUID), model_id),
        instance_number=1, manufacturer=MANUFACTURER, is_complete=True, series_description=description[:64])
    if codes.uses_private_scheme(result["output"]):
        sr.CodingSchemeIdentificationSequence = [codes.private_scheme_item()]
    return sr


def encode(sr: Dataset) -> bytes:
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def read_back(data: bytes) -> hd.sr.Comprehensive3DSR:
    """The SR as highdicom reads it (the tests and the e2e checks use this)."""
    import pydicom

    return hd.sr.Comprehensive3DSR.from_dataset(pydicom.dcmread(io.BytesIO(data)))
