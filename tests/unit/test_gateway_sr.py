"""The SR: TID 1500 read back with highdicom, coded findings, scores, UIDs, research-use text, stand-in rules."""
import io

import highdicom as hd
from highdicom.sr.utils import find_content_items
import pydicom
import pytest
from pydicom.sr.codedict import codes as dicom_codes

from cxr_gateway import sr
from cxr_gateway.codes import PRIVATE_SCHEME
from cxr_gateway.notice import RESEARCH_USE_ONLY
from cxr_gateway.pipeline import header_bytes
from cxr_gateway.sr_template import SrFactory
from cxr_model.specs import LABELS
from tests.gateway_support import PATIENT, study

MODEL = {"name": "densenet121-res224-all", "weights": "real", "weights_sha256": "56524913dd16" + "0" * 52,
         "engine": "onnxruntime", "preprocess": "exact"}

MODEL_ID = "densenet121-res224-all@56524913dd160000/exact"  # what the service's cache key calls this model


def scores():
    return {label: round(0.03 + index * 0.0537, 7) for index, label in enumerate(LABELS)}


@pytest.fixture(scope="module")
def source():
    return pydicom.dcmread(io.BytesIO(header_bytes(study()["frontal"])))


def built(source, weights="real", allow=False):
    result = {"output": scores(), "model": {**MODEL, "weights": weights}}
    return sr.read_back(sr.encode(sr.build_sr(source, result, allow_stand_in=allow)))


def test_the_sr_is_a_tid_1500_report_in_the_source_study(source):
    report = built(source)
    assert report.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert report.StudyInstanceUID == source.StudyInstanceUID
    assert report.SeriesInstanceUID != source.SeriesInstanceUID
    assert str(report.PatientName) == PATIENT["PatientName"] and report.PatientID == PATIENT["PatientID"]
    assert report.AccessionNumber == PATIENT["AccessionNumber"]
    assert report.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    evidence = report.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID


def test_one_group_per_finding_with_code_score_evaluation_source_and_algorithm(source):
    report = built(source)
    groups = report.content.get_image_measurement_groups()
    assert len(groups) == len(LABELS)
    by_meaning = {}
    for group in groups:
        (measurement,) = group.get_measurements()
        assert measurement.name == dicom_codes.SCT.Score and measurement.unit == dicom_codes.UCUM.NoUnits
        (evaluation,) = group.get_qualitative_evaluations()
        assert evaluation.name == group.finding_type
        by_meaning[group.tracking_identifier] = (group.finding_type, measurement.value, evaluation.value)
        assert group.source_images[0].referenced_sop_instance_uid == source.SOPInstanceUID
        algorithm = {code: [item.TextValue for item in find_content_items(group[0], name=code, recursive=True)]
                     for code in (dicom_codes.DCM.AlgorithmName, dicom_codes.DCM.AlgorithmVersion,
                                  dicom_codes.DCM.AlgorithmParameters)}
        assert set(algorithm[dicom_codes.DCM.AlgorithmName]) == {MODEL["name"]}
        assert set(algorithm[dicom_codes.DCM.AlgorithmVersion]) == {MODEL["weights_sha256"]}
        assert "preprocessing: exact (torchxrayvision pipeline)" in algorithm[dicom_codes.DCM.AlgorithmParameters]
        assert "weights: real" in algorithm[dicom_codes.DCM.AlgorithmParameters]
    for label, score in scores().items():
        finding, value, evaluation = by_meaning[label]
        assert value == pytest.approx(score, abs=1e-9)
        assert evaluation == (dicom_codes.SCT.Present if score >= 0.5 else dicom_codes.SCT.Absent)
    assert by_meaning["Pneumothorax"][0] == dicom_codes.SCT.Pneumothorax
    assert by_meaning["Effusion"][0] == dicom_codes.SCT.PleuralEffusion
    assert by_meaning["Atelectasis"][0].scheme_designator == PRIVATE_SCHEME  # not in the dictionaries: private


def test_standard_codes_are_the_dictionaries_own_and_the_private_scheme_is_declared(source):
    report = built(source)
    declared = {item.CodingSchemeDesignator for item in report.CodingSchemeIdentificationSequence}
    assert PRIVATE_SCHEME in declared
    for group in report.content.get_image_measurement_groups():
        code = group.finding_type
        if code.scheme_designator in ("SCT", "DCM"):
            dictionary = getattr(dicom_codes, code.scheme_designator)
            assert any(getattr(dictionary, name).value == code.value for name in dir(dictionary)
                       if getattr(dictionary, name).meaning == code.meaning)
        else:
            assert code.scheme_designator == PRIVATE_SCHEME


def _texts(report):
    return [item.TextValue for item in report.ContentSequence if item.ValueType == "TEXT"]


def test_uids_are_deterministic_and_the_research_use_text_is_there(source):
    first, second = built(source), built(source)
    assert first.SOPInstanceUID == second.SOPInstanceUID == sr.sr_instance_uid(source.SOPInstanceUID, MODEL_ID)
    assert first.SeriesInstanceUID == second.SeriesInstanceUID
    other_model = sr.sr_instance_uid(source.SOPInstanceUID, MODEL_ID.replace("5652", "0000"))
    assert other_model != first.SOPInstanceUID
    assert RESEARCH_USE_ONLY in _texts(first)
    assert not any("STAND-IN" in text for text in _texts(first)) and "STAND-IN" not in first.SeriesDescription


@pytest.mark.parametrize("kind", ["random-init", "provided"])
def test_a_stand_in_result_is_refused_unless_allowed_and_then_says_so(source, kind):
    with pytest.raises(sr.StandInRefused):
        built(source, weights=kind)
    report = built(source, weights=kind, allow=True)
    assert any(text.startswith(f"STAND-IN WEIGHTS ({kind})") for text in _texts(report))
    assert f"STAND-IN WEIGHTS ({kind})" in report.SeriesDescription
    assert RESEARCH_USE_ONLY in _texts(report)
    assert isinstance(report, hd.sr.Comprehensive3DSR)


TIMES = {"00080012", "00080013", "00080023", "00080033", "0018A002"}  # creation/content date and time


def _without_times(value):
    if isinstance(value, dict):
        return {key: _without_times(item) for key, item in value.items() if key not in TIMES}
    if isinstance(value, list):
        return [_without_times(item) for item in value]
    return value


@pytest.mark.parametrize("weights, job_id", [("real", "job-7"), ("random-init", None)])
def test_the_filled_template_equals_highdicoms_own_build(weights, job_id):
    factory = SrFactory()
    # the second image reuses the first one's template; two findings with one score, a lower one between them
    for routed, output in ((study(), scores()),
                           (study(syntax="JPEGLSLossless"), {**scores(), "Atelectasis": 0.9, "Infiltration": 0.9})):
        source = pydicom.dcmread(io.BytesIO(header_bytes(routed["frontal"])))
        source.Manufacturer, source.StationName = "ACME", "XR-ROOM-2"  # acquisition equipment is carried over
        if job_id is None:  # a sender that leaves type 2 attributes out, and a name in UTF-8
            del source.PatientID, source.AccessionNumber
            source.SpecificCharacterSet, source.PatientName = "ISO_IR 192", "Müller^Zoë"
        result = {"output": output, "model": {**MODEL, "weights": weights}, "job_id": job_id}
        expected = pydicom.dcmread(io.BytesIO(sr.encode(sr.build_sr(source, result, allow_stand_in=True))))
        filled = pydicom.dcmread(io.BytesIO(factory.build(source, result, allow_stand_in=True)))
        assert _without_times(filled.to_json_dict()) == _without_times(expected.to_json_dict())
        assert filled.file_meta.MediaStorageSOPInstanceUID == expected.SOPInstanceUID
        assert isinstance(sr.read_back(sr.encode(filled)), hd.sr.Comprehensive3DSR)
    with pytest.raises(sr.StandInRefused):
        factory.build(source, {"output": scores(), "model": {**MODEL, "weights": "random-init"}}, False)
