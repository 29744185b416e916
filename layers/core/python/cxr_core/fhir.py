"""A job's result as a FHIR R4 DiagnosticReport with one contained Observation per finding, as plain dicts."""
from __future__ import annotations

from cxr_core.domain import bad_request

FHIR_CONTENT_TYPE = "application/fhir+json"
RESULT_FORMATS = ("json", "fhir")
# torchxrayvision calibrates each label so its operating point maps to 0.5 (op_norm): at or above it reads positive
OPERATING_POINT = 0.5
# The model's labels are its own vocabulary, not SNOMED CT or LOINC codes: a coding system of this service says so.
FINDING_SYSTEM = "urn:cxr-serverless:finding"
JOB_SYSTEM = "urn:cxr-serverless:job"
LOINC = "http://loinc.org"
DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
UCUM = "http://unitsofmeasure.org"


def parse_result_format(raw: str | None) -> str:
    """`?format=` of GET /v1/jobs/{id}/result: json (the default) or fhir."""
    if raw is None or raw == "":
        return "json"
    if raw not in RESULT_FORMATS:
        raise bad_request(f"format must be one of {', '.join(RESULT_FORMATS)}; got {raw!r}")
    return raw


def _notes(model: dict) -> list[dict]:
    # the service's one wording of intended use travels with every result's model identity (cxr_model.notice)
    notes = [{"text": model["intended_use"]}] if model.get("intended_use") else []
    if model.get("warning"):
        notes.append({"text": f"{model['warning']} (weights: {model.get('weights')})"})
    return notes


def _observation(index: int, label: str, score: float, issued: str | None, model: dict) -> dict:
    positive = score >= OPERATING_POINT
    observation = {
        "resourceType": "Observation",
        "id": f"finding-{index}",
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "imaging", "display": "Imaging"}]}],
        "code": {"coding": [{"system": FINDING_SYSTEM, "code": label, "display": label}], "text": label},
        "valueQuantity": {"value": score, "unit": "score", "system": UCUM, "code": "1"},
        "interpretation": [{"coding": [{"system": INTERPRETATION, "code": "POS" if positive else "NEG",
                                        "display": "Positive" if positive else "Negative"}],
                            "text": f"{'at or above' if positive else 'below'} the operating point "
                                    f"{OPERATING_POINT:g}"}],
        "method": {"text": _method(model)},
        "note": _notes(model),
    }
    if issued:
        observation["issued"] = issued
    return observation


def _method(model: dict) -> str:
    return (f"{model.get('name', 'model')} (weights {model.get('weights', 'unknown')}, sha256 "
            f"{model.get('weights_sha256', 'unknown')}, preprocessing {model.get('preprocess', 'unknown')})")


def diagnostic_report(result: dict) -> dict:
    """`result` is the JSON result view ({"job_id","top_label","output","model","created_at"})."""
    model = result.get("model") or {}
    issued = result.get("created_at")
    observations = [_observation(index, label, float(score), issued, model)
                    for index, (label, score) in enumerate(sorted((result.get("output") or {}).items()))]
    conclusion = " ".join(filter(None, [model.get("intended_use"), f"Highest score: {result.get('top_label')}."]))
    if model.get("warning"):
        conclusion += f" {model['warning']}."
    report = {
        "resourceType": "DiagnosticReport",
        "id": result["job_id"],
        "contained": observations,
        "identifier": [{"system": JOB_SYSTEM, "value": result["job_id"]}],
        # a stand-in model's scores are never reported as final
        "status": "final" if model.get("weights") == "real" else "preliminary",
        "category": [{"coding": [{"system": DIAGNOSTIC_SERVICE, "code": "RAD", "display": "Radiology"}]}],
        "code": {"coding": [{"system": LOINC, "code": "18748-4", "display": "Diagnostic imaging study"}],
                 "text": "Chest radiograph findings (automated)"},
        "result": [{"reference": f"#{observation['id']}", "display": observation["code"]["text"]}
                   for observation in observations],
        "conclusion": conclusion,
    }
    if issued:
        report["issued"] = issued
    return report
