"""onnxruntime engine: sigmoid network (and class activation maps) in the graph, op_norm in NumPy. Imports no torch."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort

from . import EngineUnavailable
from .calibration import op_norm

CUDA_PROVIDER = "CUDAExecutionProvider"
# fp32 means fp32 on the GPU too: no TF32 (10 mantissa bits) in convolutions and matrix products
CUDA_OPTIONS = {"use_tf32": "0", "cudnn_conv_algo_search": "DEFAULT"}


def _providers(device: str) -> list:
    if device == "cpu":
        return ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    if CUDA_PROVIDER not in available:
        raise EngineUnavailable(f"MODEL_ENGINE=onnxruntime-cuda needs onnxruntime-gpu ({CUDA_PROVIDER}); this "
                                f"onnxruntime {ort.__version__} offers {available}. Install onnxruntime-gpu in the "
                                f"GPU image, or use MODEL_ENGINE=onnxruntime on CPU hosts")
    return [(CUDA_PROVIDER, CUDA_OPTIONS)]


def onnx_metadata(onnx_path: str) -> dict[str, str]:
    """The export's own metadata (weights kind and hash, labels, thresholds), read through onnxruntime."""
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    return dict(session.get_modelmeta().custom_metadata_map)


class OnnxEngine:
    name = "onnxruntime"

    def __init__(self, onnx_path: str, threads: int = 1, device: str = "cpu"):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Memory patterns pre-plan one block per batch shape: ~80 MB more peak RSS at batch 8 for ~3% speed.
        options.enable_mem_pattern = False
        self.session = ort.InferenceSession(onnx_path, sess_options=options, providers=_providers(device))
        if device != "cpu" and self.session.get_providers()[0] != CUDA_PROVIDER:
            # onnxruntime falls back to the CPU with a warning when the CUDA libraries fail to load
            raise EngineUnavailable(f"onnxruntime could not start {CUDA_PROVIDER} (session providers "
                                    f"{self.session.get_providers()}): check the CUDA and cuDNN libraries")
        if device != "cpu":
            self.name = "onnxruntime-cuda"
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.op_threshs = np.array(json.loads(self.metadata["cxr_model.op_threshs"]), dtype=np.float32)
        self._input = self.session.get_inputs()[0].name
        # one thread on the CPU: a batch buys no speed, only cache misses (DenseNet-121 fp32, CPU ms per image: 36.8
        # one at a time, 37.6 in fours, 39.8 in eights), so its images go through one by one, with the same results
        self._images_per_run = 1 if device == "cpu" and threads == 1 else None

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.run_with_maps(batch)[0]

    def run_with_maps(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Calibrated scores (N, findings) and the logit maps (N, findings, 7, 7) of the same pass; an export
        older than the maps output gives None."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        step = self._images_per_run or max(1, len(batch))
        runs = [self.session.run(None, {self._input: batch[start:start + step]})
                for start in range(0, len(batch), step)] or [self.session.run(None, {self._input: batch})]
        scores = np.concatenate([outputs[0] for outputs in runs])
        maps = np.concatenate([outputs[1] for outputs in runs]) if len(runs[0]) > 1 else None
        return op_norm(scores, self.op_threshs), maps
