"""Default settings at clinical size: scores equal torchxrayvision's own pipeline, memory stays bounded."""
from __future__ import annotations

import functools
import tracemalloc

import numpy as np
import pytest

from cxr_model import LABELS, load_predictor
from cxr_model.pixels import Pixels
from cxr_model.preprocess import exact_from_pixels, preprocess
from cxr_model.resize import banded_operator
from tests.model_support import (MODEL_NAME, built_model_dir, dicom_bytes, jpeg_bytes, png_bytes,
                                 synthetic_radiograph, xrv_reference)

SCORE_TOLERANCE = 1e-4  # on the 18 calibrated outputs
TENSOR_TOLERANCE = 1e-3  # on the [-1024, 1024] scale
HEIGHT, WIDTH = 3000, 2500


@functools.lru_cache(maxsize=1)
def clinical_images() -> dict[str, bytes]:
    """One 3000 x 2500 synthetic radiograph in each raster format, and as an uncompressed 12-bit MONOCHROME1 DICOM."""
    grey16 = synthetic_radiograph(HEIGHT, WIDTH, 65535, seed=14)
    grey8 = (grey16 >> 8).astype(np.uint8)
    rgb = np.stack([grey8, np.roll(grey8, 5, axis=1), grey8 // 2 + 60], axis=2)
    return {
        "png16_grey": png_bytes(grey16, compress_level=1),  # reference: normalize(skimage.io.imread(...), 65535)
        "png8_grey": png_bytes(grey8, compress_level=1),
        "jpeg_grey": jpeg_bytes(grey8, quality=92),
        "jpeg_rgb": jpeg_bytes(rgb, quality=92),
        "dicom12_mono1": dicom_bytes(grey16 >> 4, "MONOCHROME1", bits_stored=12),
    }


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return built_model_dir(str(tmp_path_factory.mktemp("model")))


def test_exact_is_the_default_of_template_config_and_predictor(monkeypatch, model_dir):
    from cxr_core.config import settings
    from tests.unit.template_support import raw_template

    assert raw_template()["Parameters"]["PreprocessMode"]["Default"] == "exact"
    monkeypatch.delenv("PREPROCESS_MODE", raising=False)
    settings.cache_clear()
    try:
        assert settings().preprocess_mode == "exact"
    finally:
        settings.cache_clear()
    predictor = load_predictor(model_dir)
    assert predictor.identity["preprocess"] == "exact" and predictor.model_id.endswith("/exact")  # result + cache key


def test_default_scores_equal_torchxrayvision_at_clinical_size(model_dir, tmp_path, record_property):
    """Our defaults (onnxruntime, exact) against skimage.io.imread/read_xray_dcm + xrv's transforms + xrv's DenseNet."""
    import torch
    import torchxrayvision as xrv

    cases = clinical_images()
    predictor = load_predictor(model_dir)
    tensors = [predictor.preprocess(data) for data in cases.values()]
    ours = np.array([[p.output[label] for label in LABELS] for p in predictor.predict(tensors)])
    references = np.stack([xrv_reference(data, tmp_path) for data in cases.values()])
    with torch.no_grad():
        expected = xrv.models.DenseNet(weights=MODEL_NAME, cache_dir=model_dir)(torch.from_numpy(references)).numpy()
    for name, tensor, reference, got, want in zip(cases, tensors, references, ours, expected):
        tensor_diff, score_diff = float(np.abs(tensor - reference).max()), float(np.abs(got - want).max())
        record_property(name, {"tensor_max_abs_diff": tensor_diff, "score_max_abs_diff": score_diff})
        assert tensor_diff <= TENSOR_TOLERANCE, f"{name}: tensor max |diff| {tensor_diff}"
        assert score_diff <= SCORE_TOLERANCE, f"{name}: score max |diff| {score_diff}"


def _peak_bytes(function) -> int:
    """Peak memory traced while `function` runs, above what was allocated before (numpy reports to tracemalloc)."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("shape,dtype,maxval", [((HEIGHT, WIDTH), np.uint16, 4095),
                                                ((HEIGHT, WIDTH, 3), np.uint8, 255)], ids=["grey16", "rgb8"])
def test_operator_makes_no_full_size_copy(shape, dtype, maxval, record_property):
    """A copy of the crop alone, as integers, would be 0.83 x the decoded array, and as float32 1.67 x (grey16) or
    3.3 x (rgb8); the banded operator stays under 0.75 x, building its operators included (measured 0.49, 0.40)."""
    array = np.random.default_rng(0).integers(0, maxval + 1, size=shape, dtype=dtype)
    banded_operator.cache_clear()
    peak = _peak_bytes(lambda: exact_from_pixels(Pixels(array, maxval, invert=True)))
    record_property("peak_over_decoded", peak / array.nbytes)
    assert peak <= 0.75 * array.nbytes, f"peak {peak / 2**20:.1f} MiB for a {array.nbytes / 2**20:.1f} MiB array"


@pytest.mark.parametrize("name,decoded_bytes", [("png16_grey", HEIGHT * WIDTH * 2), ("jpeg_rgb", HEIGHT * WIDTH * 3)])
def test_whole_preprocessing_peak_is_at_most_twice_the_decoded_pixels(name, decoded_bytes, record_property):
    data = clinical_images()[name]
    peak = _peak_bytes(lambda: preprocess(data))
    record_property("peak_over_decoded", peak / decoded_bytes)
    assert peak <= 2 * decoded_bytes, f"{name}: peak {peak / 2**20:.1f} MiB"
