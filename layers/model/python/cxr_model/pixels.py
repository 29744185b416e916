"""Shared limits and the decoded-pixels record used by the raster and DICOM decoders."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ImageError

MAX_PIXELS = 50_000_000  # decompression-bomb cap, checked from the header before any pixel is decoded
MIN_SIDE = 32
MAX_ASPECT = 4.0
JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass
class Pixels:
    """Decoded integer pixels (H x W, or H x W x C averaged over C) and the maximum value of their bit depth; PNG/JPEG
    colour arrives as interleaved H x W x 3 (decode.raster_pixels).

    invert: the image is maxval - array (MONOCHROME1); preprocessing folds it into normalisation, so a decoder
    can hand over its buffer without an inverted full-size copy.
    """
    array: np.ndarray
    maxval: int
    invert: bool = False

    def image(self) -> np.ndarray:
        """The image itself, maxval - array where inverted (a full-size copy: for checks and tests, not the worker)."""
        return self.maxval - self.array if self.invert else self.array


def check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageError.undecodable(f"image of {width}x{height} pixels exceeds the {MAX_PIXELS // 1_000_000} MP limit")
    if min(width, height) < MIN_SIDE:
        raise ImageError.undecodable(f"image of {width}x{height} pixels is too small (minimum side {MIN_SIDE})")
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise ImageError.undecodable(f"image of {width}x{height} pixels has an implausible aspect ratio")


