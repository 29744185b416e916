"""The exact banded resize (resize.BandedOperator) on torch tensors: a batch of same-size images on any device."""
from __future__ import annotations

import functools

import numpy as np
import torch

from ..resize import BandedOperator, banded_operator


@functools.lru_cache(maxsize=64)
def _device_bands(n_in: int, n_out: int, device: str, dtype: torch.dtype) -> tuple:
    operator = banded_operator(n_in, n_out)
    return tuple((band.start, band.stop, band.first, band.last,
                  torch.from_numpy(np.array(band.weights)).to(device=device, dtype=dtype)) for band in operator.bands)


def _bands(operator: BandedOperator, device: torch.device, dtype: torch.dtype) -> tuple:
    return _device_bands(operator.n_in, operator.n_out, str(device), dtype)


def apply_rows(operator: BandedOperator, images: torch.Tensor) -> torch.Tensor:
    """operator @ image for each (H, W) or (H, W, C) image of a batch, in float32 as resize.apply_rows computes it:
    one block of rows converted (and summed over colour, in channel order) at a time, then one band product."""
    batch, width = images.shape[0], images.shape[2]
    result = torch.zeros((batch, operator.n_out, width), dtype=torch.float32, device=images.device)
    for start, stop, first, last, weights in _bands(operator, images.device, torch.float32):
        rows = images[:, start:stop].to(torch.float32)
        if rows.dim() == 4:
            summed = rows[..., 0] + rows[..., 1]
            for channel in range(2, rows.shape[-1]):
                summed += rows[..., channel]
            rows = summed
        result[:, first:last] += torch.matmul(weights, rows)
    return result


def apply_columns(operator: BandedOperator, reduced: torch.Tensor) -> torch.Tensor:
    """reduced @ operator.T in float64, as resize.apply_columns (the row pass's output is small: 224 x W)."""
    reduced = reduced.to(torch.float64)
    result = torch.zeros((*reduced.shape[:-1], operator.n_out), dtype=torch.float64, device=reduced.device)
    for start, stop, first, last, weights in _bands(operator, reduced.device, torch.float64):
        result[..., first:last] += torch.matmul(reduced[..., start:stop], weights.T)
    return result


def resize_square_batch(images: torch.Tensor, size: int, scales: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """resize.resize_square for N same-size square crops (N, S, S[, C]): (N, size, size) float32, each image with its
    own affine map (scale * pixel + offset), applied after the resize as the CPU operator does."""
    channels = images.shape[3] if images.dim() == 4 else 1
    rows, cols = banded_operator(images.shape[1], size), banded_operator(images.shape[2], size)
    resized = apply_columns(cols, apply_rows(rows, images))
    sums = torch.outer(torch.from_numpy(np.array(rows.sums)), torch.from_numpy(np.array(cols.sums))).to(resized.device)
    scales = scales.to(device=resized.device, dtype=torch.float64)[:, None, None] / channels
    offsets = offsets.to(device=resized.device, dtype=torch.float64)[:, None, None]
    return (scales * resized + offsets * sums).to(torch.float32)
