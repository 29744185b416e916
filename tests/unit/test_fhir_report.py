"""GET /v1/jobs/{id}/result?format=fhir: the DiagnosticReport mapping, validated by fhir.resources (R4B models:
DiagnosticReport and Observation are unchanged from R4)."""
from __future__ import annotations

import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation

from cxr_core.domain import ErrorKind, ServiceError
from cxr_core.fhir import FINDING_SYSTEM, OPERATING_POINT, diagnostic_report, parse_result_format
from cxr_model.notice import INTENDED_USE as RESEARCH_USE
from cxr_model.specs import LABELS

REAL_MODEL = {"name": "densenet121-res224-all", "weights_sha256": "56524913dd16" + "0" * 52, "weights": "real",
              "engine": "onnxruntime", "preprocess": "exact", "model_id": "densenet121-res224-all@56524913dd160000/exact",
              "intended_use": RESEARCH_USE}
STAND_IN = dict(REAL_MODEL, weights="random-init", warning="random-initialised weights - NOT FOR CLINICAL USE")


def result(model: dict) -> dict:
    output = {label: round(0.05 * index, 4) for index, label in enumerate(LABELS)}
    return {"job_id": "0b7e2d3c-1111-4222-8333-444455556666", "top_label": max(output, key=output.get),
            "output": output, "model": model, "created_at": "2026-12-05T07:40:00.123Z"}


def test_report_validates_as_fhir_with_one_observation_per_finding():
    view = result(REAL_MODEL)
    report = DiagnosticReport.model_validate(diagnostic_report(view))
    assert report.status == "final" and report.id == view["job_id"]
    assert len(report.contained) == len(LABELS) == len(report.result)
    observations = {obs.code.coding[0].code: Observation.model_validate(obs.model_dump()) for obs in report.contained}
    assert set(observations) == set(LABELS)
    for label, score in view["output"].items():
        obs = observations[label]
        assert obs.code.coding[0].system == FINDING_SYSTEM
        assert float(obs.valueQuantity.value) == pytest.approx(score, abs=1e-12)
        expected = "POS" if score >= OPERATING_POINT else "NEG"
        assert obs.interpretation[0].coding[0].code == expected
        assert any(RESEARCH_USE in note.text for note in obs.note)
    assert {ref.reference for ref in report.result} == {f"#{obs.id}" for obs in report.contained}
    assert RESEARCH_USE in report.conclusion


def test_stand_in_weights_are_preliminary_and_say_so():
    report = DiagnosticReport.model_validate(diagnostic_report(result(STAND_IN)))
    assert report.status == "preliminary"
    assert "NOT FOR CLINICAL USE" in report.conclusion
    assert all(any("random-init" in note.text for note in obs.note) for obs in report.contained)


def test_an_invalid_mapping_would_be_caught():
    """The validation is real: a report without a status is refused by fhir.resources."""
    broken = diagnostic_report(result(REAL_MODEL))
    del broken["status"]
    with pytest.raises(ValueError):
        DiagnosticReport.model_validate(broken)


@pytest.mark.parametrize("raw, expected", [(None, "json"), ("", "json"), ("json", "json"), ("fhir", "fhir")])
def test_format_parameter(raw, expected):
    assert parse_result_format(raw) == expected


def test_unknown_format_is_a_400():
    with pytest.raises(ServiceError) as caught:
        parse_result_format("hl7v2")
    assert caught.value.kind is ErrorKind.INVALID and caught.value.code == "BAD_REQUEST"  # http.py: 400
    assert "format" in caught.value.message
