"""NumPy re-implementation of torchxrayvision's XRayCenterCrop + XRayResizer (skimage) without scipy/skimage."""
from __future__ import annotations

import math

import numpy as np

_TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter default


def center_crop_box(height: int, width: int) -> tuple[int, int, int]:
    """(top, left, size) of XRayCenterCrop's square crop on the long dimension."""
    size = min(height, width)
    return height // 2 - size // 2, width // 2 - size // 2, size


def _gaussian_matrix(n: int, sigma: float) -> np.ndarray:
    """n x n matrix of scipy's gaussian_filter1d with mode grid-constant (cval 0)."""
    if sigma <= 1e-15:
        return np.eye(n)
    radius = int(_TRUNCATE * float(sigma) + 0.5)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 / (sigma * sigma) * offsets.astype(np.float64) ** 2)
    weights /= weights.sum()
    matrix = np.zeros((n, n))
    rows = np.arange(n)
    for offset, weight in zip(offsets, weights):
        cols = rows + offset
        keep = (cols >= 0) & (cols < n)
        matrix[rows[keep], cols[keep]] = weight
    return matrix


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """n_out x n_in matrix of scipy's zoom(order=1, grid_mode=True, mode grid-constant)."""
    coords = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    lower = np.floor(coords).astype(np.int64)
    frac = coords - lower
    matrix = np.zeros((n_out, n_in))
    for index, weight in ((lower, 1.0 - frac), (lower + 1, frac)):
        keep = (index >= 0) & (index < n_in)
        np.add.at(matrix, (np.arange(n_out)[keep], index[keep]), weight[keep])
    return matrix


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The 1-D operator of skimage.transform.resize(mode='constant', anti_aliasing default) along one axis."""
    factor = n_in / n_out
    smoothing = _gaussian_matrix(n_in, max(0.0, (factor - 1) / 2)) if factor > 1 else np.eye(n_in)
    return _bilinear_matrix(n_in, n_out) @ smoothing


_CHUNK = 256  # columns per float64 block: bounds the temporary memory on clinical-size images


def resize_square(image: np.ndarray, size: int = 224) -> np.ndarray:
    """Resize a 2-D float image to size x size as skimage.transform.resize does; returns float32."""
    rows = resize_matrix(image.shape[0], size)
    cols = resize_matrix(image.shape[1], size)
    partial = np.empty((size, image.shape[1]))
    for start in range(0, image.shape[1], _CHUNK):
        block = image[:, start:start + _CHUNK].astype(np.float64)
        partial[:, start:start + _CHUNK] = rows @ block
    return (partial @ cols.T).astype(np.float32)
