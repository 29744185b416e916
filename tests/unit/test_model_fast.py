"""'fast' preprocessing stays within issue 9's bounds of the exact (torchxrayvision) tensor, and within memory."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from cxr_model import LABELS, load_predictor
from cxr_model.preprocess import preprocess
from tests.model_support import REPO, SAMPLE_FILES, built_model_dir, dicom_bytes, large_radiographs, synthetic_radiograph

MEAN_BOUND, P99_BOUND = 4.0, 64.0  # |fast - exact| on the [-1024, 1024] scale (issue 9)


def _inputs() -> dict[str, bytes]:
    return {**{path.name: path.read_bytes() for path in SAMPLE_FILES}, **large_radiographs()}


INPUTS = _inputs()


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return load_predictor(built_model_dir(str(tmp_path_factory.mktemp("model"))), engine="onnxruntime")


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_fast_is_within_bounds_of_exact(name, predictor, record_property):
    data = INPUTS[name]
    exact, fast = preprocess(data, "exact"), preprocess(data, "fast")
    assert fast.shape == exact.shape == (1, 224, 224) and fast.dtype == np.float32
    diff = np.abs(fast - exact)
    outputs = [[p.output[label] for label in LABELS] for p in predictor.predict([exact, fast])]
    output_diff = float(np.abs(np.subtract(*outputs)).max())
    for key, value in {"mean": diff.mean(), "p99": np.percentile(diff, 99), "max": diff.max(),
                       "output_max_abs_diff": output_diff}.items():
        record_property(key, float(value))
    assert diff.mean() <= MEAN_BOUND, f"{name}: mean |diff| {diff.mean():.2f}"
    assert np.percentile(diff, 99) <= P99_BOUND, f"{name}: p99 |diff| {np.percentile(diff, 99):.2f}"


def test_fast_reduces_large_images_and_leaves_small_ones_exact():
    from cxr_model.fast import reduction_budget

    assert reduction_budget(512) < 2 and reduction_budget(2400) >= 4
    small = SAMPLE_FILES[0].read_bytes()
    assert np.array_equal(preprocess(small, "fast"), preprocess(small, "exact"))


MEMORY_PROBE = """
import sys
from cxr_model.preprocess import preprocess

def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

warm, mode, *paths = sys.argv[1:]
payloads = [open(path, "rb").read() for path in paths]
preprocess(open(warm, "rb").read(), mode)  # imports and first-call allocations out of the measurement
baseline = hwm_mb()
for payload in payloads:
    preprocess(payload, mode)
print(hwm_mb() - baseline)
"""


@pytest.fixture(scope="module")
def large_16bit_files(tmp_path_factory):
    """A 3,000 x 3,000 16-bit image as DICOM and PNG, written by this process so the probe's peak stays clean."""
    from tests.model_support import png_bytes

    folder = tmp_path_factory.mktemp("large")
    array = synthetic_radiograph(3000, 3000, 65535, seed=11)
    (folder / "large.dcm").write_bytes(dicom_bytes(array))
    (folder / "large.png").write_bytes(png_bytes(array))
    return [str(folder / "large.dcm"), str(folder / "large.png")]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_16bit_3000px_image_keeps_rss_growth_under_100mb(mode, large_16bit_files, record_property):
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(SAMPLE_FILES[0]), mode, *large_16bit_files],
                            capture_output=True, text=True, timeout=300, cwd=str(REPO))
    assert result.returncode == 0, result.stderr
    growth = float(result.stdout.strip())
    record_property("rss_growth_mb", growth)
    assert 0 < growth <= 100.0, f"{mode}: RSS grew {growth:.1f} MB"


def test_fast_uses_the_same_dicom_semantics():
    """MONOCHROME1 inversion and BitsStored scaling hold in the fast path too."""
    array = synthetic_radiograph(2400, 2400, 4095, seed=5)
    mono2 = preprocess(dicom_bytes(array, "MONOCHROME2", bits_stored=12), "fast")
    mono1 = preprocess(dicom_bytes(4095 - array, "MONOCHROME1", bits_stored=12), "fast")
    assert np.abs(mono1 - mono2).max() <= 1e-2
