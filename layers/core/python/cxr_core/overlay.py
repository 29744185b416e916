"""PNG in plain Python (the poll function ships no NumPy or Pillow): the model input in grey, a heatmap overlaid on it."""
from __future__ import annotations

import struct
import zlib

from cxr_core.heatmaps import GRID, decode_heatmap

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_GREY, _RGB = 0, 2


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def encode_png(pixels: bytes, width: int, height: int, channels: int = 1, level: int = 6) -> bytes:
    """8-bit grey (channels=1) or RGB (3), every row with filter 0 (none); level: zlib's."""
    stride = width * channels
    if len(pixels) != stride * height:
        raise ValueError(f"{len(pixels)} bytes are not {height} rows of {stride}")
    rows = b"".join(b"\x00" + pixels[row * stride:(row + 1) * stride] for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, _GREY if channels == 1 else _RGB, 0, 0, 0)
    return _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows, level)) + _chunk(b"IEND", b"")


def decode_grey_png(data: bytes) -> tuple[bytes, int, int]:
    """(pixels, width, height) of a PNG that encode_png wrote in grey: the model inputs this service stores."""
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PNG")
    offset, idat, header = len(_SIGNATURE), b"", None
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind, payload = data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", payload)
        elif kind == b"IDAT":
            idat += payload
    if header is None or header[2:5] != (8, _GREY, 0):
        raise ValueError("not an 8-bit grey PNG")
    width, height = header[0], header[1]
    rows = zlib.decompress(idat)
    if any(rows[row * (width + 1)] != 0 for row in range(height)):
        raise ValueError("row filters other than none are not read here")
    return b"".join(rows[row * (width + 1) + 1:(row + 1) * (width + 1)] for row in range(height)), width, height


def _axis(size: int) -> list[tuple[int, int, float]]:
    """Bilinear sampling of GRID cells onto `size` pixels, cell centres at (i + 0.5) * size / GRID."""
    taps = []
    for pixel in range(size):
        position = min(max((pixel + 0.5) * GRID / size - 0.5, 0.0), GRID - 1.0)
        low = min(int(position), GRID - 2)
        taps.append((low, low + 1, position - low))
    return taps


def upsample(grid: list[list[float]], size: int) -> bytes:
    """A GRID x GRID map stretched onto size x size pixels, scaled onto 0..255 between its own min and max."""
    low = min(min(row) for row in grid)
    spread = (max(max(row) for row in grid) - low) or 1.0
    taps = _axis(size)
    across = [[row[a] + (row[b] - row[a]) * w for a, b, w in taps] for row in grid]  # GRID rows x size
    out = bytearray()
    for a, b, w in taps:
        top, bottom = across[a], across[b]
        out.extend(int(255 * (t + (u - t) * w - low) / spread) for t, u in zip(top, bottom))
    return bytes(out)


def _colormap() -> tuple[bytes, bytes, bytes]:
    """Blue - cyan - green - yellow - red over 0..255 (the peak in full red), one table per channel."""
    def channel(shape) -> bytes:
        return bytes(int(255 * min(max(shape(value / 255), 0.0), 1.0)) for value in range(256))
    return (channel(lambda x: 4 * x - 2), channel(lambda x: min(4 * x, 4 - 4 * x)), channel(lambda x: 2 - 4 * x))


_RED, _GREEN, _BLUE = _colormap()


def overlay_png(grey: bytes, record: dict, label: str, opacity: float, size: int = 224) -> bytes:
    """label's map in colour over the grey model input; opacity 0 is the input alone, 1 the map alone."""
    heat = upsample(decode_heatmap(record, label), size)
    keep = bytes(int((1 - opacity) * g) for g in range(256))
    base = int.from_bytes(grey.translate(keep), "big")
    rgb = bytearray(len(grey) * 3)
    for offset, table in enumerate((_RED, _GREEN, _BLUE)):
        tint = bytes(int(opacity * table[v]) for v in range(256))
        # both terms are floors of shares of 255, so their byte-wise sum never carries into the next byte
        mixed = (base + int.from_bytes(heat.translate(tint), "big")).to_bytes(len(grey), "big")
        rgb[offset::3] = mixed
    return encode_png(bytes(rgb), size, size, channels=3)
