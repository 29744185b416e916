"""'fast' preprocessing: reduce the image by an integer factor first, then apply the reference operator to it.

torchxrayvision's crop + Gaussian + bilinear resize is linear: output = W_rows . crop . W_cols^T with W of shape
224 x S. Here the image is first reduced by a factor s (a JPEG DCT-domain draft decode, or an exact block mean for
PNG/DICOM) and W is summed over each block of s columns, so every output pixel keeps the reference weights,
zero-padding at the crop edges included; the only approximation is treating each block as flat. s is capped by
the reference's own anti-aliasing blur (reduction_budget), which keeps the deviation within the bounds tested.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .decode import _open_raster, raster_pixels, sniff_format
from .dicom import dataset_pixels, dicom_dataset, dicom_jpeg_frame
from .errors import ImageError
from .preprocess import _check_range, exact_from_pixels, normalize
from .resize import apply_separable, center_crop_box, resize_matrix


SAFETY = 1.5  # measured: budget/1 gives mean |diff| ~3.1 on 2,500-3,000 px textured images, budget/1.5 ~1.3


def reduction_budget(crop: int, size: int = 224) -> float:
    """Largest reduction factor whose own blur stays well inside the reference's anti-aliasing blur.

    A block of s pixels held flat and read back through bilinear weights acts like a box of variance about
    (s^2 - 1)/12 + s^2/6 full-resolution pixels^2; the reference blurs with sigma_full^2 = ((S/224 - 1)/2)^2.
    """
    sigma_full = max(0.0, (crop / size - 1) / 2)
    return 2 * math.sqrt(sigma_full ** 2 + 1 / 12) / SAFETY


@functools.lru_cache(maxsize=64)  # radiographs come in a handful of detector sizes
def _block_operator(reduced_len: int, factor: int, offset: int, crop: int, size: int) -> np.ndarray:
    """size x reduced_len: the reference operator on [offset, offset + crop), summed over blocks of `factor`."""
    reference = resize_matrix(crop, size)
    full = np.zeros((size, reduced_len * factor))
    stop = min(offset + crop, full.shape[1])
    full[:, offset:stop] = reference[:, :stop - offset]
    if stop < offset + crop:  # pixels trimmed off the last partial block: credit them to the last block
        full[:, stop - 1] += reference[:, stop - offset:].sum(axis=1)
    operator = full.reshape(size, reduced_len, factor).sum(axis=2)
    operator.flags.writeable = False
    return operator


def _block_mean(crop: np.ndarray, factor: int) -> np.ndarray:
    """Exact mean over factor x factor blocks (and over colour channels) without a full-size float copy."""
    blocks = crop.shape[0] // factor
    trimmed = crop[:blocks * factor, :blocks * factor]
    accumulator = np.zeros((blocks,) + trimmed.shape[1:], np.float32)
    for phase in range(factor):
        accumulator += trimmed[phase::factor]
    reduced = accumulator.reshape(blocks, blocks, factor, *trimmed.shape[2:]).sum(axis=2)
    if reduced.ndim == 3:
        reduced = reduced.mean(2)
    return reduced / np.float32(factor * factor)


def _fast_from_pixels(pixels, size: int) -> np.ndarray:
    top, left, crop = center_crop_box(*pixels.array.shape[:2])
    factor = int(reduction_budget(crop, size))
    if factor < 2:
        return exact_from_pixels(pixels, size)
    _check_range(pixels)
    reduced = normalize(_block_mean(pixels.array[top:top + crop, left:left + crop], factor), pixels.maxval)
    operator = _block_operator(reduced.shape[0], factor, 0, crop, size)
    return apply_separable(reduced, operator, operator)[None, ...]


def _fast_jpeg(data: bytes, size: int, exact, maxval: int | None = None, invert: bool = False) -> np.ndarray:
    """JPEG stream (a file, or a DICOM's baseline frame) decoded at 1/2 or 1/4 scale; `exact` is the fallback."""
    width, height = _open_raster(data, "jpeg").size
    top, left, crop = center_crop_box(height, width)
    # libjpeg scales by 1/2, 1/4 or 1/8; 1/8 is DC-only and rounds each 8x8 mean to an integer, which measured
    # ~4x the deviation of 1/4 (mean |diff| 3.8 vs 1.0 on a 2400 px radiograph) for a few ms, so stop at 1/4.
    scale = 2 ** min(2, int(math.log2(reduction_budget(crop, size))))
    if scale < 2:
        return exact()
    pixels = raster_pixels(data, "jpeg", draft_size=(width // scale, height // scale))  # PIL: scale = orig // req
    scale = 2 ** round(math.log2(width / pixels.array.shape[1]))  # what libjpeg actually did
    maxval = pixels.maxval if maxval is None else maxval
    reduced = pixels.array.astype(np.float32)
    if reduced.ndim == 3:
        reduced = reduced.mean(2)
    if invert:  # MONOCHROME1, as read_xray_dcm does on the integers
        reduced = np.float32(maxval) - reduced
    reduced = normalize(reduced, maxval)
    rows = _block_operator(reduced.shape[0], scale, top, crop, size)
    cols = _block_operator(reduced.shape[1], scale, left, crop, size)
    return apply_separable(reduced, rows, cols)[None, ...]


def preprocess_fast(data: bytes, size: int = 224) -> np.ndarray:
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError.unsupported("the upload is not a PNG, JPEG or DICOM image")
    if fmt == "jpeg":
        return _fast_jpeg(data, size, lambda: exact_from_pixels(raster_pixels(data, "jpeg"), size))
    if fmt == "png":
        return _fast_from_pixels(raster_pixels(data, fmt), size)
    ds = dicom_dataset(data)
    frame = dicom_jpeg_frame(ds)
    if frame is not None:
        if (_open_raster(frame, "jpeg").size) != (int(ds.Columns), int(ds.Rows)):
            raise ImageError.undecodable("DICOM JPEG frame does not match the declared image size")
        return _fast_jpeg(frame, size, lambda: exact_from_pixels(dataset_pixels(ds), size),
                          maxval=2 ** int(ds.BitsStored) - 1, invert=ds.PhotometricInterpretation == "MONOCHROME1")
    return _fast_from_pixels(dataset_pixels(ds), size)
