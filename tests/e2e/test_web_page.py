"""Issue 8: the web page (clients/web) in a real headless Chromium, driven by Playwright, against the local stack."""
from __future__ import annotations

import base64
import os
import re
import socket
from pathlib import Path

import pytest

from .clients_samples import clinical_size_dicom, unique_copy
from .conftest import COMPLETION_SLA_S, REPO

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = Path(os.environ.get("CXR_CHROMIUM", "/usr/bin/chromium"))
# the closed network here refuses Chromium's background connections; these flags stop it from trying
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
ARTIFACTS = Path(os.environ.get("CXR_TEST_ARTIFACTS") or REPO / "tests" / "artifacts")
WAIT_MS = int(COMPLETION_SLA_S * 1000)
LABEL_COUNT = 18


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the pip package playwright is not installed (requirements/dev.txt)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (Debian: apt-get install -y chromium chromium-driver)"
    return None


@pytest.fixture(scope="module")
def browser():
    problem = _browser_missing()
    if problem:
        if os.environ.get("CXR_REQUIRE_BROWSER") == "1":
            pytest.fail(f"CXR_REQUIRE_BROWSER=1 but {problem}", pytrace=False)
        pytest.skip(f"no browser for the page test: {problem} (set CXR_REQUIRE_BROWSER=1 to make this a failure)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        # Playwright gives every launch a new, empty profile (--user-data-dir) of its own
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, local_stack):
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, base_url=local_stack.url)
    page = context.new_page()
    page.problems = []  # console errors and uncaught exceptions: a working page has none
    page.on("console", lambda message: message.type == "error" and page.problems.append(message.text))
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    yield page
    context.close()


def _drop(page, path: Path) -> None:
    """Drop a file on the drop zone as a user's drag from the desktop would: a DataTransfer with one File."""
    page.evaluate("""([name, encoded]) => {
        const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name));
        const zone = document.getElementById("drop-zone");
        for (const type of ["dragenter", "dragover", "drop"]) {
            zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: transfer }));
        }
    }""", [path.name, base64.b64encode(path.read_bytes()).decode()])


def _chart(page) -> list[tuple[str, float, str]]:
    return page.eval_on_selector_all("#chart-body tr", """rows => rows.map(row => [
        row.querySelector("th").textContent, Number(row.querySelector(".bar").dataset.score),
        row.querySelector(".decision").textContent])""")


def test_upload_shows_image_progress_chart_banner_and_history(page, local_stack, http, tmp_path):
    from playwright.sync_api import expect

    page.goto("/")
    expect(page).to_have_title(re.compile("CXR triage"))
    api_key = local_stack.info.get("api_key")
    if api_key:  # the stack wants x-api-key: enter it the way a user would, in Settings
        page.get_by_text("Settings").click()
        page.get_by_label("API key").fill(api_key)
        page.get_by_role("button", name="Save").click()

    # keyboard: Tab from the top reaches the file chooser (after the skip link)
    page.locator("header h1").click()  # the sequential focus starting point: the top of the page
    for _ in range(4):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "file-input":
            break
    assert page.evaluate("document.activeElement.id") == "file-input", "the file chooser is not keyboard reachable"

    png = unique_copy("00000001_000.png", tmp_path)  # same pixels as the sample, bytes of its own: a fresh job
    page.set_input_files("#file-input", str(png))
    status = page.locator("#status")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status).to_contain_text("completed", timeout=WAIT_MS)
    bars = page.locator("#chart-body .bar")
    expect(bars).to_have_count(LABEL_COUNT)
    expect(page.locator("#chart-body .threshold")).to_have_count(LABEL_COUNT)
    banner = page.locator("#model-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(re.compile("random-init weights, not for clinical use", re.I))
    preview = page.locator("#preview-image")
    expect(preview).to_be_visible()
    assert page.evaluate("document.getElementById('preview-image').naturalWidth") == 512

    job_id = re.search(r"job ([0-9a-f-]{36})", page.locator("#model-info").text_content())[1]
    headers = {"x-api-key": api_key} if api_key else {}
    result = http.get(f"{local_stack.url}/v1/jobs/{job_id}/result", headers=headers, timeout=10).json()
    # the standing statement of intended use: the service's one wording, shown as the API gives it
    assert "not a medical device" in result["model"]["intended_use"]
    expect(page.locator("#intended-use")).to_have_text(result["model"]["intended_use"])
    chart = _chart(page)
    expected = sorted(result["output"], key=lambda k: (-result["output"][k], k))
    assert [label for label, _, _ in chart] == [label.replace("_", " ") for label in expected]  # shown without "_"
    assert expected[0] == result["top_label"]  # one tie-break rule: the chart's first row is the API's top label
    assert [score for _, score, _ in chart] == pytest.approx(sorted(result["output"].values(), reverse=True))
    assert all(decision == ("positive" if score >= 0.5 else "negative") for _, score, decision in chart)
    widths = page.eval_on_selector_all("#chart-body .bar", "bars => bars.map(b => b.getBoundingClientRect().width)")
    track = page.eval_on_selector("#chart-body .score-track", "t => t.getBoundingClientRect().width")
    assert [w / track for w in widths] == pytest.approx([s for _, s, _ in chart], abs=0.01)  # drawn to scale

    # the heatmap beside the chart: the top finding first, a picker for the others, an opacity slider
    heat = page.locator("#heatmap")
    expect(heat).to_be_visible()
    picker = page.get_by_label("Where the model looked for")
    assert picker.input_value() == result["top_label"]
    assert page.eval_on_selector_all("#heatmap-label option", "o => o.map(x => x.value)") == expected
    overlay = page.locator("#heatmap-overlay")
    expect(overlay).to_have_attribute("alt", f"Heatmap of {result['top_label'].replace('_', ' ')}")
    assert page.evaluate("document.getElementById('heatmap-base').naturalWidth") == 224
    first_map = overlay.get_attribute("src")
    picker.select_option(expected[-1])  # the lowest-scored finding
    expect(overlay).to_have_attribute("alt", f"Heatmap of {expected[-1].replace('_', ' ')}")
    assert overlay.get_attribute("src") != first_map
    picker.select_option(result["top_label"])
    page.get_by_label("Map opacity").fill("80")
    assert page.eval_on_selector("#heatmap-overlay", "img => getComputedStyle(img).opacity") == "0.8"
    base_box = page.locator("#heatmap-base").bounding_box()
    assert overlay.bounding_box() == base_box and base_box["width"] > 150  # stacked exactly, not a thumbnail
    chart_box = page.locator("#chart").bounding_box()
    assert base_box["x"] + base_box["width"] <= chart_box["x"]  # beside the chart, not under it

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web_page_png_result.png"), full_page=True)
    heat.screenshot(path=str(ARTIFACTS / "web_page_heatmap.png"))

    dicom = unique_copy("siim_pneumothorax_sample.dcm", tmp_path)
    _drop(page, dicom)
    expect(status).to_contain_text(f"{dicom.name}: completed", timeout=WAIT_MS)
    expect(page.locator("#preview-placeholder")).to_contain_text("DICOM")
    expect(bars).to_have_count(LABEL_COUNT)
    history = page.locator("#history-body tr")
    expect(history).to_have_count(2)
    expect(history.first).to_contain_text(dicom.name)  # newest first

    show_png = page.get_by_role("button", name=f"Show job for {png.name}")
    show_png.focus()
    page.keyboard.press("Enter")
    expect(status).to_contain_text(f"{png.name}: completed")
    expect(preview).to_be_visible()
    expect(show_png).to_be_focused()  # re-rendering the history keeps the keyboard user's place
    page.screenshot(path=str(ARTIFACTS / "web_page_history.png"), full_page=True)
    assert page.problems == [], page.problems


def test_rejected_files_and_an_unreachable_api_are_reported_in_the_status(page, local_stack, tmp_path):
    from playwright.sync_api import expect

    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("hello")
    page.goto("/")
    page.set_input_files("#file-input", str(not_an_image))
    status = page.locator("#status")
    expect(status).to_contain_text("notes.txt is not a PNG, JPEG or DICOM file")
    expect(status).to_have_class(re.compile(r"\berror\b"))
    expect(page.locator("#model-banner")).to_be_visible()  # /v1/ops/health names the model before any result
    expect(page.locator("#history-body tr")).to_have_count(1)
    expect(page.locator("#history-body tr").first).to_contain_text("ERROR")

    with socket.socket() as closed:  # ?api= points the page at another API base: here one nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    page.goto(f"/?api=http://127.0.0.1:{port}")
    page.set_input_files("#file-input", str(unique_copy("16747_3_1.jpg", tmp_path)))
    expect(status).to_contain_text(f"cannot reach the API at http://127.0.0.1:{port}")
    expect(page.locator("#result")).to_be_hidden()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web_page_errors.png"), full_page=True)


def test_a_clinical_size_dicom_goes_through_a_presigned_upload_unasked(page, local_stack, tmp_path):
    from playwright.sync_api import expect

    seen = []
    page.on("request", lambda request: seen.append((request.method, request.url)))
    page.goto("/")
    expect(page.locator("#model-banner")).to_be_visible()  # before any result: the health route knows
    if local_stack.info.get("api_key"):  # typed, never saved: the page must use it all the same
        page.get_by_text("Settings").click()
        page.get_by_label("API key").fill(local_stack.info["api_key"])
    big = clinical_size_dicom(tmp_path)
    page.set_input_files("#file-input", str(big))
    status = page.locator("#status")
    expect(status).to_contain_text(f"{big.name}: completed", timeout=WAIT_MS)
    expect(page.locator("#chart-body .bar")).to_have_count(LABEL_COUNT)
    assert ("POST", f"{local_stack.url}/v1/uploads") in seen
    assert any(method == "PUT" and url.startswith(local_stack.moto_endpoint) for method, url in seen), seen
    assert not any(method == "POST" and url.endswith("/v1/jobs") and "upload" not in url for method, url in seen[:1])
    history = page.evaluate("JSON.parse(sessionStorage.getItem('cxr.history.v1'))")
    assert history[-1]["sent"] == history[-1]["total"] == big.stat().st_size  # the progress bar saw every byte
    assert any(method == "GET" and "wait=20" in url for method, url in seen)  # long polls, not tight polling
    labels = [label for label, _, _ in _chart(page)]
    assert all("_" not in label for label in labels) and "Pleural Thickening" in labels
    assert page.problems == [], page.problems


def test_a_text_file_named_png_shows_no_broken_preview_and_401_points_to_settings(page, local_stack, tmp_path):
    from playwright.sync_api import expect

    fake = tmp_path / "scan.png"
    fake.write_text("not an image at all")
    page.goto("/")
    page.get_by_text("Settings").click()
    page.get_by_label("API key").fill("not-a-valid-key")
    page.set_input_files("#file-input", str(fake))
    status = page.locator("#status")
    expect(status).to_contain_text(re.compile("Open Settings.*API key", re.I))  # the 401, with where to fix it
    expect(page.locator("#preview-image")).to_be_hidden()
    if local_stack.info.get("api_key"):
        page.get_by_label("API key").fill(local_stack.info["api_key"])
        page.set_input_files("#file-input", str(fake))
        expect(status).to_contain_text("415")
        expect(page.locator("#preview-image")).to_be_hidden()


def test_your_jobs_lists_the_keys_jobs_in_another_session_shows_and_deletes_them(browser, local_stack, tmp_path):
    """Issue 27: a job submitted in one tab is found again from a fresh session (no shared storage) with the key."""
    import requests
    from playwright.sync_api import expect

    from .test_e2e_client_data import new_client

    key = new_client(local_stack).headers["x-api-key"]

    def session():
        context = browser.new_context(viewport={"width": 1280, "height": 1000}, base_url=local_stack.url)
        page = context.new_page()
        page.problems = []
        page.on("pageerror", lambda error: page.problems.append(str(error)))
        page.goto("/")
        page.get_by_text("Settings").click()
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Save").click()
        return context, page

    first_context, first = session()
    png = unique_copy("00000001_000.png", tmp_path)
    first.set_input_files("#file-input", str(png))
    expect(first.locator("#status")).to_contain_text("completed", timeout=WAIT_MS)
    job_id = re.search(r"job ([0-9a-f-]{36})", first.locator("#model-info").text_content())[1]
    first_context.close()

    context, page = session()  # another session: its own sessionStorage, no history of the first tab
    expect(page.locator("#history-empty")).to_be_visible()
    page.get_by_role("button", name="Refresh").click()
    rows = page.locator("#server-jobs-body tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(job_id)
    expect(rows.first).to_contain_text("COMPLETED")
    page.get_by_role("button", name=f"Show job {job_id}").click()
    expect(page.locator("#status")).to_contain_text("completed", timeout=WAIT_MS)
    expect(page.locator("#chart-body .bar")).to_have_count(LABEL_COUNT)
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete job {job_id}").click()
    expect(page.locator("#server-jobs-status")).to_contain_text(f"Deleted job {job_id}")
    expect(rows).to_have_count(0)
    gone = requests.get(f"{local_stack.url}/v1/jobs/{job_id}", headers={"x-api-key": key}, timeout=10)
    assert gone.status_code == 404
    assert page.problems == [], page.problems
    context.close()
