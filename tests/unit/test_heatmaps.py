"""Heatmaps stored with the result (8-bit per map), the PNG overlay in plain Python, and the heatmap route's service."""
from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from cxr_core.domain import ErrorKind, ServiceError, Upload
from cxr_core.heatmaps import decode_heatmap, encode_heatmaps, model_input_key
from cxr_core.overlay import decode_grey_png, encode_png, overlay_png
from cxr_core.services.heatmaps import heatmap, parse_heatmap_query
from cxr_core.services.infer import InboundMessage, InferDeps, process_batch
from cxr_core.services.submit import SubmitDeps, submit_image
from cxr_model.privacy import deidentify_dicom
from tests.fakes import FakePredictor, InMemoryImageStore, InMemoryJobStore, InMemoryQueue, fake_check_image

RNG = np.random.default_rng(26)


def maps_of(count: int) -> dict[str, list[list[float]]]:
    return {f"finding {i}": (RNG.normal(size=(7, 7)) * 10 ** RNG.uniform(-2, 2)).tolist() for i in range(count)}


def test_the_stored_record_is_small_and_within_half_a_level_of_each_maps_range():
    maps = maps_of(18)
    record = encode_heatmaps(maps)
    assert len(record["data"]) == 4 * 18 * 49 // 3  # 882 bytes as base64: ~1.2 KB (+ two scales and a name each)
    assert len(json.dumps(record)) < 2000
    for label, grid in maps.items():
        expected, got = np.array(grid), np.array(decode_heatmap(record, label))
        spread = expected.max() - expected.min()
        assert np.abs(got - expected).max() <= spread / 510 * (1 + 1e-5)
        assert got.min() == pytest.approx(expected.min(), rel=1e-6) and got.max() == pytest.approx(expected.max(), rel=1e-6)


def test_grey_png_round_trips_and_a_real_decoder_reads_it():
    pixels = RNG.integers(0, 256, size=(224, 224), dtype=np.uint8)
    png = encode_png(pixels.tobytes(), 224, 224)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), pixels)
    assert decode_grey_png(png) == (pixels.tobytes(), 224, 224)


def _overlay(grey: np.ndarray, record: dict, label: str, opacity: float) -> np.ndarray:
    image = Image.open(io.BytesIO(overlay_png(grey.tobytes(), record, label, opacity)))
    assert image.mode == "RGB" and image.size == (224, 224)
    return np.asarray(image).astype(int)


def test_overlay_puts_the_hot_cell_in_red_and_opacity_blends_the_image_with_the_map():
    grid = np.zeros((7, 7))
    grid[1, 5] = 3.0  # one hot cell: upper right
    record = encode_heatmaps({"Mass": grid.tolist()})
    grey = np.tile(np.arange(224, dtype=np.uint8), (224, 1))
    alone = _overlay(grey, record, "Mass", 0.0)
    assert (alone == grey[:, :, None]).all()  # opacity 0: the model input alone, in grey
    heat = _overlay(grey, record, "Mass", 1.0)
    hot = heat[1 * 32 + 16, 5 * 32 + 16]
    cold = heat[5 * 32 + 16, 1 * 32 + 16]
    assert hot[0] > 200 and hot[2] < 60 and cold[2] > 100 and cold[0] < 60  # red where the map peaks, blue where not
    half = _overlay(grey, record, "Mass", 0.5)
    assert np.abs(half - (alone + heat) / 2).max() <= 2


@pytest.fixture
def world():
    jobs, images, queue = InMemoryJobStore(), InMemoryImageStore(), InMemoryQueue()
    submit = SubmitDeps(jobs=jobs, images=images, queue=queue, model_id="m@1", check_image=fake_check_image,
                        deidentify_dicom=deidentify_dicom)
    infer = InferDeps(jobs=jobs, images=images, predictor=FakePredictor(), executor=ThreadPoolExecutor(2),
                      max_receive_count=3, lease_seconds=60)
    return jobs, images, queue, submit, infer


def _submit(world, client: str = "a"):
    jobs, images, queue, submit, _ = world
    return submit_image(Upload(b"\x89PNG\r\n\x1a\nheat"), submit, client_id=client).job


def _run(world):
    queue, infer = world[2], world[4]
    messages = [InboundMessage(f"m{i}", json.dumps(m.to_dict())) for i, m in enumerate(queue.messages)]
    queue.messages.clear()
    process_batch(messages, infer)


def test_route_service_tenancy_readiness_labels_and_formats(world):
    jobs, images = world[0], world[1]
    job = _submit(world)
    with pytest.raises(ServiceError) as not_ready:
        heatmap(jobs, images, job.job_id, "a", parse_heatmap_query(None, None, None))
    assert not_ready.value.kind is ErrorKind.CONFLICT
    _run(world)
    with pytest.raises(ServiceError) as other_client:
        heatmap(jobs, images, job.job_id, "b", parse_heatmap_query(None, None, None))
    assert other_client.value.kind is ErrorKind.NOT_FOUND
    with pytest.raises(ServiceError) as unknown:
        heatmap(jobs, images, job.job_id, "a", parse_heatmap_query("Nope", None, None))
    assert unknown.value.kind is ErrorKind.INVALID and "A, B" in unknown.value.message
    for bad in (("A", "gif", None), ("A", "png", "2"), ("A", "png", "x")):
        with pytest.raises(ServiceError) as refused:
            parse_heatmap_query(*bad)
        assert refused.value.kind is ErrorKind.INVALID

    result = jobs.get_job(job.job_id).result
    content_type, body = heatmap(jobs, images, job.job_id, "a", parse_heatmap_query("B", "json", None))
    assert content_type == "application/json" and body["label"] == "B" and "logit" in body["units"]
    computed = np.array(FakePredictor().predict([b"\x89PNG\r\n\x1a\nheat"])[0].heatmaps["B"])
    assert np.abs(np.array(body["grid"]) - computed).max() <= (computed.max() - computed.min()) / 510 * (1 + 1e-6)
    assert body["score"] == result["output"]["B"]
    content_type, png = heatmap(jobs, images, job.job_id, "a", parse_heatmap_query(None, None, "0"))
    assert content_type == "image/png"  # default label: the top finding; opacity 0 is the stored model input
    stored, _, _ = decode_grey_png(images.get(model_input_key(job.image_key)))
    grey = np.frombuffer(stored, dtype=np.uint8).reshape(224, 224)
    assert (np.asarray(Image.open(io.BytesIO(png))) == grey[:, :, None]).all()


def test_a_cached_answer_carries_the_heatmaps(world):
    jobs = world[0]
    first = _submit(world)
    _run(world)
    again = _submit(world)
    assert again.cached and again.result["heatmaps"] == jobs.get_job(first.job_id).result["heatmaps"]
    assert heatmap(jobs, world[1], again.job_id, "a", parse_heatmap_query("A", "json", None))[1]["label"] == "A"
