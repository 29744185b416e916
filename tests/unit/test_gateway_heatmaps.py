"""Heatmap overlays of the top findings as Secondary Captures: off by default; with send_heatmaps, delivered after
the SR into the same study (own series, deterministic UIDs, research-use text, stand-in marked); a map the service
cannot give is left out and the SR still goes."""
import io

import numpy as np
import pydicom
import pytest
from PIL import Image

from cxr_cli.api import ApiError
from cxr_gateway.delivery import pack, unpack
from cxr_gateway.heatmaps import HEATMAP_SERIES_NUMBER, heatmap_uid, top_findings
from cxr_gateway.pipeline import Metrics, Pipeline
from cxr_gateway.receiving import Receiver
from cxr_gateway.sr import SR_SERIES_NUMBER, model_identity
from cxr_gateway.store import Store, new_key
from tests.gateway_support import study
from tests.unit.test_gateway_pipeline import FakeApi, FlakySender, run_until_idle
from tests.unit.test_gateway_store import Clock

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def overlay_png(seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


class HeatmapApi(FakeApi):
    def __init__(self, missing=(), status=404, **kwargs):
        super().__init__(**kwargs)
        self.missing, self.status, self.asked = set(missing), status, []

    def heatmap(self, job_id, label):
        self.asked.append((job_id, label))
        if label in self.missing:
            raise ApiError(f"GET heatmap: {self.status}", status=self.status, code="NO_HEATMAP")
        return overlay_png()


def run(tmp_path, api, heatmaps, allow_stand_in=False):
    store = Store(tmp_path / "s.sqlite3", new_key(), ttl_s=3600, clock=Clock())
    metrics, sender = Metrics(), FlakySender()
    pipeline = Pipeline(store, api, sender, metrics, allow_stand_in, heatmaps=heatmaps)
    routed = study()
    Receiver(store, metrics).receive(routed["frontal"])
    run_until_idle(store, pipeline)
    return pydicom.dcmread(io.BytesIO(routed["frontal"])), sender.sent, metrics, store


def test_off_by_default_only_the_sr_goes(tmp_path):
    api = HeatmapApi()
    _, sent, _, _ = run(tmp_path, api, heatmaps=0)
    assert len(sent) == 1 and api.asked == []


def test_the_top_findings_overlays_follow_the_sr_into_the_study(tmp_path):
    api = HeatmapApi()
    source, sent, metrics, store = run(tmp_path, api, heatmaps=3)
    report, *images = [pydicom.dcmread(io.BytesIO(data)) for data in sent]
    result = api.result("job-1")
    top = top_findings(result, 3)
    assert [label for _, label in api.asked] == top == sorted(result["output"], key=result["output"].get)[::-1][:3]
    assert report.SeriesNumber == SR_SERIES_NUMBER and len(images) == 3
    model_id = model_identity(result["model"])
    for rank, (label, image) in enumerate(zip(top, images), start=1):
        assert image.SOPClassUID == SECONDARY_CAPTURE and image.PhotometricInterpretation == "RGB"
        assert image.SOPInstanceUID == heatmap_uid(source.SOPInstanceUID, model_id, label)  # a re-send: same UID
        assert (image.StudyInstanceUID, image.PatientID) == (source.StudyInstanceUID, source.PatientID)
        assert image.SeriesNumber == HEATMAP_SERIES_NUMBER and image.InstanceNumber == rank
        assert image.SeriesInstanceUID not in (report.SeriesInstanceUID, source.SeriesInstanceUID)
        assert "Research use only, not a medical device" in image.ImageComments and label in image.ImageComments
        assert image.BurnedInAnnotation == "YES" and "STAND-IN" not in image.SeriesDescription
        assert image.PatientOrientation == source.get("PatientOrientation", "")  # the source's, never made up
        pixels = image.pixel_array
        assert pixels.shape == (image.Rows, image.Columns, 3) and pixels[-40:].any()  # the burned-in text band
    assert metrics.snapshot()["counts"]["heatmaps"] == 3 and store.backlog()["pending"] == 0


def test_stand_in_weights_are_withheld_without_the_flag_and_marked_with_it(tmp_path):
    _, sent, metrics, _ = run(tmp_path / "a", HeatmapApi(weights="random-init"), heatmaps=2)
    assert sent == [] and metrics.snapshot()["counts"]["withheld_stand_in"] == 1
    _, sent, _, _ = run(tmp_path / "b", HeatmapApi(weights="random-init"), heatmaps=2, allow_stand_in=True)
    for image in [pydicom.dcmread(io.BytesIO(data)) for data in sent[1:]]:
        assert "STAND-IN" in image.SeriesDescription and "NOT FOR CLINICAL USE" in image.ImageComments


def test_a_map_the_service_cannot_give_is_left_out_and_the_sr_still_goes(tmp_path):
    result = FakeApi().result("job-1")
    first = top_findings(result, 1)[0]
    _, sent, metrics, _ = run(tmp_path, HeatmapApi(missing={first}), heatmaps=2)
    assert len(sent) == 2 and metrics.snapshot()["counts"]["heatmaps_unavailable"] == 1


def test_a_service_error_is_retried_not_skipped(tmp_path):
    result = FakeApi().result("job-1")
    api = HeatmapApi(missing={top_findings(result, 1)[0]}, status=503)
    _, sent, metrics, store = run(tmp_path, api, heatmaps=1)
    assert sent == [] and metrics.snapshot()["counts"]["retries_submitted"] >= 1 and store.backlog()["pending"] == 1


@pytest.mark.parametrize("instances", [[b"one"], [b"\0" * 132 + b"DICM", b"two", b""]])
def test_a_bundle_unpacks_to_what_was_packed(instances):
    assert unpack(pack(instances)) == instances
