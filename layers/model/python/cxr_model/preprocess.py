"""Image bytes -> the (1, 224, 224) float32 tensor torchxrayvision's DenseNet expects."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .decode import raster_pixels, sniff_format
from .dicom import dicom_pixels
from .pixels import Pixels
from .errors import ImageError
from .resize import center_crop_box, resize_square

PREPROCESS_MODES = ("exact",)  # 'fast' (issue 9) was removed in issue 14: it moved calibrated scores by up to 0.17


def normalize(array: np.ndarray, maxval: int) -> np.ndarray:
    """xrv.utils.normalize: [0, maxval] -> [-1024, 1024] in float32, same arithmetic."""
    return (2 * (array.astype(np.float32) / maxval) - 1.0) * 1024


def _check_range(pixels: Pixels) -> None:
    """xrv.utils.normalize raises where the image's maximum exceeds maxval; for an inverted image, maxval - array,
    that is where array < 0 (signed) or, unsigned, where array > maxval (the subtraction wraps around)."""
    array, maxval = pixels.array, pixels.maxval
    info = np.iinfo(array.dtype)
    if pixels.invert and info.min < 0:
        above = array.min() < 0
    else:
        above = info.max > maxval and array.max() > maxval
    if above:
        raise ImageError.undecodable(f"pixel values exceed the declared bit depth (max {maxval})")


@dataclass(frozen=True)
class Cropped:
    """The square crop of the integer pixels and the affine map (normalize, MONOCHROME1's inversion) still to apply:
    everything before the resize, which can then run here (resize_square) or batched on a GPU (engines.torch_resize)."""
    pixels: np.ndarray
    scale: float
    offset: float


def decode_pixels(data: bytes) -> Pixels:
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError.unsupported("the upload is not a PNG, JPEG or DICOM image")
    return dicom_pixels(data) if fmt == "dicom" else raster_pixels(data, fmt)


def preprocess_exact(data: bytes, size: int = 224) -> np.ndarray:
    """torchxrayvision's recommended pipeline, numerically identical up to float rounding (~1e-4)."""
    return exact_from_pixels(decode_pixels(data), size)


def crop(pixels: Pixels) -> Cropped:
    """normalize -> mean over RGB -> XRayCenterCrop -> XRayResizer, cropping first (the first two are per pixel).

    normalize is affine (x * 2048 / maxval - 1024; MONOCHROME1's maxval - x flips its sign) and the mean and the
    resize are linear, so the resize runs on the integer pixels and the affine map on its 224 x 224 result.
    """
    _check_range(pixels)
    top, left, side = center_crop_box(*pixels.array.shape[:2])
    scale, offset = 2048.0 / pixels.maxval, -1024.0
    if pixels.invert:
        scale, offset = -scale, -offset
    return Cropped(pixels.array[top:top + side, left:left + side], scale, offset)


def exact_from_pixels(pixels: Pixels, size: int = 224) -> np.ndarray:
    cropped = crop(pixels)
    return resize_square(cropped.pixels, size, cropped.scale, cropped.offset)[None, ...]


def preprocess(data: bytes, mode: str = "exact", size: int = 224) -> np.ndarray:
    if mode == "exact":
        return preprocess_exact(data, size)
    raise ValueError(f"unknown preprocess mode {mode!r}; expected one of {PREPROCESS_MODES}")
