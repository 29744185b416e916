"""PNG IDAT-versus-IHDR check: inflate (streaming, no pixels kept) and compare with the size the header declares."""
from __future__ import annotations

import struct
import zlib

from .errors import ImageError

_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_STEP = 1 << 20


def _expected_bytes(width: int, height: int, bit_depth: int, color_type: int, interlace: int) -> int:
    bits = _CHANNELS[color_type] * bit_depth

    def size(w: int, h: int) -> int:
        return h * (1 + (w * bits + 7) // 8) if w > 0 and h > 0 else 0

    if not interlace:
        return size(width, height)
    return sum(size((width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy) for x0, y0, dx, dy in _ADAM7)


def check_png_payload(data: bytes) -> None:
    """422 unless the zlib stream in IDAT is complete and inflates to exactly what IHDR declares."""
    try:
        width, height, bit_depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
        expected = _expected_bytes(width, height, bit_depth, color_type, interlace)
    except (struct.error, KeyError):
        raise ImageError.undecodable("PNG header is malformed") from None
    inflater, produced, offset = zlib.decompressobj(), 0, 8
    try:
        while offset + 8 <= len(data):
            length, kind = struct.unpack(">I4s", data[offset:offset + 8])
            if kind == b"IDAT":
                pending = data[offset + 8:offset + 8 + length]
                while pending:
                    produced += len(inflater.decompress(pending, _STEP))
                    pending = inflater.unconsumed_tail
                    if produced > expected:
                        raise ImageError.undecodable("PNG pixel data is larger than its header declares")
            elif kind == b"IEND":
                break
            offset += 12 + length
        produced += len(inflater.flush())
    except zlib.error:
        raise ImageError.undecodable("PNG pixel data is not a valid zlib stream") from None
    if not inflater.eof or produced != expected:
        raise ImageError.undecodable("PNG pixel data does not match the size its header declares")
