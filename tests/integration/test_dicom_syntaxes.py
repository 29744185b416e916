"""Every DICOM transfer syntax decodes as xrv.utils.read_xray_dcm does (lossless ones as the original), and scores
with default preprocessing equal torchxrayvision's pipeline on the real library model."""
from __future__ import annotations

import functools
import io
import warnings

import numpy as np
import pytest

from cxr_model import LABELS, ImageError, check_image, load_predictor
from cxr_model.dicom import dicom_pixels
from cxr_model.preprocess import normalize
from tests.dicom_factory import SYNTAXES, clinical_radiograph, encode_dicom, syntax_array
from tests.model_support import MODEL_NAME, built_model_dir, xrv_reference

SCORE_TOLERANCE = 1e-4
CLINICAL = ("DeflatedExplicitVRLittleEndian", "RLELossless", "JPEGLosslessSV1", "JPEGLSLossless", "JPEG2000Lossless")


@functools.lru_cache(maxsize=None)
def case(syntax: str, clinical: bool = False) -> tuple[np.ndarray, bytes]:
    """(original pixels, DICOM bytes): 12-bit small images alternate MONOCHROME1/2; clinical ones are 3000x2500."""
    original = clinical_radiograph(3000, 2500, seed=7) if clinical else clinical_radiograph(320, 280, seed=len(syntax))
    original = syntax_array(original, syntax)
    photometric = "MONOCHROME1" if clinical or sorted(SYNTAXES).index(syntax) % 2 else "MONOCHROME2"
    return original, encode_dicom(original, syntax, photometric, bits_stored=12)


def read_xray_dcm(data: bytes, tmp_path) -> np.ndarray:
    import torchxrayvision as xrv

    path = tmp_path / "reference.dcm"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its MONOCHROME1 notice
        return xrv.utils.read_xray_dcm(str(path))


def _assert_pixels(syntax: str, original: np.ndarray, data: bytes, tmp_path) -> None:
    pixels = dicom_pixels(data)
    ours = normalize(pixels.image(), pixels.maxval)
    reference = read_xray_dcm(data, tmp_path)
    assert ours.dtype == reference.dtype and np.array_equal(ours, reference), f"{syntax}: pixels differ from xrv"
    if SYNTAXES[syntax].lossless:  # MONOCHROME1 too: its inversion is Pixels.invert, the array is as stored
        assert np.array_equal(pixels.array, original), f"{syntax}: lossless pixels differ from the original"


@pytest.mark.parametrize("syntax", sorted(SYNTAXES))
def test_every_syntax_decodes_as_read_xray_dcm_and_passes_check_image(syntax, tmp_path):
    original, data = case(syntax)
    info = check_image(data)
    assert (info.format, info.width, info.height) == ("dicom", 280, 320)
    _assert_pixels(syntax, original, data, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("syntax", CLINICAL)
def test_clinical_size_decodes_as_read_xray_dcm(syntax, tmp_path):
    original, data = case(syntax, clinical=True)
    assert check_image(data).width == 2500
    _assert_pixels(syntax, original, data, tmp_path)


@pytest.fixture(scope="module")
def scorers(tmp_path_factory):
    """The service's default-path predictor (exact preprocessing) and the real torchxrayvision DenseNet."""
    import torchxrayvision as xrv

    model_dir = built_model_dir(str(tmp_path_factory.mktemp("model")))
    return (load_predictor(model_dir, engine="onnxruntime", preprocess_mode="exact"),
            xrv.models.DenseNet(weights=MODEL_NAME, cache_dir=model_dir).eval())


def _score_gap(scorers, inputs: list[bytes], tmp_path) -> float:
    import torch

    predictor, model = scorers
    ours = predictor.predict([predictor.preprocess(data) for data in inputs])
    ours = np.array([[p.output[label] for label in LABELS] for p in ours])
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        batch = np.stack([xrv_reference(data, tmp_path) for data in inputs]).astype(np.float32)
        reference = model(torch.from_numpy(batch)).numpy()
    return float(np.abs(ours - reference).max())


def test_default_scores_equal_torchxrayvision_in_every_syntax(scorers, tmp_path):
    assert _score_gap(scorers, [case(syntax)[1] for syntax in sorted(SYNTAXES)], tmp_path) <= SCORE_TOLERANCE


@pytest.mark.slow
def test_default_scores_equal_torchxrayvision_at_clinical_size(scorers, tmp_path):
    """One syntax is enough here: the clinical pixels of every family already equal the reference's exactly."""
    assert _score_gap(scorers, [case("JPEGLosslessSV1", clinical=True)[1]], tmp_path) <= SCORE_TOLERANCE


# pydicom's default plugin order with requirements/model.txt installed: what "the reference" decodes lossy data with.
REFERENCE_DECODERS = {"JPEGBaseline8Bit": "pylibjpeg", "JPEGExtended12Bit": "pylibjpeg",
                      "JPEGLSNearLossless": "pylibjpeg", "JPEG2000": "pylibjpeg", "HTJ2K": "pylibjpeg"}


@pytest.mark.parametrize("syntax", sorted(REFERENCE_DECODERS))
def test_the_reference_decodes_lossy_syntaxes_with_the_documented_plugin(syntax):
    import pydicom
    from pydicom.pixels import pixel_array

    ds = pydicom.dcmread(io.BytesIO(case(syntax)[1]))
    assert np.array_equal(ds.pixel_array, pixel_array(ds, decoding_plugin=REFERENCE_DECODERS[syntax]))
