"""Reference engine: torchxrayvision's DenseNet in eager fp32, model(x) exactly as the library runs it."""
from __future__ import annotations

import numpy as np
import torch


class TorchEngine:
    name = "torch"

    def __init__(self, model, threads: int | None = None):
        if threads is not None:
            torch.set_num_threads(threads)
            try:
                torch.set_num_interop_threads(1)
            except RuntimeError:
                pass  # only settable before the first parallel op in a process
        self.model = model.eval()

    @classmethod
    def load(cls, model_dir: str, name: str, threads: int = 1) -> "TorchEngine":
        import torchxrayvision as xrv

        return cls(xrv.models.DenseNet(weights=name, cache_dir=model_dir), threads)

    def run(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))).numpy()

    def run_with_maps(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """model(x) as the library runs it, and each finding's class activation map from that same pass: the
        classifier applied at every cell of relu(features(x)) (the tensor the library pools), in float64."""
        captured = []
        hook = self.model.features.register_forward_hook(lambda _module, _inputs, output: captured.append(output))
        try:
            scores = self.run(batch)
        finally:
            hook.remove()
        with torch.inference_mode():
            features = torch.relu(captured[0]).double()  # the library rectifies it in place: relu again is a no-op
            weight, bias = self.model.classifier.weight.double(), self.model.classifier.bias.double()
            maps = torch.einsum("nchw,kc->nkhw", features, weight) + bias[None, :, None, None]
        return scores, maps.float().numpy()
