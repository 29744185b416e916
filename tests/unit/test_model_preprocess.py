"""Exact preprocessing equals torchxrayvision's own pipeline on every sample file and on synthetic formats."""
from __future__ import annotations

import numpy as np
import pytest

from cxr_model.preprocess import preprocess_exact
from cxr_model.resize import resize_square
from tests.model_support import (SAMPLE_FILES, SAMPLES_DIR, dicom_bytes, jpeg_bytes, png_bytes,
                                 synthetic_radiograph, xrv_reference)

EXACT_TOLERANCE = 1e-3  # on the [-1024, 1024] scale; float re-association in the resize gives ~6e-5


def test_sample_files_present():
    assert len(SAMPLE_FILES) >= 5, f"expected the sample X-rays under {SAMPLES_DIR}"


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_exact_matches_torchxrayvision_on_samples(path, tmp_path, record_property):
    data = path.read_bytes()
    ours, reference = preprocess_exact(data), xrv_reference(data, tmp_path)
    assert ours.shape == reference.shape == (1, 224, 224) and ours.dtype == np.float32
    max_diff = float(np.abs(ours - reference).max())
    record_property("max_abs_diff", max_diff)
    assert max_diff <= EXACT_TOLERANCE, f"{path.name}: max |diff| {max_diff}"


def _synthetic_cases():
    grey8 = synthetic_radiograph(600, 500, 255, seed=1)
    grey16 = synthetic_radiograph(700, 640, 65535, seed=2)
    rgb = np.stack([grey8, np.roll(grey8, 3, axis=1), grey8 // 2 + 60], axis=2)
    dcm12 = synthetic_radiograph(520, 600, 4095, seed=3)
    return {
        "png8_grey": png_bytes(grey8),
        "png16_grey": png_bytes(grey16),
        "png8_rgb": png_bytes(rgb),
        "png8_rgba": png_bytes(np.dstack([rgb, np.full(grey8.shape, 200, np.uint8)])),
        "jpeg_grey": jpeg_bytes(grey8),
        "jpeg_rgb": jpeg_bytes(rgb),
        "png_small_upscaled": png_bytes(synthetic_radiograph(100, 120, 255, seed=4)),
        "dicom16_mono2": dicom_bytes(synthetic_radiograph(600, 520, 65535, seed=5)),
        "dicom12_mono1": dicom_bytes(dcm12, "MONOCHROME1", bits_stored=12),
        "dicom8_mono2": dicom_bytes(synthetic_radiograph(300, 300, 255, seed=6)),
    }


SYNTHETIC = _synthetic_cases()


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_exact_matches_torchxrayvision_on_synthetic_formats(name, tmp_path):
    data = SYNTHETIC[name]
    max_diff = float(np.abs(preprocess_exact(data) - xrv_reference(data, tmp_path)).max())
    assert max_diff <= EXACT_TOLERANCE, f"{name}: max |diff| {max_diff}"


def test_readme_reference_pixels_of_the_dicom_samples():
    """torchxrayvision's own test facts, reproduced through cxr_model's decoder and normaliser."""
    from cxr_model.dicom import dicom_pixels
    from cxr_model.preprocess import normalize

    siim = dicom_pixels((SAMPLES_DIR / "siim_pneumothorax_sample.dcm").read_bytes())
    mono1 = dicom_pixels((SAMPLES_DIR / "Fake_MONOHR1.dcm").read_bytes())
    assert normalize(siim.image(), siim.maxval)[60][2] == pytest.approx(-959.749, abs=1e-3)
    assert mono1.invert and normalize(mono1.image(), mono1.maxval)[60][2] == pytest.approx(959.75, abs=1e-2)


def test_monochrome1_is_the_inverse_of_monochrome2():
    mono2 = preprocess_exact((SAMPLES_DIR / "siim_pneumothorax_sample.dcm").read_bytes())
    mono1 = preprocess_exact((SAMPLES_DIR / "Fake_MONOHR1.dcm").read_bytes())
    assert np.abs(mono1 + mono2).max() <= 1e-3


@pytest.mark.parametrize("shape", [(512, 512), (885, 885), (2000, 2000), (224, 224), (100, 100), (57, 57)])
def test_resize_matches_skimage(shape):
    import skimage.transform

    image = (np.random.default_rng(shape[0]).random(shape, dtype=np.float32) * 2048 - 1024).astype(np.float32)
    reference = skimage.transform.resize(image[None], (1, 224, 224), mode="constant",
                                         preserve_range=True).astype(np.float32)[0]
    assert np.abs(resize_square(image) - reference).max() <= 1e-3


def test_dicom_with_understated_bits_stored_behaves_like_xrv(tmp_path):
    """pydicom masks pixel values to BitsStored; the result must still equal torchxrayvision's."""
    import io

    import pydicom

    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(synthetic_radiograph(128, 128, 65535, seed=9))))
    ds.BitsStored, ds.HighBit = 12, 11  # a header that understates its pixel values
    buffer = io.BytesIO()
    ds.save_as(buffer)
    data = buffer.getvalue()
    assert np.abs(preprocess_exact(data) - xrv_reference(data, tmp_path)).max() <= EXACT_TOLERANCE
