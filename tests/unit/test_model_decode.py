"""sniff_format / check_image / preprocess: good uploads pass, bad ones raise ImageError with the right code."""
from __future__ import annotations

import io

import numpy as np
import pytest

from cxr_model import ImageError, check_image, sniff_format
from cxr_model.preprocess import preprocess, preprocess_exact
from tests.model_support import SAMPLES_DIR, dicom_bytes, dicom_jpeg_bytes, jpeg_bytes, png_bytes, synthetic_radiograph

UNSUPPORTED, UNDECODABLE = "UNSUPPORTED_MEDIA_TYPE", "UNDECODABLE_IMAGE"


def _sample(name: str) -> bytes:
    return (SAMPLES_DIR / name).read_bytes()


def _pydicom_rewrite(data: bytes, edit) -> bytes:
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    edit(ds)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("name, fmt, size", [
    ("00000001_000.png", "png", (512, 512)), ("16747_3_1.jpg", "jpeg", (1036, 885)),
    ("siim_pneumothorax_sample.dcm", "dicom", (1024, 1024)), ("Fake_MONOHR1.dcm", "dicom", (1024, 1024))])
def test_samples_are_sniffed_and_accepted(name, fmt, size):
    data = _sample(name)
    info = check_image(data)
    assert sniff_format(data) == info.format == fmt
    assert (info.width, info.height) == size


def test_jpeg_encapsulated_dicom_is_accepted():
    info = check_image(dicom_jpeg_bytes(synthetic_radiograph(300, 280, 255), "MONOCHROME1"))
    assert (info.format, info.width, info.height, info.mode) == ("dicom", 280, 300, "MONOCHROME1")


def test_preamble_less_dicom_is_recognised():
    data = dicom_bytes(synthetic_radiograph(64, 64, 255), preamble=False)
    assert data[128:132] != b"DICM"
    assert sniff_format(data) == "dicom"
    assert check_image(data).format == "dicom"


def _bad_inputs():
    from PIL import Image

    png, jpeg, siim = _sample("00000001_000.png"), _sample("16747_3_1.jpg"), _sample("siim_pneumothorax_sample.dcm")
    bomb = io.BytesIO()
    Image.new("1", (8000, 8000)).save(bomb, format="PNG")  # 64 MP in a few kB
    cmyk = jpeg_bytes(synthetic_radiograph(64, 64, 255), mode="CMYK")
    uncompressed = dicom_bytes(synthetic_radiograph(64, 64, 255))
    jpeg_dicom = dicom_jpeg_bytes(synthetic_radiograph(256, 256, 255))
    return {
        "text": (b"hello, this is not an image\n" * 10, UNSUPPORTED),
        "empty": (b"", UNSUPPORTED),
        "gif": (b"GIF89a" + b"\x00" * 100, UNSUPPORTED),
        "truncated_png": (png[: len(png) // 2], UNDECODABLE),
        "truncated_jpeg": (jpeg[: len(jpeg) // 2], UNDECODABLE),
        "png_magic_only": (png[:16], UNDECODABLE),
        "decompression_bomb": (bomb.getvalue(), UNDECODABLE),
        "1x100000": (png_bytes(np.zeros((1, 100000), np.uint8)), UNDECODABLE),
        "tiny_8x8": (png_bytes(np.zeros((8, 8), np.uint8)), UNDECODABLE),
        "cmyk_extra_channels": (cmyk, UNDECODABLE),
        "dicom_no_pixel_data": (_pydicom_rewrite(siim, lambda ds: delattr(ds, "PixelData")), UNDECODABLE),
        "dicom_rgb_photometric": (_pydicom_rewrite(siim, lambda ds: setattr(ds, "PhotometricInterpretation",
                                                                            "PALETTE COLOR")), UNDECODABLE),
        "dicom_multi_frame_4d": (_pydicom_rewrite(uncompressed, lambda ds: setattr(ds, "NumberOfFrames", 2)),
                                 UNDECODABLE),
        "dicom_three_samples": (_pydicom_rewrite(uncompressed, lambda ds: setattr(ds, "SamplesPerPixel", 3)),
                                UNDECODABLE),
        "dicom_truncated_pixels": (uncompressed[:-2000], UNDECODABLE),
        "dicom_jpeg_truncated": (jpeg_dicom[:-3000], UNDECODABLE),
        "dicom_bomb_header": (_pydicom_rewrite(uncompressed, lambda ds: (setattr(ds, "Rows", 10000),
                                                                         setattr(ds, "Columns", 10000))), UNDECODABLE),
    }


BAD = _bad_inputs()


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_upload_is_rejected_by_check_image(name):
    data, code = BAD[name]
    with pytest.raises(ImageError) as error:
        check_image(data)
    assert error.value.code == code
    assert error.value.message and "Traceback" not in error.value.message


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_upload_never_escapes_preprocess_as_a_foreign_exception(name):
    data, code = BAD[name]
    with pytest.raises(ImageError) as error:
        preprocess(data)
    assert error.value.code == code


def test_corrupt_jpeg_body_is_undecodable():
    jpeg = bytearray(_sample("16747_3_1.jpg"))
    jpeg[len(jpeg) // 2: len(jpeg) // 2 + 4000] = b"\xff" * 4000  # a run of markers in the scan data
    for call in (check_image, preprocess_exact):
        with pytest.raises(ImageError) as error:
            call(bytes(jpeg))
        assert error.value.code == UNDECODABLE


def test_fuzzed_bytes_raise_only_image_errors():
    rng = np.random.default_rng(7)
    sources = [_sample("00000001_000.png"), _sample("16747_3_1.jpg"), _sample("siim_pneumothorax_sample.dcm")]
    for index in range(30):
        data = bytearray(sources[index % 3])
        positions = rng.integers(0, len(data), size=20)
        data_bytes = rng.integers(0, 256, size=20, dtype=np.uint8)
        for position, value in zip(positions, data_bytes):
            data[position] = value
        for call in (check_image, preprocess_exact):
            try:
                call(bytes(data))
            except ImageError as error:
                assert error.code in (UNSUPPORTED, UNDECODABLE)


def _pillow_jpeg(array: np.ndarray, **options) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def test_jpeg_pixels_are_pillows_own():
    """raster_pixels decodes RGB / grey JPEG with simplejpeg; every chroma subsampling, progressive and restart
    intervals included, the pixels must be Pillow's (the reference reads JPEG through Pillow)."""
    from PIL import Image

    from cxr_model.decode import _jpeg_array, raster_pixels

    rgb = np.stack([synthetic_radiograph(600, 520, 255, seed=seed).astype(np.uint8) for seed in (1, 2, 3)], axis=2)
    cases = [_sample("16747_3_1.jpg"), _pillow_jpeg(rgb[:, :, 0], quality=90),
             _pillow_jpeg(rgb[:, :, 0], quality=90, progressive=True)]
    cases += [_pillow_jpeg(rgb, quality=quality, subsampling=subsampling, progressive=progressive)
              for quality, subsampling, progressive in ((92, 0, False), (92, 1, False), (75, 2, False),
                                                        (95, 2, True), (100, 0, True))]
    cases.append(_pillow_jpeg(rgb, quality=85, restart_marker_rows=2))
    for data in cases:
        expected = np.asarray(Image.open(io.BytesIO(data)))
        assert _jpeg_array(data, Image.open(io.BytesIO(data)).mode) is not None
        np.testing.assert_array_equal(raster_pixels(data, "jpeg").array, expected)


def test_jpeg_libjpeg_warnings_fall_back_to_pillow():
    from cxr_model.decode import _jpeg_array

    jpeg = _sample("16747_3_1.jpg")
    assert _jpeg_array(jpeg[: len(jpeg) // 2], "RGB") is None  # truncated: Pillow decides (it raises)
    assert _jpeg_array(jpeg, "CMYK") is None
