"""NumPy re-implementation of torchxrayvision's XRayCenterCrop + XRayResizer (skimage) without scipy/skimage."""
from __future__ import annotations

import numpy as np

_TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter default
_CHUNK = 256  # columns per float64 block: bounds the temporary memory on clinical-size images


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


def apply_separable(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, prepare=None) -> np.ndarray:
    """rows @ prepare(image) @ cols.T in float64, in column blocks; returns float32.

    `prepare` maps a block of columns to 2-D float values (e.g. normalise + mean over RGB), so a clinical-size
    image is never held as a whole float copy.
    """
    partial = np.empty((rows.shape[0], image.shape[1]))
    for start in range(0, image.shape[1], _CHUNK):
        block = image[:, start:start + _CHUNK]
        partial[:, start:start + _CHUNK] = rows @ (prepare(block) if prepare else block).astype(np.float64)
    return (partial @ cols.T).astype(np.float32)


def resize_square(image: np.ndarray, size: int = 224, prepare=None) -> np.ndarray:
    """Resize an image to size x size as skimage.transform.resize does; returns float32 (see apply_separable)."""
    return apply_separable(image, resize_matrix(image.shape[0], size), resize_matrix(image.shape[1], size), prepare)
