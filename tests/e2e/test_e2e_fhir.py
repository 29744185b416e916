"""GET /v1/jobs/{id}/result?format=fhir against the running stack: a valid FHIR DiagnosticReport with the job's scores."""
from __future__ import annotations

import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation

from tests.e2e.conftest import assert_json_error, wait_for_terminal_status
from tests.images import perturbed_png

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def completed_job(local_stack):
    import requests

    with requests.Session() as http:
        http.headers.update(local_stack.auth_headers)
        image = perturbed_png(9241)  # its own bytes: not a cache hit from another test
        created = http.post(f"{local_stack.url}/v1/jobs", files={"image": ("chest.png", image, "image/png")},
                            timeout=30)
        assert created.status_code == 201, created.text
        final, _ = wait_for_terminal_status(http, local_stack.url, created.json()["id"])
        assert final["status"] == "COMPLETED", final
        yield final["id"]


def test_fhir_result_is_a_valid_diagnostic_report_with_the_json_results_scores(local_stack, http, completed_job):
    base = f"{local_stack.url}/v1/jobs/{completed_job}/result"
    plain = http.get(base, timeout=10).json()
    response = http.get(base, params={"format": "fhir"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    report = DiagnosticReport.model_validate(response.json())
    assert report.id == completed_job and report.status == "preliminary"  # the tests' weights are random-init
    assert "not a medical device" in report.conclusion and "NOT FOR CLINICAL USE" in report.conclusion
    observations = [Observation.model_validate(item.model_dump()) for item in report.contained]
    assert {obs.code.coding[0].code: float(obs.valueQuantity.value) for obs in observations} == pytest.approx(
        plain["output"], abs=1e-12)
    assert len(report.result) == len(plain["output"])


def test_unknown_format_is_a_json_400(local_stack, http, completed_job):
    response = http.get(f"{local_stack.url}/v1/jobs/{completed_job}/result", params={"format": "xml"},
                        timeout=10)
    assert_json_error(response, 400, "BAD_REQUEST")
