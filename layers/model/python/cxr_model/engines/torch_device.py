"""GPU serving pipeline: decode and crop on the CPU (the worker's thread pool), the exact resize and the forward pass
batched on the engine's device, so the CPU cores only decode."""
from __future__ import annotations

import numpy as np
import torch

from ..preprocess import Cropped, crop, decode_pixels
from .torch_resize import resize_square_batch

SIZE = 224


def to_device(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """Integer pixels onto the device in their own width; uint16 (most DICOM and 16-bit PNG) travels as its int16 bit
    pattern and is widened there, since torch's CUDA kernels do not all take uint16."""
    if pixels.dtype == np.uint16:
        return torch.from_numpy(pixels.view(np.int16)).to(device, non_blocking=True).to(torch.int32) & 0xFFFF
    if pixels.dtype.kind == "u" and pixels.dtype.itemsize > 1:
        pixels = pixels.astype(np.int64)
    return torch.from_numpy(np.ascontiguousarray(pixels)).to(device, non_blocking=True)


def resize_batch(items: list[Cropped], device: torch.device, size: int = SIZE) -> torch.Tensor:
    """(N, 1, size, size) float32 on `device`, in the order given; images of one crop size and dtype share a
    resize (radiographs come in a handful of detector sizes)."""
    out = torch.empty((len(items), 1, size, size), dtype=torch.float32, device=device)
    groups: dict[tuple, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault((item.pixels.shape, item.pixels.dtype.str), []).append(index)
    for indices in groups.values():
        pixels = to_device(np.stack([items[i].pixels for i in indices]), device)
        scales = torch.tensor([items[i].scale for i in indices], dtype=torch.float64)
        offsets = torch.tensor([items[i].offset for i in indices], dtype=torch.float64)
        out[indices, 0] = resize_square_batch(pixels, size, scales, offsets)
    return out


class DevicePipeline:
    """preprocess() is the CPU part (Cropped, validated as the CPU path validates); scores() does the rest on the
    engine's device (a TorchEngine)."""

    def __init__(self, engine):
        self.engine = engine

    def preprocess(self, data: bytes) -> Cropped:
        return crop(decode_pixels(data))

    def scores(self, items: list[Cropped]) -> np.ndarray:
        return self.engine.run_tensor(resize_batch(items, self.engine.device)).cpu().numpy()
