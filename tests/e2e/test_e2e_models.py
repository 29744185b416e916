"""Two models served side by side over real HTTP: GET /v1/models, ?model= / form field, own findings, own cache."""
from __future__ import annotations

import pytest
import requests

from tests.e2e.clients_samples import unique_copy
from tests.e2e.conftest import assert_json_error, start_stack, wait_for_terminal_status
from tests.e2e.test_web_page import ARTIFACTS, browser  # noqa: F401 - the Chromium fixture

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEFAULT, SECOND = "densenet121-res224-all", "densenet121-res224-chex"
CHEX_FINDINGS = ["Atelectasis", "Consolidation", "Pneumothorax", "Edema", "Effusion", "Pneumonia", "Cardiomegaly",
                 "Lung Lesion", "Fracture", "Lung Opacity", "Enlarged Cardiomediastinum"]


@pytest.fixture(scope="module")
def two_model_stack(tmp_path_factory):
    stack = start_stack(tmp_path_factory.mktemp("models"), "--param", f"ServedModels={SECOND}")
    yield stack
    assert stack.stop() == 0, stack.log_tail()


@pytest.fixture
def api(two_model_stack):
    with requests.Session() as session:
        session.headers.update(two_model_stack.auth_headers)
        yield session, two_model_stack.url


def _result(session, base, response) -> dict:
    assert response.status_code in (200, 201), response.text
    body = response.json()
    if not body.get("result"):
        status, _ = wait_for_terminal_status(session, base, body["id"])
        assert status["status"] == "COMPLETED", status
        body["result"] = session.get(f"{base}/v1/jobs/{body['id']}/result", timeout=10).json()
    return body


def test_the_listing_names_both_models_with_their_own_findings(api):
    session, base = api
    listing = session.get(f"{base}/v1/models", timeout=30).json()
    assert listing["default"] == DEFAULT
    models = {model["name"]: model for model in listing["models"]}
    assert list(models) == [DEFAULT, SECOND] and models[DEFAULT]["default"] and not models[SECOND]["default"]
    assert len(models[DEFAULT]["findings"]) == 18 and models[SECOND]["findings"] == CHEX_FINDINGS
    for model in models.values():  # offline: labelled stand-ins, never "real"
        assert model["weights"] == "random-init" and "NOT FOR CLINICAL USE" in model["warning"]
        assert model["input_size"] == 224 and len(model["weights_sha256"]) == 64
    assert models[DEFAULT]["weights_sha256"] != models[SECOND]["weights_sha256"]


def test_each_model_answers_with_its_own_findings_and_its_own_cache_entry(api, tmp_path):
    session, base = api
    image = unique_copy("00000001_000.png", tmp_path).read_bytes()
    default = _result(session, base, session.post(f"{base}/v1/jobs", files={"image": ("x.png", image)}, timeout=30))
    second = _result(session, base, session.post(f"{base}/v1/jobs", params={"model": SECOND},
                                                 files={"image": ("x.png", image)}, timeout=30))
    assert not default.get("cached") and not second.get("cached")  # same bytes, another model: it ran again
    assert default["result"]["model"]["name"] == DEFAULT and len(default["result"]["output"]) == 18
    assert second["result"]["model"]["name"] == SECOND and list(second["result"]["output"]) == CHEX_FINDINGS
    again = session.post(f"{base}/v1/jobs", files={"image": ("x.png", image), "model": (None, SECOND)}, timeout=30)
    assert again.status_code == 200 and again.json()["cached"] is True, again.text  # the form field picks it too
    assert again.json()["result"]["output"] == second["result"]["output"]
    grid = session.get(f"{base}/v1/jobs/{second['id']}/heatmap", params={"format": "json", "label": "Edema"},
                       timeout=30)
    assert grid.status_code == 200 and len(grid.json()["grid"]) == 7
    error = assert_json_error(session.get(f"{base}/v1/jobs/{second['id']}/heatmap", params={"label": "Hernia"},
                                          timeout=30), 400)
    assert "Edema" in error["error"] and "Hernia" not in error["error"].split(":", 1)[1]  # chex reports no Hernia


def test_an_unknown_model_is_a_400_naming_the_served_ones(api, tmp_path):
    session, base = api
    image = unique_copy("16747_3_1.jpg", tmp_path).read_bytes()
    error = assert_json_error(session.post(f"{base}/v1/jobs", params={"model": "densenet121-res224-nih"},
                                           files={"image": ("x.jpg", image)}, timeout=30), 400, "BAD_REQUEST")
    assert DEFAULT in error["error"] and SECOND in error["error"]


def test_the_cli_picks_a_model_and_lists_them(two_model_stack, tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if not key.startswith("CXR_")}
    env.update(CXR_ENDPOINT=two_model_stack.url, CXR_API_KEY=two_model_stack.info.get("api_key") or "")
    listing = subprocess.run([sys.executable, "-m", "cxr_cli", "models"], capture_output=True, text=True, env=env,
                             timeout=120)
    assert listing.returncode == 0 and f"{DEFAULT} (default)" in listing.stdout and SECOND in listing.stdout
    image = unique_copy("00027426_000.png", tmp_path)
    run = subprocess.run([sys.executable, "-m", "cxr_cli", "submit", str(image), "--wait", "--json", "--model", SECOND],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout)
    assert record["result"]["model"]["name"] == SECOND and list(record["result"]["output"]) == CHEX_FINDINGS


def test_the_page_offers_a_model_picker_and_charts_the_chosen_models_findings(browser, two_model_stack, tmp_path):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 1000}, base_url=two_model_stack.url)
    page = context.new_page()
    try:
        page.goto("/")
        picker = page.get_by_label("Model", exact=True)
        if two_model_stack.info.get("api_key"):
            page.get_by_text("Settings").click()
            page.get_by_label("API key").fill(two_model_stack.info["api_key"])
            page.get_by_role("button", name="Save").click()
        expect(picker).to_be_visible()
        assert page.eval_on_selector_all("#model-picker option", "o => o.map(x => x.value)") == ["", SECOND]
        picker.select_option(SECOND)
        page.set_input_files("#file-input", str(unique_copy("00000001_000.png", tmp_path)))
        expect(page.locator("#status")).to_contain_text("completed", timeout=120_000)
        expect(page.locator("#chart-body tr")).to_have_count(len(CHEX_FINDINGS))
        expect(page.locator("#model-info")).to_contain_text(f"Model {SECOND}")
        expect(page.locator("#heatmap")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "web_page_second_model.png"), full_page=True)
    finally:
        context.close()
