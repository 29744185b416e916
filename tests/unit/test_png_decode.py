"""The ISA-L PNG decode gives Pillow's pixels: every colour type and bit depth, every filter type, Adam7, odd sizes."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

import cxr_model.decode as decode
from cxr_model.decode import _open_raster, raster_pixels
from cxr_model.png_decode import fast_png_decode
from tests.model_support import SAMPLES_DIR

_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# (colour type, bit depth) -> whether the fast path decodes it (palettes and 1-bit grey go to Pillow's own load)
CASES = {(0, 1): False, (0, 2): True, (0, 4): True, (0, 8): True, (0, 16): True, (2, 8): True, (2, 16): True,
         (3, 1): False, (3, 4): False, (3, 8): False, (4, 8): True, (4, 16): True, (6, 8): True, (6, 16): True}


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _filter_rows(rows: np.ndarray, bpp: int, first_filter: int) -> bytes:
    """Filtered scanlines, the filter type cycling 0..4 from row to row (so every type meets every neighbour)."""
    out, previous = [], np.zeros(rows.shape[1], np.int32)
    for index, row in enumerate(rows.astype(np.int32)):
        kind = (first_filter + index) % 5
        left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
        up_left = np.concatenate([np.zeros(bpp, np.int32), previous[:-bpp]])
        if kind == 0:
            predictor = np.zeros_like(row)
        elif kind == 1:
            predictor = left
        elif kind == 2:
            predictor = previous
        elif kind == 3:
            predictor = (left + previous) // 2
        else:
            estimate = left + previous - up_left
            pa, pb, pc = abs(estimate - left), abs(estimate - previous), abs(estimate - up_left)
            predictor = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, previous, up_left))
        out.append(bytes([kind]) + ((row - predictor) % 256).astype(np.uint8).tobytes())
        previous = row
    return b"".join(out)


def _scanlines(samples: np.ndarray, bit_depth: int) -> np.ndarray:
    """H x W x C integer samples packed to H x rowbytes (big-endian 16-bit, or sub-byte samples packed MSB first)."""
    height = samples.shape[0]
    if bit_depth == 16:
        return samples.astype(">u2").reshape(height, -1).view(np.uint8)
    flat = samples.reshape(height, -1).astype(np.uint8)
    if bit_depth == 8:
        return flat
    per_byte = 8 // bit_depth
    padded = np.zeros((height, -(-flat.shape[1] // per_byte) * per_byte), np.uint8)
    padded[:, :flat.shape[1]] = flat
    grouped = padded.reshape(height, -1, per_byte)
    shifts = np.arange(per_byte - 1, -1, -1) * bit_depth
    return (grouped << shifts).sum(axis=2).astype(np.uint8)


def encode_png(samples: np.ndarray, colour: int, bit_depth: int, interlace: bool, idat_pieces: int = 3,
               first_filter: int = 0) -> bytes:
    """A PNG written here, not by Pillow: chosen filters per row, Adam7 when asked, IDAT split into pieces."""
    height, width = samples.shape[:2]
    bpp = max(1, _CHANNELS[colour] * bit_depth // 8)
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.size:
            raw += _filter_rows(_scanlines(sub, bit_depth), bpp, first_filter)
    stream = zlib.compress(raw, 6)
    cuts = sorted({0, len(stream), *np.linspace(0, len(stream), idat_pieces + 1).astype(int)[1:-1]})
    idat = b"".join(_chunk(b"IDAT", stream[a:b]) for a, b in zip(cuts, cuts[1:]))
    extra = b""
    if colour == 3:
        extra = _chunk(b"PLTE", bytes(np.arange(256 * 3) * 7 % 256)[:3 * (1 << bit_depth)])
        extra += _chunk(b"tRNS", bytes([0, 128, 255]))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, int(interlace))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + idat + _chunk(b"IEND", b"")


def pillow_pixels(data: bytes, monkeypatch) -> np.ndarray:
    with monkeypatch.context() as patch:
        patch.setattr(decode, "fast_png_decode", lambda *args: None)
        return raster_pixels(data, "png").array


def _samples(height: int, width: int, colour: int, bit_depth: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top = (1 << bit_depth) - 1
    gradient = (np.add.outer(np.arange(height), np.arange(width)) * 37 % (top + 1))[..., None]
    noise = rng.integers(0, top + 1, size=(height, width, _CHANNELS[colour]))
    return np.where(rng.random((height, width, 1)) < 0.5, gradient, noise)  # runs and noise: every filter matters


@pytest.mark.parametrize("interlace", [False, True], ids=["progressive", "adam7"])
@pytest.mark.parametrize(("colour", "bit_depth"), sorted(CASES))
def test_fast_decode_equals_pillow(colour, bit_depth, interlace, monkeypatch):
    for seed, (height, width) in enumerate([(37, 41), (64, 33), (33, 130)]):  # odd sizes, partial Adam7 blocks
        data = encode_png(_samples(height, width, colour, bit_depth, seed), colour, bit_depth, interlace,
                          idat_pieces=1 + seed * 3, first_filter=seed)
        fast = fast_png_decode(data, _open_raster(data, "png"))
        assert (fast is not None) == CASES[(colour, bit_depth)]  # the fast path really ran where it should
        ours, pillows = raster_pixels(data, "png").array, pillow_pixels(data, monkeypatch)
        assert ours.dtype == pillows.dtype and ours.shape == pillows.shape
        assert np.array_equal(ours, pillows)
        if colour == 0 and bit_depth >= 8:  # and both are the samples written (the encoder here is right)
            assert np.array_equal(ours, _samples(height, width, colour, bit_depth, seed)[..., 0])


@pytest.mark.parametrize("name", ["00000001_000.png", "00027426_000.png"])
def test_fast_decode_equals_pillow_on_the_sample_radiographs(name, monkeypatch):
    data = (SAMPLES_DIR / name).read_bytes()
    assert fast_png_decode(data, _open_raster(data, "png")) is not None
    assert np.array_equal(raster_pixels(data, "png").array, pillow_pixels(data, monkeypatch))


def test_a_stream_inflating_past_the_rows_is_cut_at_the_rows_as_pillow_does(monkeypatch):
    samples = _samples(40, 40, 0, 16, 7)
    data = encode_png(samples, 0, 16, False)
    stream = zlib.compress(_filter_rows(_scanlines(samples, 16), 2, 0) + b"\0" * 5_000_000)  # a bomb's tail
    longer = data[:33] + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")
    assert np.array_equal(raster_pixels(longer, "png").array, pillow_pixels(longer, monkeypatch))
    assert np.array_equal(raster_pixels(longer, "png").array, samples[..., 0])


@pytest.mark.parametrize("damage", ["truncated stream", "corrupt stream"])
def test_a_broken_stream_gets_pillows_verdict(damage, monkeypatch):
    samples = _samples(48, 48, 0, 8, 3)
    stream = zlib.compress(_filter_rows(_scanlines(samples, 8), 1, 0))
    stream = stream[:len(stream) // 2] if damage == "truncated stream" else stream[:20] + b"\xff" * 8 + stream[28:]
    data = encode_png(samples, 0, 8, False)[:33] + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")
    assert fast_png_decode(data, _open_raster(data, "png")) is None
    with pytest.raises(decode.ImageError) as ours:
        raster_pixels(data, "png")
    with pytest.raises(decode.ImageError) as pillows:
        pillow_pixels(data, monkeypatch)
    assert ours.value.code == pillows.value.code == "UNDECODABLE_IMAGE"


@pytest.mark.parametrize("header", [b"\x88\x1c", b"\x48\x89"], ids=["64k-window", "4k-window"])
def test_a_zlib_header_isal_would_judge_otherwise_goes_to_pillow(header, monkeypatch):
    """zlib refuses a window over 32 KiB (ISA-L decodes it) and enforces a smaller declared window (ISA-L does not):
    such streams take Pillow's own load, whatever its verdict."""
    samples = _samples(48, 48, 0, 8, 4)
    stream = header + zlib.compress(_filter_rows(_scanlines(samples, 8), 1, 0))[2:]
    data = encode_png(samples, 0, 8, False)[:33] + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")
    assert fast_png_decode(data, _open_raster(data, "png")) is None
    try:
        pillows = pillow_pixels(data, monkeypatch)
    except decode.ImageError:
        with pytest.raises(decode.ImageError):
            raster_pixels(data, "png")
    else:
        assert np.array_equal(raster_pixels(data, "png").array, pillows)
