"""NumPy re-implementation of torchxrayvision's XRayCenterCrop + XRayResizer (skimage) without scipy/skimage."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

_TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter default
_BLOCK = 64  # input rows per band block: a float block of a clinical image row stays in the L2 cache


def center_crop_box(height: int, width: int) -> tuple[int, int, int]:
    """(top, left, size) of XRayCenterCrop's square crop on the long dimension."""
    size = min(height, width)
    return height // 2 - size // 2, width // 2 - size // 2, size


def _gaussian_kernel(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and weights of scipy.ndimage.gaussian_filter1d's kernel."""
    if sigma <= 1e-15:
        return np.zeros(1, np.int64), np.ones(1)
    radius = int(_TRUNCATE * float(sigma) + 0.5)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 / (sigma * sigma) * offsets.astype(np.float64) ** 2)
    return offsets, weights / weights.sum()


def resample_matrix(n_in: int, coords: np.ndarray, sigma: float) -> np.ndarray:
    """len(coords) x n_in operator: Gaussian prefilter (zero outside [0, n_in)), then linear interpolation at coords.

    This is scipy's gaussian_filter1d(mode='constant') followed by map_coordinates(order=1, mode='grid-constant'),
    composed without ever forming an n_in x n_in matrix.
    """
    offsets, kernel = _gaussian_kernel(sigma)
    lower = np.floor(coords).astype(np.int64)
    frac = coords - lower
    rows = np.arange(len(coords))
    matrix = np.zeros((len(coords), n_in))
    for tap, tap_weight in ((lower, 1.0 - frac), (lower + 1, frac)):
        inside = (tap >= 0) & (tap < n_in)  # interpolation taps beyond the edge read the zero padding
        for offset, weight in zip(offsets, kernel):
            source = tap + offset
            keep = inside & (source >= 0) & (source < n_in)
            matrix[rows[keep], source[keep]] += tap_weight[keep] * weight  # one entry per row: no collisions
    return matrix


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The 1-D operator of skimage.transform.resize(mode='constant', anti_aliasing default) along one axis."""
    factor = n_in / n_out
    coords = (np.arange(n_out, dtype=np.float64) + 0.5) * factor - 0.5
    return resample_matrix(n_in, coords, max(0.0, (factor - 1) / 2) if factor > 1 else 0.0)


@dataclass(frozen=True)
class Band:
    """Input rows [start, stop) feed output rows [first, last) with these weights: one dense block of the band."""
    start: int
    stop: int
    first: int
    last: int
    weights: np.ndarray


@dataclass(frozen=True)
class BandedOperator:
    """A resize_matrix cut into blocks of _BLOCK inputs; each block keeps only the outputs it feeds.

    Each output row reads ~2 x 4 sigma + 2 input rows, so this skips the multiplications by zero of the dense
    224 x N product. `sums` (the row sums, < 1 at the zero-padded edges) lets an affine map of the pixels
    (normalisation) be applied after the resize instead of to every input pixel.
    """
    n_in: int
    n_out: int
    bands: tuple[Band, ...]
    sums: np.ndarray


@functools.lru_cache(maxsize=32)  # radiographs come in a handful of detector sizes
def banded_operator(n_in: int, n_out: int) -> BandedOperator:
    """resize_matrix(n_in, n_out) as float32 blocks of _BLOCK input rows."""
    matrix = resize_matrix(n_in, n_out)
    bands = []
    for start in range(0, n_in, _BLOCK):
        stop = min(start + _BLOCK, n_in)
        touched = np.flatnonzero(matrix[:, start:stop].any(axis=1))
        if touched.size:
            first, last = int(touched[0]), int(touched[-1]) + 1
            weights = np.ascontiguousarray(matrix[first:last, start:stop], dtype=np.float32)
            weights.flags.writeable = False
            bands.append(Band(start, stop, first, last, weights))
    sums = matrix.sum(axis=1)
    sums.flags.writeable = False
    return BandedOperator(n_in, n_out, tuple(bands), sums)


def apply_rows(operator: BandedOperator, matrix: np.ndarray, channels: int = 1) -> np.ndarray:
    """operator @ matrix in float32 for a 2-D array of any dtype and strides, converting one block of rows at a time;
    with channels > 1 the columns are interleaved pixels and each block is first summed over them (H x W result).

    The conversion writes into one reused block buffer, so no full-size float copy of the input ever exists; the
    channel sum of integers in float32 is exact, and the band multiplies one plane instead of C.
    """
    width = matrix.shape[1] // channels
    result = np.zeros((operator.n_out, width), np.float32)
    block = np.empty((_BLOCK, matrix.shape[1]), np.float32)
    summed = np.empty((_BLOCK, width), np.float32) if channels > 1 else None
    # reused too: a fresh product per band would be mmap'ed and page-faulted every time
    product = np.empty((max(band.last - band.first for band in operator.bands), width), np.float32)
    for band in operator.bands:
        rows = block[:band.stop - band.start]
        np.copyto(rows, matrix[band.start:band.stop], casting="unsafe")
        if summed is not None:
            pixels = rows.reshape(len(rows), width, channels)
            rows = np.add(pixels[:, :, 0], pixels[:, :, 1], out=summed[:len(rows)])
            for channel in range(2, channels):
                rows += pixels[:, :, channel]
        into = product[:band.last - band.first]
        np.matmul(band.weights, rows, out=into)
        result[band.first:band.last] += into
    return result


def apply_columns(operator: BandedOperator, matrix: np.ndarray) -> np.ndarray:
    """matrix @ operator.T for the row pass's small output, in float64 (it costs little there: 224 x W values)."""
    matrix = matrix.astype(np.float64)
    result = np.zeros((matrix.shape[0], operator.n_out))
    for band in operator.bands:
        result[:, band.first:band.last] += matrix[:, band.start:band.stop] @ band.weights.T
    return result


def resize_square(image: np.ndarray, size: int = 224, scale: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """skimage.transform.resize to size x size of (scale * image + offset), averaged over colour if H x W x C.

    The resize is linear, so it runs on the raw pixels and the affine map is applied to the 224 x 224 result:
    operator(a x + b) = a operator(x) + b operator(1). Rows go first, through the band, on an H x (W * C) view
    whose blocks are summed over colour as they are converted; the 1 / C of the mean joins the scale.
    """
    channels = image.shape[2] if image.ndim == 3 else 1
    reduced = apply_rows(banded_operator(image.shape[0], size), image.reshape(image.shape[0], -1), channels)
    scale /= channels
    rows, cols = banded_operator(image.shape[0], size), banded_operator(image.shape[1], size)
    resized = apply_columns(cols, reduced)
    return (scale * resized + offset * np.outer(rows.sums, cols.sums)).astype(np.float32)
