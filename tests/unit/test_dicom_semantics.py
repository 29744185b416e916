"""Pixel semantics as xrv.utils.read_xray_dcm has them (bits stored, sign, MONOCHROME1, rescale), and the 422s:
an undecodable syntax is named, corrupt compressed frames are refused at submit or fail cleanly in the worker."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

from cxr_model import ImageError, check_image
from cxr_model.dicom import dicom_pixels
from cxr_model.errors import UNDECODABLE_IMAGE
from cxr_model.preprocess import normalize, preprocess
from tests.dicom_factory import COMPRESSED, SYNTAXES, clinical_radiograph, encode_dicom, native_dataset, syntax_array


def _save(ds) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _reference(data: bytes, tmp_path) -> np.ndarray:
    import torchxrayvision as xrv

    path = tmp_path / "reference.dcm"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xrv.utils.read_xray_dcm(str(path))


def _ours(data: bytes) -> np.ndarray:
    pixels = dicom_pixels(data)
    return normalize(pixels.image(), pixels.maxval)


def _signed(seed: int = 0) -> np.ndarray:
    """12-bit signed pixels around zero, as some DX/CR modalities store them."""
    return (clinical_radiograph(200, 180, seed=seed).astype(np.int16) - 2048).astype(np.int16)


def _garbage_high_bits(photometric: str = "MONOCHROME2"):
    """12 bits stored in 16 with stray bits above them (old overlays): pydicom clears them, so must we."""
    noisy = clinical_radiograph(200, 180)
    noisy[::7, ::5] |= 0xA000
    ds = native_dataset(noisy, photometric)
    ds.BitsStored, ds.HighBit = 12, 11
    return ds


NATIVE_CASES = {
    "unsigned_12_of_16_high_bits_set": _garbage_high_bits,
    "unsigned_12_of_16_mono1_high_bits_set": lambda: _garbage_high_bits("MONOCHROME1"),
    "signed_12_of_16": lambda: native_dataset(_signed(), bits_stored=12),
    "signed_12_of_16_unextended": lambda: _raw_signed(),
    "signed_16": lambda: native_dataset(_signed() * 8, bits_stored=16),
    "rescale_slope_intercept_ignored": lambda: native_dataset(clinical_radiograph(200, 180), bits_stored=12,
                                                              rescale=(2.5, -1024.0)),
    "unsigned_8_mono1": lambda: native_dataset(clinical_radiograph(200, 180, bits=8), "MONOCHROME1"),
}


def _raw_signed():
    """Signed 12-bit values stored without sign extension (high 4 bits zero): pydicom sign-extends them."""
    ds = native_dataset(_signed(1), bits_stored=12)
    ds.PixelData = (np.frombuffer(ds.PixelData, np.uint16) & 0x0FFF).tobytes()
    return ds


@pytest.mark.parametrize("name", sorted(NATIVE_CASES))
def test_native_pixels_equal_read_xray_dcm(name, tmp_path):
    data = _save(NATIVE_CASES[name]())
    assert np.array_equal(_ours(data), _reference(data, tmp_path))


@pytest.mark.parametrize("syntax", ["RLELossless", "JPEGLosslessSV1", "JPEGLSLossless", "JPEG2000Lossless",
                                    "HTJ2KLossless"])
def test_signed_pixels_in_compressed_syntaxes_equal_read_xray_dcm(syntax, tmp_path):
    original = _signed(2)
    data = encode_dicom(original, syntax, bits_stored=12)
    assert np.array_equal(_ours(data), _reference(data, tmp_path))
    assert np.array_equal(dicom_pixels(data).array, original)


def test_signed_16_bit_monochrome1_is_a_422_where_the_reference_overflows(tmp_path):
    data = _save(native_dataset(_signed() * 8, "MONOCHROME1", bits_stored=16))
    with pytest.raises(OverflowError):
        _reference(data, tmp_path)
    with pytest.raises(ImageError, match="MONOCHROME1 with 16-bit signed"):
        dicom_pixels(data)


def test_pixels_above_maxval_after_inversion_are_a_422_where_the_reference_raises(tmp_path):
    data = _save(native_dataset(_signed(3), "MONOCHROME1", bits_stored=12))  # 4095 - (negative) > 4095
    with pytest.raises(Exception, match="higher than expected bound"):
        _reference(data, tmp_path)
    with pytest.raises(ImageError):
        preprocess(data, "exact")


@pytest.mark.parametrize("syntax", ["ExplicitVRLittleEndian", "ImplicitVRLittleEndian"])
def test_native_pixels_are_read_in_place_from_the_upload(syntax):
    data = encode_dicom(clinical_radiograph(200, 180), syntax, bits_stored=12)
    assert np.shares_memory(dicom_pixels(data).array, np.frombuffer(data, np.uint8))


def test_monochrome1_pixels_are_read_in_place_and_inverted_in_normalisation():
    data = _save(native_dataset(clinical_radiograph(200, 180), "MONOCHROME1", bits_stored=12))
    pixels = dicom_pixels(data)
    assert pixels.invert and np.shares_memory(pixels.array, np.frombuffer(data, np.uint8))


def test_a_syntax_nothing_here_decodes_is_a_422_naming_it():
    from pydicom.encaps import encapsulate

    ds = native_dataset(clinical_radiograph(64, 64))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.92"  # JPEG 2000 Part 2 multi-component: no plugin
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(60)])
    data = _save(ds)
    for action in (check_image, lambda d: preprocess(d, "exact")):
        with pytest.raises(ImageError, match="JPEG 2000 Part 2 Multi-component .* cannot be decoded here") as error:
            action(data)
        assert error.value.code == UNDECODABLE_IMAGE


def _reencapsulated(data: bytes, edit) -> bytes:
    import pydicom
    from pydicom.encaps import encapsulate, generate_frames

    ds = pydicom.dcmread(io.BytesIO(data))
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([edit(frame)])
    return _save(ds)


def _small(syntax: str) -> bytes:
    return encode_dicom(syntax_array(clinical_radiograph(160, 140, seed=5), syntax), syntax, bits_stored=12)


@pytest.mark.parametrize("syntax", COMPRESSED)
def test_a_truncated_frame_is_refused_at_submit(syntax):
    data = _reencapsulated(_small(syntax), lambda frame: frame[: len(frame) // 2])
    with pytest.raises(ImageError) as error:
        check_image(data)
    assert error.value.code == UNDECODABLE_IMAGE


@pytest.mark.parametrize("syntax", [s for s in COMPRESSED if s != "RLELossless"])
def test_a_frame_of_another_size_is_refused_at_submit(syntax):
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(_small(syntax)))
    ds.Rows = 150
    with pytest.raises(ImageError):
        check_image(_save(ds))


@pytest.mark.parametrize("syntax", COMPRESSED)
def test_corrupt_entropy_data_gives_a_tensor_or_an_image_error(syntax):
    def scramble(frame: bytes) -> bytes:
        body = bytearray(frame)
        rng = np.random.default_rng(len(syntax))
        for index in rng.integers(len(body) // 3, len(body) - 8, size=40):
            body[index] = int(rng.integers(0, 256))
        return bytes(body)

    data = _reencapsulated(_small(syntax), scramble)
    try:
        check_image(data)
        tensor = preprocess(data, "exact")
    except ImageError as error:
        assert error.code == UNDECODABLE_IMAGE
    else:
        assert tensor.shape == (1, 224, 224) and np.isfinite(tensor).all()


def test_every_syntax_is_covered():
    assert len(SYNTAXES) == 15 and len(COMPRESSED) == 12
