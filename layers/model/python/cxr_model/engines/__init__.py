"""Inference engines: run(batch (N,1,224,224) float32) -> calibrated outputs (N, labels) float32."""
from __future__ import annotations

ENGINES = ("onnxruntime", "torch", "torch-cuda", "onnxruntime-cuda")
CUDA_ENGINES = ("torch-cuda", "onnxruntime-cuda")
PRECISIONS = ("fp32", "bf16", "fp16")  # fp32 is exact (<= 1e-4 of torchxrayvision); the others are opt-in
REDUCED_PRECISION_ENGINES = ("torch", "torch-cuda")


class EngineUnavailable(RuntimeError):
    """The configured engine cannot run on this host (no NVIDIA GPU, no CUDA provider): a deployment error."""


def check_engine_settings(engine: str, precision: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    if precision != "fp32" and engine not in REDUCED_PRECISION_ENGINES:
        raise ValueError(f"precision {precision!r} needs a torch engine {REDUCED_PRECISION_ENGINES}; "
                         f"{engine!r} runs fp32 only")
