"""Cheap submit-time checks of an encapsulated DICOM frame: present, complete, and the size the header says."""
from __future__ import annotations

import struct

from .errors import ImageError, reraise_unless_decoder_failure

_JPEG_EOI = b"\xff\xd9"  # also JPEG 2000's end-of-codestream marker
_J2K_SOC_SIZ = b"\xff\x4f\xff\x51"


def single_frame(ds) -> bytes:
    from pydicom.encaps import generate_frames

    try:
        frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    except Exception as exc:
        raise ImageError.undecodable("DICOM encapsulated pixel data is malformed", exc) from None
    if not frame:
        raise ImageError.undecodable("DICOM encapsulated pixel data holds an empty frame")
    return frame


def check_frame(ds, syntax) -> None:
    """Header and end marker only (a full decode of a clinical image costs 0.1-1.5 s; the worker does that)
    except for RLE, whose decode is cheap. Baseline JPEG frames also get a 1/8-scale decode in check_image."""
    from pydicom import uid

    frame = single_frame(ds)
    rows, columns = int(ds.Rows), int(ds.Columns)
    if syntax == uid.RLELossless:
        _check_rle(frame, int(ds.BitsAllocated) // 8)
        _check_rle_decodes(ds)
        return
    if syntax in uid.JPEG2000TransferSyntaxes:
        size = _j2k_size(frame)
    else:  # JPEG (all processes) and JPEG-LS
        size = _jpeg_size(frame)
    if size is None:
        raise ImageError.undecodable(f"DICOM {syntax.name} frame has no readable codestream header")
    if size[0] not in (0, rows) or size[1] != columns:  # JPEG may defer the height to a DNL marker (0 here)
        raise ImageError.undecodable(f"DICOM {syntax.name} frame is {size[1]}x{size[0]}, the header says "
                                     f"{columns}x{rows}")
    if not frame.rstrip(b"\x00").endswith(_JPEG_EOI):  # frames are padded to an even length
        raise ImageError.undecodable(f"DICOM {syntax.name} frame is truncated (no end-of-image marker)")


def _jpeg_size(frame: bytes) -> tuple[int, int] | None:
    from pydicom.pixels.utils import _get_jpg_parameters

    info = _get_jpg_parameters(frame)
    return (info["height"], info["width"]) if "height" in info and "width" in info else None


def _j2k_size(frame: bytes) -> tuple[int, int] | None:
    """SIZ marker segment right after SOC: Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz."""
    if not frame.startswith(_J2K_SOC_SIZ) or len(frame) < 24:
        return None
    width, height, x_offset, y_offset = struct.unpack(">4I", frame[8:24])
    return height - y_offset, width - x_offset


def _check_rle_decodes(ds) -> None:
    """RLE segments say nothing of their decoded length, and decoding costs ~30 ms at 3000x2500: just decode."""
    from pydicom.pixels import pixel_array

    try:
        pixel_array(ds)
    except BaseException as exc:
        reraise_unless_decoder_failure(exc)
        raise ImageError.undecodable("DICOM RLE Lossless frame is corrupt", exc) from None


def _check_rle(frame: bytes, bytes_per_sample: int) -> None:
    """The 64-byte RLE header: one segment per byte of a sample, offsets ascending inside the frame."""
    if len(frame) < 64:
        raise ImageError.undecodable("DICOM RLE Lossless frame is truncated (no segment header)")
    count, *offsets = struct.unpack("<16I", frame[:64])
    offsets = offsets[:count]
    if count != bytes_per_sample or offsets[0] != 64 or offsets != sorted(offsets) or offsets[-1] >= len(frame):
        raise ImageError.undecodable("DICOM RLE Lossless frame header is inconsistent with the image")
