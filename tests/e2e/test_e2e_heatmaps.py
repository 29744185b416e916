"""GET /v1/jobs/{id}/heatmap over real HTTP on the local stack: PNG overlay, raw grid, labels, tenancy, cached answers."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.e2e.clients_samples import unique_copy
from tests.e2e.conftest import assert_json_error, wait_for_terminal_status
from tests.e2e.test_e2e_auth_uploads import client_key  # noqa: F401 - a second client's key (fixture)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def finished_job(local_stack, tmp_path_factory):
    import requests

    path = unique_copy("00000001_000.png", tmp_path_factory.mktemp("heat"))
    with requests.Session() as http:
        http.headers.update(local_stack.auth_headers)
        created = http.post(f"{local_stack.url}/v1/jobs", files={"image": (path.name, path.read_bytes())},
                            timeout=30)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        status, _ = wait_for_terminal_status(http, local_stack.url, job_id)
        assert status["status"] == "COMPLETED", status
        result = http.get(f"{local_stack.url}/v1/jobs/{job_id}/result", timeout=10).json()
    return job_id, result, path


def test_png_overlay_of_the_top_finding_on_the_model_input(local_stack, http, finished_job):
    job_id, result, _ = finished_job
    url = f"{local_stack.url}/v1/jobs/{job_id}/heatmap"
    response = http.get(url, timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    overlay = np.asarray(Image.open(io.BytesIO(response.content)))
    assert overlay.shape == (224, 224, 3)
    plain = np.asarray(Image.open(io.BytesIO(http.get(url, params={"opacity": "0"}, timeout=30).content)))
    assert (plain[:, :, 0] == plain[:, :, 1]).all() and plain.std() > 20  # the grey radiograph the model saw
    assert np.abs(overlay.astype(int) - plain).mean() > 10  # the map is drawn over it
    named = http.get(url, params={"label": result["top_label"]}, timeout=30)
    assert named.content == response.content  # no label: the top finding


def test_raw_grid_for_every_reported_finding(local_stack, http, finished_job):
    job_id, result, _ = finished_job
    for label in result["output"]:
        body = http.get(f"{local_stack.url}/v1/jobs/{job_id}/heatmap",
                        params={"label": label, "format": "json"}, timeout=30).json()
        grid = np.array(body["grid"])
        assert body["label"] == label and grid.shape == (7, 7) and np.isfinite(grid).all()
        assert body["score"] == result["output"][label] and "logit" in body["units"]


def test_unknown_label_names_the_valid_ones_and_other_clients_get_404(local_stack, http, finished_job, client_key):
    job_id, result, _ = finished_job
    url = f"{local_stack.url}/v1/jobs/{job_id}/heatmap"
    error = assert_json_error(http.get(url, params={"label": "Dragons"}, timeout=30), 400, "BAD_REQUEST")
    assert all(label in error["error"] for label in result["output"])
    assert_json_error(http.get(url, params={"format": "gif"}, timeout=30), 400, "BAD_REQUEST")
    assert_json_error(http.get(url, headers={"x-api-key": client_key}, timeout=30), 404, "JOB_NOT_FOUND")
    assert_json_error(http.get(f"{local_stack.url}/v1/jobs/no-such-job/heatmap", timeout=30), 404)


def test_a_cached_answer_serves_the_same_heatmap(local_stack, http, finished_job):
    job_id, _, path = finished_job
    again = http.post(f"{local_stack.url}/v1/jobs", files={"image": (path.name, path.read_bytes())}, timeout=30)
    assert again.status_code == 200 and again.json()["cached"] is True, again.text
    grids = [http.get(f"{local_stack.url}/v1/jobs/{job}/heatmap", params={"format": "json"}, timeout=30).json()
             for job in (job_id, again.json()["id"])]
    assert grids[0]["grid"] == grids[1]["grid"]
