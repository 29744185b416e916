"""Heatmap Secondary Captures on the local stack (`--gateway-send-heatmaps`): the overlays of the top findings, as
GET /v1/jobs/{id}/heatmap draws them, follow the SR into the study in a series of their own, with deterministic UIDs
(a re-send does not duplicate) and the research-use statement; stand-in weights send nothing without the flag."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
from cxr_cli.api import Client
from cxr_model.notice import INTENDED_USE
from PIL import Image

from cxr_gateway import sr as sr_module
from cxr_gateway.heatmaps import SCALE, heatmap_uid, top_findings
from cxr_local.processes import free_port
from cxr_local.waiting import wait_until
from tests.e2e.conftest import REPO, start_stack
from tests.e2e.test_e2e_gateway import CALLING_AE, DELIVERY_DEADLINE_S, c_store, gateway_client_key, job_id_of
from tests.gateway_support import DestinationScp, study

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
TOP = 2
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


@pytest.fixture(scope="module")
def destination_port():
    return free_port()


@pytest.fixture(scope="module")
def heatmap_stack(tmp_path_factory, destination_port):
    folder = tmp_path_factory.mktemp("cxr_local_heatmaps")
    stack = start_stack(folder, "--gateway", "--gateway-destination", f"DEST@127.0.0.1:{destination_port}",
                        "--gateway-allow", CALLING_AE, "--gateway-allow-stand-in", "--gateway-send-heatmaps",
                        str(TOP), "--gateway-dicom-port", "0", "--gateway-http-port", "0",
                        "--gateway-store", str(folder / "gateway"))
    yield stack
    code = stack.stop()
    assert code == 0, f"local stack exited with {code}:\n{stack.log_tail()}"


def test_the_top_findings_overlays_arrive_in_the_study_and_a_resend_does_not_duplicate(heatmap_stack,
                                                                                        destination_port):
    gateway = heatmap_stack.info["gateway"]
    routed = study()
    frontal = pydicom.dcmread(io.BytesIO(routed["frontal"]))
    destination = DestinationScp(port=destination_port)
    try:
        assert c_store(gateway, [routed["frontal"]]) == [0]
        report, *images = wait_until(lambda: destination.received if len(destination.received) >= 1 + TOP else None,
                                     DELIVERY_DEADLINE_S, what="the SR and its heatmaps at the destination")
        assert report.Modality == "SR"
        job_id = job_id_of(report)
        client = Client(heatmap_stack.url, api_key=gateway_client_key(gateway))
        result = client.result(job_id)
        model_id = sr_module.model_identity(result["model"])
        labels = top_findings(result, TOP)
        assert labels == sorted(result["output"], key=lambda label: -result["output"][label])[:TOP]
        series = {image.SeriesInstanceUID for image in images}
        assert len(series) == 1 and series.isdisjoint({report.SeriesInstanceUID, frontal.SeriesInstanceUID})
        for rank, (label, image) in enumerate(zip(labels, images), start=1):
            assert image.SOPClassUID == SECONDARY_CAPTURE and image.InstanceNumber == rank
            assert (image.StudyInstanceUID, image.PatientID) == (frontal.StudyInstanceUID, frontal.PatientID)
            assert image.SOPInstanceUID == heatmap_uid(frontal.SOPInstanceUID, model_id, label)
            assert INTENDED_USE in image.ImageComments and job_id in image.ImageComments
            assert "STAND-IN" in image.SeriesDescription  # the tests' weights are the random-init stand-in
            assert "NOT FOR CLINICAL USE" in image.ImageComments and image.BurnedInAnnotation == "YES"
            # the picture is the service's own overlay for that finding (GET /v1/jobs/{id}/heatmap), scaled up
            overlay = Image.open(io.BytesIO(client.heatmap(job_id, label))).convert("RGB")
            shown = np.asarray(overlay.resize((overlay.width * SCALE, overlay.height * SCALE), Image.NEAREST))
            assert np.array_equal(image.pixel_array[:shown.shape[0]], shown)
            assert image.pixel_array[shown.shape[0]:].any()  # the burned-in text band
        first = {image.SOPInstanceUID for image in [report, *images]}
        assert c_store(gateway, [routed["frontal"]]) == [0]  # the PACS routes the same image again
        wait_until(lambda: len(destination.received) >= 2 * (1 + TOP), DELIVERY_DEADLINE_S, what="the re-send")
        assert {image.SOPInstanceUID for image in destination.received} == first  # same UIDs: no duplicates
    finally:
        destination.stop()


def test_stand_in_results_send_no_heatmaps_without_the_flag(heatmap_stack, destination_port, tmp_path):
    """A second gateway on the same stack and key, the same settings but without allow_stand_in."""
    gateway = heatmap_stack.info["gateway"]
    config = json.loads((Path(gateway["store"]) / "config.json").read_text())
    ready = tmp_path / "ready.json"
    config.update(allow_stand_in=False, dicom_port=0, http_port=0, store_path=str(tmp_path / "store.sqlite3"),
                  ready_file=str(ready))
    assert config["send_heatmaps"] == TOP
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "config.json").chmod(0o600)
    log = tmp_path / "gateway.log"
    process = subprocess.Popen([sys.executable, "-m", "cxr_gateway", "--config", str(tmp_path / "config.json")],
                               cwd=REPO, stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    destination = DestinationScp(port=destination_port)
    try:
        wait_until(lambda: ready.exists() or process.poll() is not None, 60, what="the second gateway's ready file")
        assert process.poll() is None, log.read_text()[-3000:]
        second = json.loads(ready.read_text())
        assert c_store({**gateway, **second}, [study()["frontal"]]) == [0]
        metrics_url = second["health_url"].replace("/health", "/metrics")
        wait_until(lambda: requests.get(metrics_url, timeout=10).json()["counts"].get("withheld_stand_in"),
                   DELIVERY_DEADLINE_S, what="the stand-in result withheld")
        counts = requests.get(metrics_url, timeout=10).json()["counts"]
        assert destination.received == [] and not counts.get("heatmaps") and not counts.get("delivered")
    finally:
        destination.stop()
        process.terminate()
        process.wait(30)
