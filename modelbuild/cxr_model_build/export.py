"""ONNX export of the network without op_threshs (sigmoid in graph) and its verification against torch."""
from __future__ import annotations

import json
import os

import numpy as np

from cxr_model.artifacts import ArtifactPaths
from cxr_model.engines.onnx_engine import OnnxEngine

from .errors import BuildError

VERIFY_TOLERANCE = 1e-4


def _network_module(model):
    """The xrv DenseNet up to sigmoid(logits): op_norm is left out because it breaks in onnxruntime (seed ADR-003)."""
    import torch
    import torch.nn.functional as F

    class SigmoidLogits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            features = F.relu(self.inner.features(x))
            pooled = F.adaptive_avg_pool2d(features, (1, 1)).flatten(1)
            return torch.sigmoid(self.inner.classifier(pooled))

    return SigmoidLogits(model).eval()


def _metadata(paths: ArtifactPaths, record: dict) -> dict[str, str]:
    return {"cxr_model.name": paths.spec.name, "cxr_model.weights_sha256": record["sha256"],
            "cxr_model.weights": record["weights"],  # the build's verdict from the file's bytes
            "cxr_model.labels": json.dumps(list(paths.spec.labels)),
            "cxr_model.op_threshs": json.dumps(list(paths.spec.op_threshs)),
            "cxr_model.outputs": "sigmoid(logits); apply op_norm with op_threshs"}


def _export(paths: ArtifactPaths, model, record: dict) -> None:
    import onnx
    import torch

    tmp = paths.onnx + ".tmp"
    dummy = torch.zeros(1, 1, 224, 224)
    with torch.no_grad():
        torch.onnx.export(_network_module(model), (dummy,), tmp, input_names=["image"], output_names=["probs"],
                          dynamic_axes={"image": {0: "batch"}, "probs": {0: "batch"}}, opset_version=17,
                          dynamo=False)
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
            model.op_threshs.numpy(), np.array(paths.spec.op_threshs, dtype=np.float32)):
        raise BuildError("cxr_model.specs disagrees with torchxrayvision's model_urls")
    _export(paths, model, record)
    torch_engine, onnx_engine = TorchEngine(model), OnnxEngine(paths.onnx, threads=1)
    diffs = {}
    for label, batch in _verification_inputs().items():
        diffs[label] = float(np.abs(torch_engine.run(batch) - onnx_engine.run(batch)).max())
    worst = max(diffs.values())
    if not worst <= VERIFY_TOLERANCE:
        os.remove(paths.onnx)
        raise BuildError(f"onnxruntime disagrees with torch: max |diff| {worst:.3g} > {VERIFY_TOLERANCE} ({diffs})")
    return {"verify_max_abs_diff": worst, "verify_diffs": diffs}
