"""Deflated DICOM inflated in bounded steps before pydicom inflates it whole: a deflate bomb is a 422, not 1 GB.

The bound is what the declared image can need: Rows x Columns x frames x samples x bytes per sample of pixel data,
plus a margin for the other attributes. Output is counted and dropped as it streams; only the header is kept.
"""
from __future__ import annotations

import zlib
from collections.abc import Iterator

from .errors import ImageError

DEFLATED = "1.2.840.10008.1.2.1.99"
MARGIN_BYTES = 2 * 1024 * 1024  # attributes besides the pixel data (private headers, icons): generous, still flat
HEADER_BYTES = 1024 * 1024  # inflated bytes read for the image pixel module (group 0028) before the bound is known
STEP_BYTES = 64 * 1024


def check_inflation(data: bytes) -> None:
    """Nothing for a file that is not deflated; a 422 for one whose dataset inflates past its declared image."""
    meta, offset = _file_meta(data)
    if meta is None or str(meta.get("TransferSyntaxUID", "")) != DEFLATED:
        return
    pieces = _inflated(memoryview(data)[offset:])
    head = bytearray()
    for piece in pieces:
        head += piece
        if len(head) >= HEADER_BYTES:
            break
    bound = declared_bytes(bytes(head)) + MARGIN_BYTES
    total = len(head)
    if total <= bound:
        for piece in pieces:
            total += len(piece)
            if total > bound:
                break
    if total > bound:
        raise ImageError.undecodable(f"deflated DICOM inflates past the {bound} bytes its declared image can need")


def declared_bytes(head: bytes) -> int:
    """Pixel bytes the image pixel module in `head` (the start of an inflated dataset) declares; 0 if unreadable."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_dataset

    try:
        ds = read_dataset(DicomBytesIO(head), is_implicit_VR=False, is_little_endian=True,
                          stop_when=lambda tag, vr, length: tag > 0x0028FFFF)
        rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.get("BitsAllocated", 16) or 16)
    except Exception:  # noqa: BLE001 - a header pydicom cannot read declares nothing: the margin alone
        return 0
    return max(0, rows * columns * frames * samples * ((bits + 7) // 8))


def _file_meta(data: bytes):
    """(file meta dataset, offset of the dataset after it); (None, 0) where there is no readable meta group."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_dataset

    start = 132 if data[128:132] == b"DICM" else 0
    if data[start:start + 2] != b"\x02\x00":
        return None, 0
    fp = DicomBytesIO(data)
    fp.seek(start)
    try:
        meta = read_dataset(fp, is_implicit_VR=False, is_little_endian=True,
                            stop_when=lambda tag, vr, length: tag.group != 2)
    except Exception:  # noqa: BLE001 - pydicom's own read then says what is wrong
        return None, 0
    return meta, fp.tell()


def _inflated(compressed: memoryview) -> Iterator[bytes]:
    """The raw deflate stream's output in pieces of at most STEP_BYTES (a bomb never sits in memory whole)."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        for start in range(0, len(compressed), STEP_BYTES):
            yield inflater.decompress(compressed[start:start + STEP_BYTES], STEP_BYTES)
            while inflater.unconsumed_tail and not inflater.eof:
                yield inflater.decompress(inflater.unconsumed_tail, STEP_BYTES)
            if inflater.eof:
                return
        yield inflater.flush()
    except zlib.error:
        raise ImageError.undecodable("deflated DICOM data is not a valid deflate stream") from None
