"""Issue 25 item 2: a deflated DICOM is inflated in bounded steps, never past what its declared image can need."""
from __future__ import annotations

import io
import tracemalloc
import zlib

import numpy as np
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian

from cxr_model import ImageError
from cxr_model.decode import check_image
from cxr_model.dicom_inflate import MARGIN_BYTES
from tests.dicom_factory import native_dataset


def deflated(ds) -> bytes:
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return out.getvalue()


def deflate_bomb(private_bytes: int, tag: int = 0x00091010) -> bytes:
    """A small image with a private element of zeros: a few hundred KB that inflate to `private_bytes`."""
    ds = native_dataset(np.zeros((256, 256), dtype=np.uint16))
    ds.add_new(tag, "OB", bytes(private_bytes))
    return deflated(ds)


@pytest.mark.parametrize("tag", [0x00091010, 0x7FE10010])  # before the image pixel module, after the pixel data
def test_a_deflate_bomb_is_422_without_inflating_it(tag):
    bomb = deflate_bomb(200 << 20, tag)
    assert len(bomb) < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ImageError) as refused:
            check_image(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.code == "UNDECODABLE_IMAGE" and "inflates past" in refused.value.message
    assert peak < 16 << 20, peak


def test_a_deflated_image_within_its_bound_is_accepted_with_room_for_other_attributes():
    pixels = np.random.default_rng(0).integers(0, 4096, (512, 512), dtype=np.uint16)
    ds = native_dataset(pixels, bits_stored=12)
    ds.add_new(0x00291010, "OB", bytes(MARGIN_BYTES // 2))  # a vendor header of 1 MB after group 0028
    info = check_image(deflated(ds))
    assert (info.format, info.width, info.height) == ("dicom", 512, 512)


def test_a_broken_deflate_stream_is_422():
    data = deflated(native_dataset(np.zeros((64, 64), dtype=np.uint16)))
    meta_end = data.index(b"1.2.840.10008.1.2.1.99") + 24
    broken = data[:meta_end] + zlib.compress(b"x" * 100)[:20] + b"\xff" * 64  # zlib header: no raw deflate
    with pytest.raises(ImageError):
        check_image(broken)
