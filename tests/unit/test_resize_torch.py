"""The exact banded resize on torch tensors (the GPU path), checked on CPU tensors against the NumPy operator."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cxr_model.engines.torch_device import resize_batch
from cxr_model.preprocess import Cropped, crop, decode_pixels, preprocess
from cxr_model.resize import resize_square
from cxr_model.engines.torch_resize import resize_square_batch
from tests.model_support import SAMPLE_FILES, large_radiographs

TOLERANCE = 2e-3  # on the [-1024, 1024] scale: float32 rounding of two products in another order (scores: < 1e-6)


def _images(shape, dtype, count, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(dtype).max, size=(count, *shape), dtype=dtype)


@pytest.mark.parametrize("shape, dtype", [((512, 512), np.uint8), ((1031, 1031), np.uint16), ((300, 300, 3), np.uint8),
                                          ((224, 224), np.uint16), ((200, 200), np.uint8)])
def test_a_batch_equals_the_numpy_operator_image_by_image(shape, dtype):
    images = _images(shape, dtype, 3)
    scales, offsets = [2048 / np.iinfo(dtype).max, -2048 / np.iinfo(dtype).max, 1.0], [-1024.0, 1024.0, 0.0]
    batch = resize_square_batch(torch.from_numpy(images), 224, torch.tensor(scales, dtype=torch.float64),
                                torch.tensor(offsets, dtype=torch.float64)).numpy()
    assert batch.shape == (3, 224, 224) and batch.dtype == np.float32
    for image, scale, offset, ours in zip(images, scales, offsets, batch):
        expected = resize_square(image, 224, scale, offset)
        assert np.abs(ours - expected).max() <= TOLERANCE * max(1.0, np.abs(expected).max() / 1024)


def test_mixed_sizes_keep_their_order_and_match_the_cpu_pipeline():
    datas = [path.read_bytes() for path in SAMPLE_FILES]
    items = [crop(decode_pixels(data)) for data in datas]
    assert len({item.pixels.shape for item in items}) > 1  # several groups, interleaved
    ours = resize_batch(items, torch.device("cpu")).numpy()
    expected = np.stack([preprocess(data) for data in datas])
    assert ours.shape == expected.shape and np.abs(ours - expected).max() <= TOLERANCE


def test_clinical_size_inputs_in_every_format_match_the_cpu_pipeline():
    datas = list(large_radiographs().values())
    ours = resize_batch([crop(decode_pixels(data)) for data in datas], torch.device("cpu")).numpy()
    expected = np.stack([preprocess(data) for data in datas])
    assert np.abs(ours - expected).max() <= TOLERANCE


def test_an_empty_group_list_gives_an_empty_batch():
    assert resize_batch([], torch.device("cpu")).shape == (0, 1, 224, 224)
    one = Cropped(np.full((64, 64), 255, np.uint8), 2048 / 255, -1024.0)
    assert np.allclose(resize_batch([one], torch.device("cpu")).numpy()[0, 0, 100:120, 100:120], 1024, atol=1e-2)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.uint32])
def test_pixels_reach_the_device_with_their_values(dtype):
    from cxr_model.engines.torch_device import to_device

    info = np.iinfo(dtype)
    pixels = np.array([[info.min, 0, 1], [info.max - 1, info.max, 2]], dtype=dtype)[None]
    moved = to_device(pixels, torch.device("cpu"))
    assert moved.dtype != torch.float32 and np.array_equal(moved.numpy().astype(np.int64), pixels.astype(np.int64))
