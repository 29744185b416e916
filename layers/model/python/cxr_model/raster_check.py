"""Structure-level PNG and JPEG checks for submit: chunk and segment framing only, no pixel data inflated or decoded."""
from __future__ import annotations

import re
import struct

from .errors import ImageError

try:  # ISA-L's CRC-32: ~6x zlib's on a 10 MB PNG; the same checksum
    from isal.isal_zlib import crc32
except ImportError:  # pragma: no cover - the model layer ships isal
    from zlib import crc32

_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
# Deflate codes at most 258 bytes per 2-bit match (1032:1); a zlib stream adds 6 bytes and each stored block 5.
_DEFLATE_MAX_RATIO = 1032
_CHUNK_TYPE = re.compile(rb"[A-Za-z]{4}")
# In entropy-coded data 0xFF is followed by 0x00 (stuffing) or RST0-7; anything else (fill bytes too) starts a marker.
_JPEG_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00]")  # no quantifier: re then searches at memchr speed
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def inflated_png_size(width: int, height: int, bit_depth: int, color_type: int, interlace: int) -> int:
    """Bytes IDAT must inflate to: filtered scanlines (a filter byte each), per Adam7 pass if interlaced."""
    bits = _CHANNELS[color_type] * bit_depth

    def size(w: int, h: int) -> int:
        return h * (1 + (w * bits + 7) // 8) if w > 0 and h > 0 else 0

    if not interlace:
        return size(width, height)
    return sum(size((width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy) for x0, y0, dx, dy in _ADAM7)


def png_idat_bound(expected: int) -> int:
    """The most compressed bytes an honest encoder spends on `expected` bytes (stored blocks, plus slack)."""
    return expected + expected // 8 + 1024


def check_png_structure(data: bytes) -> None:
    """422 unless every chunk is framed within the file with a matching CRC, IHDR comes first, the IDAT chunks are
    consecutive, IEND closes the image, and the IDAT size is one a zlib stream of IHDR's pixel size can have.

    What only inflating tells (a zlib stream that is corrupt, or inflates to other than IHDR's size) is left to the
    worker's decode, which fails the job.
    """
    view = memoryview(data)
    try:
        width, height, bit_depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
        expected = inflated_png_size(width, height, bit_depth, color_type, interlace)
    except (struct.error, KeyError):
        raise ImageError.undecodable("PNG header is malformed") from None
    offset, idat_bytes, idat_state, first = 8, 0, "before", True
    while True:
        if offset + 12 > len(data):
            raise ImageError.undecodable("PNG is truncated (no IEND chunk)")
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        end = offset + 12 + length
        if length > 0x7FFFFFFF or end > len(data):
            raise ImageError.undecodable("PNG is truncated (a chunk runs past the end of the file)")
        if not _CHUNK_TYPE.fullmatch(kind):
            raise ImageError.undecodable("PNG chunk structure is broken")
        if crc32(view[offset + 4:end - 4]) != struct.unpack(">I", data[end - 4:end])[0]:
            raise ImageError.undecodable(f"PNG {kind.decode()} chunk CRC does not match")
        if first and (kind != b"IHDR" or length != 13):
            raise ImageError.undecodable("PNG header is malformed")
        first = False
        if kind == b"IDAT":
            if idat_state == "after":
                raise ImageError.undecodable("PNG IDAT chunks are not consecutive")
            idat_state, idat_bytes = "in", idat_bytes + length
        elif idat_state == "in":
            idat_state = "after"
        if kind == b"IEND":
            break
        offset = end
    if idat_state == "before":
        raise ImageError.undecodable("PNG has no pixel data (no IDAT chunk)")
    if idat_bytes * _DEFLATE_MAX_RATIO + 1024 < expected:
        raise ImageError.undecodable("PNG pixel data is too short for the size its header declares")
    if idat_bytes > png_idat_bound(expected):
        raise ImageError.undecodable("PNG pixel data is larger than its header declares")


def check_jpeg_structure(data: bytes) -> None:
    """422 unless the JPEG's segments are framed within the file, a frame header precedes the first scan, and the
    scans run to an end-of-image marker. Entropy-coded data is scanned for markers, not decoded: corrupt Huffman
    codes are left to the worker's decode. Bytes between segments are skipped, as libjpeg does."""
    position, frame, scans = 2, False, 0
    size = len(data)
    while True:
        position = data.find(b"\xff", position)
        while 0 <= position < size - 1 and data[position + 1] == 0xFF:
            position += 1  # fill bytes
        if position < 0 or position + 2 > size:
            raise ImageError.undecodable("JPEG is truncated (no end-of-image marker)")
        marker = data[position + 1]
        if marker == 0xD9:
            break
        if marker in _JPEG_STANDALONE or marker == 0x00:
            position += 2
            continue
        if position + 4 > size:
            raise ImageError.undecodable("JPEG is truncated (a segment runs past the end of the file)")
        length = (data[position + 2] << 8) | data[position + 3]
        end = position + 2 + length
        if length < 2 or end > size:
            raise ImageError.undecodable("JPEG is truncated (a segment runs past the end of the file)")
        if marker in _JPEG_SOF:
            if frame:
                raise ImageError.undecodable("JPEG holds more than one frame header")
            frame = True
        elif marker == 0xDA:
            if not frame:
                raise ImageError.undecodable("JPEG scan comes before any frame header")
            scans += 1
            position = _end_of_scan(data, end)
            continue
        position = end
    if not scans:
        raise ImageError.undecodable("JPEG has no image data (no scan)")


def _end_of_scan(data: bytes, start: int) -> int:
    """Where the marker after the entropy-coded data from `start` begins (restart markers belong to the scan)."""
    while True:
        found = _JPEG_MARKER_IN_SCAN.search(data, start)
        if found is None:
            raise ImageError.undecodable("JPEG is truncated (no end-of-image marker)")
        if 0xD0 <= data[found.start() + 1] <= 0xD7:
            start = found.end()
            continue
        return found.start()
