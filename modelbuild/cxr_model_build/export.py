"""ONNX export of the network without op_threshs (sigmoid in graph) plus its class activation maps, verified against torch."""
from __future__ import annotations

import json
import os

import numpy as np

from cxr_model.artifacts import ArtifactPaths
from cxr_model.engines.onnx_engine import OnnxEngine

from .errors import BuildError

VERIFY_TOLERANCE = 1e-4
MAP_TOLERANCE = 1e-4  # of each map's own range (max - min): the maps are logits of any scale


def _network_module(model, maps: bool = True):
    """The xrv DenseNet up to sigmoid(logits): op_norm is left out because it breaks in onnxruntime (seed ADR-003).
    Second output: each finding's class activation map, the classifier applied at every cell of the rectified
    feature map (N, findings, 7, 7), from the same forward pass; the scores' own path is unchanged."""
    import torch
    import torch.nn.functional as F

    class SigmoidLogitsAndMaps(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.maps = inner, maps

        def forward(self, x):
            features = F.relu(self.inner.features(x))
            pooled = F.adaptive_avg_pool2d(features, (1, 1)).flatten(1)
            classifier = self.inner.classifier
            probs = torch.sigmoid(classifier(pooled))
            if not self.maps:  # the export before the maps existed (`python -m bench heatmap-cost` compares the two)
                return probs
            return probs, F.conv2d(features, classifier.weight[:, :, None, None], classifier.bias)

    return SigmoidLogitsAndMaps(model).eval()


def _metadata(paths: ArtifactPaths, record: dict) -> dict[str, str]:
    return {"cxr_model.name": paths.spec.name, "cxr_model.weights_sha256": record["sha256"],
            "cxr_model.weights": record["weights"],  # the build's verdict from the file's bytes
            "cxr_model.labels": json.dumps(list(paths.spec.labels)),
            "cxr_model.op_threshs": json.dumps(list(paths.spec.op_threshs)),
            "cxr_model.outputs": "probs: sigmoid(logits), apply op_norm with op_threshs; "
                                 "maps: per-finding logit maps W.relu(features)+b (before sigmoid and op_norm)"}


def _export(paths: ArtifactPaths, model, record: dict) -> None:
    import onnx
    import torch

    tmp = paths.onnx + ".tmp"
    dummy = torch.zeros(1, 1, 224, 224)
    with torch.no_grad():
        torch.onnx.export(_network_module(model), (dummy,), tmp, input_names=["image"], output_names=["probs", "maps"],
                          dynamic_axes={"image": {0: "batch"}, "probs": {0: "batch"}, "maps": {0: "batch"}},
                          opset_version=17, dynamo=False)
    proto = onnx.load(tmp)
    for key, value in _metadata(paths, record).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, tmp)
    os.replace(tmp, paths.onnx)


def _verification_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1234)
    uniform = rng.uniform(-1024, 1024, size=(8, 1, 224, 224)).astype(np.float32)
    # Smooth radiograph-like fields exercise saturated and mid-range outputs, not only noise.
    ramp = np.linspace(-1024, 1024, 224, dtype=np.float32)
    smooth = np.stack([np.sin(k + np.add.outer(ramp / 300 * (k + 1), ramp / 500)) * 900 for k in range(8)])
    return {"uniform_b1": uniform[:1], "uniform_b8": uniform, "smooth_b1": smooth[:1, None].astype(np.float32),
            "smooth_b8": smooth[:, None].astype(np.float32)}


def export_and_verify(paths: ArtifactPaths, record: dict) -> dict:
    """Export from the weights loaded through torchxrayvision's own lookup; fail if ORT and torch disagree."""
    import torchxrayvision as xrv
    from cxr_model.engines.torch_engine import TorchEngine

    try:
        model = xrv.models.DenseNet(weights=paths.spec.name, cache_dir=paths.model_dir)
    except Exception as exc:  # noqa: BLE001 - a file that does not unpickle or fit is refused, not exported
        raise BuildError(f"{paths.weights} does not load into {paths.spec.name}'s architecture, refused: "
                         f"{type(exc).__name__}: {exc}") from exc
    if list(model.targets) != list(paths.spec.labels) or not np.allclose(
            model.op_threshs.numpy(), np.array(paths.spec.op_threshs, dtype=np.float32), equal_nan=True):
        raise BuildError("cxr_model.specs disagrees with torchxrayvision's model_urls")
    _export(paths, model, record)
    torch_engine, onnx_engine = TorchEngine(model), OnnxEngine(paths.onnx, threads=1)
    diffs, map_diffs = {}, {}
    for label, batch in _verification_inputs().items():
        torch_scores, torch_maps = torch_engine.run_with_maps(batch)
        onnx_scores, onnx_maps = onnx_engine.run_with_maps(batch)
        diffs[label] = float(np.abs(torch_scores - onnx_scores).max())
        map_diffs[label] = float(relative_map_error(onnx_maps, torch_maps).max())
    worst, worst_map = max(diffs.values()), max(map_diffs.values())
    if not (worst <= VERIFY_TOLERANCE and worst_map <= MAP_TOLERANCE):
        os.remove(paths.onnx)
        raise BuildError(f"onnxruntime disagrees with torch: max |diff| {worst:.3g} (<= {VERIFY_TOLERANCE}), "
                         f"maps {worst_map:.3g} of their range (<= {MAP_TOLERANCE}) ({diffs}, {map_diffs})")
    return {"verify_max_abs_diff": worst, "verify_diffs": diffs, "verify_map_max_relative_diff": worst_map}


def relative_map_error(maps: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(N, findings): max |maps - reference| over each map's cells, divided by the reference map's range."""
    spread = reference.max(axis=(-2, -1)) - reference.min(axis=(-2, -1))
    return np.abs(maps - reference).max(axis=(-2, -1)) / np.maximum(spread, np.finfo(np.float32).tiny)
