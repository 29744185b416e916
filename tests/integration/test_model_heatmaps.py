"""Class activation maps from the ONNX export's second output equal the same computation on torchxrayvision's model."""
from __future__ import annotations

import numpy as np
import pytest

from cxr_model import LABELS, load_predictor
from tests.model_support import MODEL_NAME, SAMPLE_FILES, built_model_dir, png_bytes, synthetic_radiograph

MAP_TOLERANCE = 1e-4  # of each map's own range
SCORE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return built_model_dir(str(tmp_path_factory.mktemp("model")))


@pytest.fixture(scope="module")
def predictor(model_dir):
    return load_predictor(model_dir, engine="onnxruntime")


@pytest.fixture(scope="module")
def library_model(model_dir):
    import torchxrayvision as xrv

    return xrv.models.DenseNet(weights=MODEL_NAME, cache_dir=model_dir).eval()


@pytest.fixture(scope="module")
def inputs(predictor) -> dict[str, np.ndarray]:
    """The held-in samples and a 3000 x 2500 16-bit radiograph, as the service preprocesses them."""
    images = {path.name: predictor.preprocess(path.read_bytes()) for path in SAMPLE_FILES}
    clinical = png_bytes(synthetic_radiograph(3000, 2500, 65535, seed=26), compress_level=1)
    images["clinical_3000x2500.png"] = predictor.preprocess(clinical)
    return images


def library_maps(model, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """torchxrayvision's own forward (library scores) and, from the tensor its features2 pools, W . relu(f) + b."""
    import torch

    captured = []
    hook = model.features.register_forward_hook(lambda _m, _i, output: captured.append(output))
    try:
        with torch.no_grad():
            scores = model(torch.from_numpy(image[None])).numpy()[0]
    finally:
        hook.remove()
    rectified = np.maximum(captured[0].numpy()[0].astype(np.float64), 0.0)  # (1024, 7, 7)
    weight = model.classifier.weight.detach().numpy().astype(np.float64)
    bias = model.classifier.bias.detach().numpy().astype(np.float64)
    return scores, np.einsum("chw,kc->khw", rectified, weight) + bias[:, None, None]


def test_samples_and_a_clinical_size_input_are_covered(inputs):
    assert len(SAMPLE_FILES) >= 5 and "clinical_3000x2500.png" in inputs


def test_maps_equal_the_library_computation_and_scores_are_unchanged(predictor, library_model, inputs):
    names = list(inputs)
    predictions = predictor.predict([inputs[name] for name in names])  # one batch, as the worker runs it
    for name, prediction in zip(names, predictions):
        scores, expected = library_maps(library_model, inputs[name])
        assert list(prediction.heatmaps) == list(prediction.output) == [label for label in LABELS if label]
        got = np.array([prediction.heatmaps[label] for label in LABELS])
        assert got.shape == (18, 7, 7)
        spread = expected.max(axis=(1, 2)) - expected.min(axis=(1, 2))
        assert (spread > 0).all(), name  # a flat map would make the relative check vacuous
        relative = np.abs(got - expected).max(axis=(1, 2)) / spread
        assert relative.max() <= MAP_TOLERANCE, (name, relative.max())
        ours = np.array([prediction.output[label] for label in LABELS])
        assert np.abs(ours - scores).max() <= SCORE_TOLERANCE, name


def test_each_map_averages_to_its_findings_logit(predictor, library_model, inputs):
    """The maps are the logits' own decomposition: their mean over the grid is classifier(features2(x))."""
    import torch

    image = inputs["clinical_3000x2500.png"]
    prediction = predictor.predict([image])[0]
    with torch.no_grad():
        logits = library_model.classifier(library_model.features2(torch.from_numpy(image[None]))).numpy()[0]
    means = np.array([np.mean(prediction.heatmaps[label]) for label in LABELS])
    assert np.allclose(means, logits, rtol=1e-4, atol=1e-4)


def test_torch_engine_gives_the_same_maps(model_dir, predictor, inputs):
    torch_predictor = load_predictor(model_dir, engine="torch")
    image = inputs["clinical_3000x2500.png"]
    onnx_maps = np.array(list(predictor.predict([image])[0].heatmaps.values()))
    torch_maps = np.array(list(torch_predictor.predict([image])[0].heatmaps.values()))
    spread = torch_maps.max(axis=(1, 2)) - torch_maps.min(axis=(1, 2))
    assert (np.abs(onnx_maps - torch_maps).max(axis=(1, 2)) / spread).max() <= MAP_TOLERANCE


def test_model_input_pixels_are_the_tensor_on_an_8_bit_scale(predictor, inputs):
    image = inputs["00000001_000.png"]
    pixels = np.frombuffer(predictor.model_input_pixels(image), dtype=np.uint8).reshape(224, 224)
    assert np.abs(pixels.astype(np.float64) - (image[0] + 1024) * 255 / 2048).max() <= 0.5 + 1e-3
    assert pixels.min() < 64 and pixels.max() > 192  # a radiograph's range, not a constant
