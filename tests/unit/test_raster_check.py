"""Submit's PNG/JPEG checks are structural (issue 28): framing, CRCs and markers refused as 422, no pixel inflated."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from cxr_model import ImageError, check_image
from tests.model_support import jpeg_bytes, png_bytes, synthetic_radiograph


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    offset, out = 8, []
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        out.append((kind, data[offset + 8:offset + 8 + length]))
        offset += 12 + length
    return out


def _png(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(struct.pack(">I", len(payload)) + kind + payload
                                          + struct.pack(">I", zlib.crc32(kind + payload)) for kind, payload in chunks)


@pytest.fixture(scope="module")
def png16() -> bytes:
    return png_bytes(synthetic_radiograph(300, 240, 65535))


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return jpeg_bytes(synthetic_radiograph(300, 240, 255))


def _refused(data: bytes) -> str:
    with pytest.raises(ImageError) as error:
        check_image(data)
    assert error.value.code == "UNDECODABLE_IMAGE"
    return error.value.message


def test_png_check_inflates_nothing(png16, monkeypatch):
    """No zlib inflate at submit: the check passes with every inflater in reach broken."""
    def refuse(*args, **kwargs):
        raise AssertionError("submit inflated pixel data")
    monkeypatch.setattr(zlib, "decompress", refuse)
    monkeypatch.setattr(zlib, "decompressobj", refuse)
    from isal import isal_zlib
    monkeypatch.setattr(isal_zlib, "decompress", refuse)
    monkeypatch.setattr(isal_zlib, "decompressobj", refuse)
    assert check_image(png16).format == "png"


def test_png_split_into_many_idat_chunks_with_ancillary_chunks_is_accepted(png16):
    chunks = _chunks(png16)
    stream = b"".join(payload for kind, payload in chunks if kind == b"IDAT")
    pieces = [(b"IDAT", stream[i:i + 997]) for i in range(0, len(stream), 997)] + [(b"IDAT", b"")]
    data = _png([chunks[0], (b"tEXt", b"Comment\0x"), *pieces, (b"tIME", bytes(7)), (b"IEND", b"")])
    assert check_image(data).width == 240
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), np.asarray(Image.open(io.BytesIO(png16))))


@pytest.mark.parametrize("kind", [b"IHDR", b"IDAT", b"IEND", b"tEXt"])
def test_png_a_flipped_crc_in_any_chunk_is_refused(png16, kind):
    chunks = _chunks(png16)
    data = _png(chunks[:1] + [(b"tEXt", b"Comment\0x")] + chunks[1:])
    offset = 8
    while data[offset + 4:offset + 8] != kind:
        offset += 12 + struct.unpack(">I", data[offset:offset + 4])[0]
    end = offset + 12 + struct.unpack(">I", data[offset:offset + 4])[0]
    broken = data[:end - 1] + bytes([data[end - 1] ^ 1]) + data[end:]
    message = _refused(broken)  # chunks before IDAT: Pillow's header parse already checks their CRC
    assert "CRC" in message or (kind in (b"IHDR", b"tEXt") and "header" in message), message


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.999])
def test_png_truncated_anywhere_is_refused(png16, cut):
    _refused(png16[:int(len(png16) * cut)])


def test_png_without_iend_or_idat_or_with_split_idat_runs_is_refused(png16):
    chunks = _chunks(png16)
    idat = [chunk for chunk in chunks if chunk[0] == b"IDAT"]
    assert "truncated" in _refused(_png(chunks[:-1]))
    assert "no pixel data" in _refused(_png([chunks[0], (b"IEND", b"")]))
    stream = idat[0][1]
    split = [chunks[0], (b"IDAT", stream[:100]), (b"tEXt", b"a\0b"), (b"IDAT", stream[100:]), (b"IEND", b"")]
    assert "consecutive" in _refused(_png(split))


def test_png_idat_far_larger_or_smaller_than_ihdr_declares_is_refused(png16):
    ihdr, *rest = _chunks(png16)
    small = struct.pack(">IIBBBBB", 60, 48, 16, 0, 0, 0, 0)  # 60x48 16-bit: 5808 bytes inflated, IDAT holds far more
    assert "larger" in _refused(_png([(b"IHDR", small), *rest]))
    huge = struct.pack(">IIBBBBB", 7000, 7000, 8, 0, 0, 0, 0)  # 49 MB inflated from a few bytes: past 1032:1
    tiny = zlib.compress(b"\0" * 100)
    assert "too short" in _refused(_png([(b"IHDR", huge), (b"IDAT", tiny), (b"IEND", b"")]))


def test_jpeg_baseline_progressive_restart_markers_comments_and_stray_bytes_are_accepted(jpeg):
    image = Image.open(io.BytesIO(jpeg))
    for options in ({"progressive": True}, {"restart_marker_rows": 1}, {"restart_marker_blocks": 3}):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=90, **options)
        assert check_image(out.getvalue()).format == "jpeg", options
    commented = jpeg[:2] + b"\xff\xfe\x00\x07hello" + jpeg[2:]
    assert check_image(commented).width == 240
    app0_end = 4 + struct.unpack(">H", jpeg[4:6])[0]
    stray = jpeg[:app0_end] + b"\x00\x01" + jpeg[app0_end:]  # between segments: libjpeg skips them (a warning)
    assert check_image(stray).width == 240


@pytest.mark.parametrize("cut", [0.05, 0.5, 0.99])
def test_jpeg_truncated_anywhere_is_refused(jpeg, cut):
    _refused(jpeg[:int(len(jpeg) * cut)])


def test_jpeg_without_end_marker_or_scan_is_refused(jpeg):
    assert "truncated" in _refused(jpeg[:-2])
    sos = jpeg.index(b"\xff\xda")
    assert "no image data" in _refused(jpeg[:sos] + b"\xff\xd9")


def test_jpeg_check_decodes_nothing(jpeg, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("submit decoded pixels")
    monkeypatch.setattr(Image.Image, "load", refuse)
    assert check_image(jpeg).format == "jpeg"
