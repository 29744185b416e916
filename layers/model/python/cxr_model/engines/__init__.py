"""Inference engines: run(batch (N,1,224,224) float32) -> calibrated outputs (N, labels) float32."""
from __future__ import annotations

ENGINES = ("onnxruntime", "torch")
