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
