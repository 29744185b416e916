"""Issue 25 item 3: the stored copy keeps pixels and what decoding needs; metadata that can carry patient identity
is dropped from PNG, JPEG and DICOM, losslessly (decoded pixels equal, image data bytes copied as they were)."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pydicom
import pytest
from PIL import Image, PngImagePlugin

from cxr_model.decode import check_image
from cxr_model.privacy import deidentify_dicom
from cxr_model.strip import strip_dicom, strip_jpeg, strip_metadata, strip_png
from tests.dicom_factory import clinical_radiograph, encode_dicom, native_dataset

PHI = b"Doe^Jane PHI-123456"
RNG = np.random.default_rng(25)


def pixels(mode: str = "L") -> np.ndarray:
    return RNG.integers(0, 255, (64, 48) if mode == "L" else (64, 48, 3), dtype=np.uint8)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with_metadata(array: np.ndarray) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("PatientName", PHI.decode())
    info.add_text("Comment", PHI.decode(), zip=True)  # zTXt
    info.add_itxt("Description", PHI.decode())
    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG", pnginfo=info)
    data = out.getvalue()
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + png_chunk(b"eXIf", b"MM\0*" + PHI) + data[iend:] + PHI  # eXIf, and bytes after IEND


def jpeg_with_metadata(array: np.ndarray, progressive: bool = False) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "JPEG", quality=90, progressive=progressive, comment=PHI)
    data = out.getvalue()
    bodies = ((0xE1, b"Exif\0\0" + PHI), (0xE1, b"http://ns.adobe.com/xap/1.0/\0" + PHI),
              (0xED, b"Photoshop 3.0\0" + PHI))
    segments = b"".join(b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body for marker, body in bodies)
    return data[:2] + segments + data[2:] + PHI  # after SOI, and bytes after EOI


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_png_keeps_its_critical_chunks_and_pixels_and_loses_text_exif_and_trailing_bytes():
    original = png_with_metadata(pixels())
    stored = strip_png(original)
    assert PHI not in stored and PHI in original
    assert all(kind not in stored for kind in (b"tEXt", b"zTXt", b"iTXt", b"eXIf"))
    assert np.array_equal(decoded(stored), decoded(original))
    idat = original.index(b"IDAT") - 4
    assert original[idat:idat + 4 + 4 + int.from_bytes(original[idat:idat + 4], "big")] in stored  # copied as is
    check_image(stored)


@pytest.mark.parametrize("mode,progressive", [("L", False), ("RGB", False), ("L", True)])
def test_jpeg_loses_appn_com_and_trailing_bytes_and_decodes_to_the_same_pixels(mode, progressive):
    original = jpeg_with_metadata(pixels(mode), progressive)
    stored = strip_jpeg(original)
    assert PHI not in stored and PHI in original and stored.endswith(b"\xff\xd9")
    assert np.array_equal(decoded(stored), decoded(original))
    check_image(stored)


def test_dicom_com_segment_inside_an_encapsulated_jpeg_frame_is_dropped():
    array = RNG.integers(0, 255, (64, 64), dtype=np.uint8)
    data = encode_dicom(array, "JPEGBaseline8Bit")
    ds = pydicom.dcmread(io.BytesIO(data))
    frame = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    frame = frame[:2] + b"\xff\xfe" + struct.pack(">H", len(PHI) + 2) + PHI + frame[2:]
    ds.PixelData = pydicom.encaps.encapsulate([frame])
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    upload = out.getvalue()
    stored = strip_metadata(deidentify_dicom(upload), "dicom")
    assert PHI in deidentify_dicom(upload) and PHI not in stored
    assert np.array_equal(pydicom.dcmread(io.BytesIO(stored)).pixel_array,
                          pydicom.dcmread(io.BytesIO(upload)).pixel_array)


@pytest.mark.parametrize("syntax", ["JPEGLSLossless", "JPEGLSNearLossless"])
def test_a_jpeg_ls_frame_whose_scan_holds_ff_bytes_keeps_its_pixels(syntax):
    """JPEG-LS stuffs a zero bit after 0xFF, so 0xFF then a byte below 0x80 is scan data, not a marker."""
    array = RNG.integers(0, 4096, (128, 128), dtype=np.uint16)
    upload = encode_dicom(array, syntax, bits_stored=12)
    frame = next(pydicom.encaps.generate_frames(pydicom.dcmread(io.BytesIO(upload)).PixelData, number_of_frames=1))
    scan = frame[frame.index(b"\xff\xda"):]
    assert any(scan[i] == 0xFF and scan[i + 1] < 0x80 for i in range(2, len(scan) - 1))  # the case that matters
    stored = strip_metadata(upload, "dicom")
    assert np.array_equal(pydicom.dcmread(io.BytesIO(stored)).pixel_array,
                          pydicom.dcmread(io.BytesIO(upload)).pixel_array)


def test_dicom_native_pixel_data_past_the_image_free_text_uids_and_offset_tables_are_dropped():
    array = RNG.integers(0, 4095, (64, 64), dtype=np.uint16)
    ds = native_dataset(array, bits_stored=12)
    ds.PixelData = ds.PixelData + PHI + b"\0"  # appended inside the element
    ds.SOPClassUID = PHI.decode()
    ds.file_meta.MediaStorageSOPClassUID = PHI.decode()
    ds.ExtendedOffsetTable = PHI + b"\0" * 5
    ds.ExtendedOffsetTableLengths = b"\0" * 8
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    deidentified = deidentify_dicom(out.getvalue())
    stored = strip_metadata(deidentified, "dicom")
    assert PHI in deidentified and PHI not in stored  # the allow-list alone kept it
    kept = pydicom.dcmread(io.BytesIO(stored))
    assert "SOPClassUID" not in kept and "ExtendedOffsetTable" not in kept
    assert len(kept.PixelData) == 64 * 64 * 2 and np.array_equal(kept.pixel_array, array)


def test_a_valid_sop_class_uid_stays():
    ds = native_dataset(RNG.integers(0, 255, (32, 32), dtype=np.uint8))
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    kept = pydicom.dcmread(io.BytesIO(strip_dicom(deidentify_dicom(out.getvalue()))))
    assert kept.SOPClassUID == ds.SOPClassUID and kept.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID


@pytest.mark.parametrize("syntax", ["JPEGLSLossless", "JPEGLSNearLossless", "JPEGLosslessSV1", "JPEGBaseline8Bit",
                                    "JPEGExtended12Bit", "JPEG2000Lossless", "RLELossless"])
def test_every_encapsulated_syntax_is_stored_with_its_pixels(syntax):
    """JPEG-LS scans escape 0xFF by bit stuffing (0xFF then a byte below 0x80 is data), not by 0xFF00: a marker walk
    that treats them as JPEG's ended the scan early and refused real uploads."""
    bits = 8 if syntax == "JPEGBaseline8Bit" else 12
    array = clinical_radiograph(600, 500, bits=bits, seed=3)
    data = deidentify_dicom(encode_dicom(array.astype(np.uint8) if bits == 8 else array, syntax, bits_stored=bits))
    stored = strip_dicom(data)
    before = pydicom.dcmread(io.BytesIO(data)).pixel_array
    assert np.array_equal(pydicom.dcmread(io.BytesIO(stored)).pixel_array, before)


@pytest.mark.parametrize("syntax", ["ExplicitVRLittleEndian", "ImplicitVRLittleEndian",
                                    "DeflatedExplicitVRLittleEndian", "RLELossless", "JPEGLosslessSV1"])
@pytest.mark.parametrize("extra", [b"", PHI + b"\0", PHI])
@pytest.mark.parametrize("dtype", [np.uint16, np.uint8])
def test_native_pixel_data_is_spliced_as_the_full_rewrite_would_write_it(syntax, extra, dtype, monkeypatch):
    """Issue 28: native PixelData over 64 KiB is copied from the de-identified upload (cut to the declared image,
    an odd cut padded with a zero as pydicom pads), not read and written again: the same bytes as the full rewrite."""
    import cxr_model.dicom_splice as dicom_splice

    array = RNG.integers(0, 4095 if dtype == np.uint16 else 255, (301, 281), dtype=dtype)  # 8-bit: an odd count
    upload = encode_dicom(array, syntax, bits_stored=12 if dtype == np.uint16 else 8)
    if extra and syntax in ("ExplicitVRLittleEndian", "ImplicitVRLittleEndian"):
        ds = pydicom.dcmread(io.BytesIO(upload))
        ds.PixelData = ds.PixelData + extra + b"\0" * (len(extra) % 2)  # past the image, inside the element
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        upload = out.getvalue()
    deidentified = deidentify_dicom(upload)
    source = pydicom.dcmread(io.BytesIO(deidentified), force=True, defer_size=dicom_splice.DEFER_BYTES)
    native = syntax in ("ExplicitVRLittleEndian", "ImplicitVRLittleEndian")
    assert (dicom_splice.pixel_element(deidentified, source) is not None) == native  # the path under test
    spliced = strip_dicom(deidentified)
    monkeypatch.setattr(dicom_splice, "pixel_element", lambda *args: None)
    assert spliced == strip_dicom(deidentified)
    assert PHI not in spliced
    assert np.array_equal(pydicom.dcmread(io.BytesIO(spliced)).pixel_array, array)


def test_splicing_reads_no_native_pixel_value(monkeypatch):
    """The splice path never materialises the pixel value: pydicom's deferred read is made to fail."""
    import pydicom.filereader

    array = RNG.integers(0, 4095, (400, 300), dtype=np.uint16)
    deidentified = deidentify_dicom(encode_dicom(array, "ExplicitVRLittleEndian", bits_stored=12))

    def refuse(*args, **kwargs):
        raise AssertionError("the deferred pixel value was read")

    monkeypatch.setattr(pydicom.filereader, "read_deferred_data_element", refuse)
    stored = strip_dicom(deidentified)
    monkeypatch.undo()
    assert np.array_equal(pydicom.dcmread(io.BytesIO(stored)).pixel_array, array)


def _walked_scan_end(data: bytes, pos: int, jpeg_ls: bool) -> int:
    """The scan end by walking every 0xFF, as strip_jpeg did before issue 28 (the reference for the search)."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return len(data)
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or (jpeg_ls and following < 0x80):
            pos += 2
        elif following == 0xFF:
            pos += 1
        else:
            return pos


@pytest.mark.parametrize("jpeg_ls", [False, True])
def test_the_scan_end_search_finds_what_walking_every_ff_finds(jpeg_ls):
    from cxr_model.strip import _scan_end

    rng = np.random.default_rng(28)
    for _ in range(500):  # stuffed bytes, fill bytes, restart markers, JPEG-LS's bit stuffing, EOI
        blob = bytes(rng.choice([0x00, 0xFF, 0xD0, 0xD7, 0xD9, 0x7F, 0x80, 0x12], size=120).astype(np.uint8))
        for start in (0, 7, 60):
            assert _scan_end(blob, start, jpeg_ls) == _walked_scan_end(blob, start, jpeg_ls), (blob.hex(), start)


def test_a_png_with_nothing_to_drop_is_stored_as_the_upload_itself():
    data = png_with_metadata(pixels())
    clean = strip_png(data)
    assert strip_png(clean) is clean  # no copy of a 10 MB upload when nothing goes
