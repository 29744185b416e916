"""Opt-in reduced precision for the benchmark: onnxruntime int8 (static QDQ, per-channel), never the default.

Quantises the exported fp32 model in a temporary folder with the sample X-rays as calibration data and reports
its speed beside fp32 and its max |difference| on the 18 calibrated outputs. Not used by the service.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from bench.harness import percentile


def _calibration_images() -> list[np.ndarray]:
    from cxr_model.preprocess import preprocess
    from tests.model_support import SAMPLE_FILES, large_radiographs

    return [preprocess(p.read_bytes()) for p in SAMPLE_FILES] + \
           [preprocess(d) for d in large_radiographs().values()]


def _quantize(source: str, folder: str, images: list[np.ndarray]) -> str:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([{"image": image[None]} for image in images])

        def get_next(self):
            return next(self.feeds, None)

    import logging

    logging.getLogger().setLevel(logging.ERROR)  # the quantiser warns once per BatchNorm-turned-Conv weight
    prepared, target = f"{folder}/prepared.onnx", f"{folder}/int8.onnx"
    quant_pre_process(source, prepared, skip_symbolic_shape=True)
    quantize_static(prepared, target, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return target


def measure_reduced_precision(model_dir: str, image: np.ndarray, threads: int, warmup: int, runs: int) -> dict:
    from cxr_model.engines.onnx_engine import OnnxEngine

    source = str(Path(model_dir) / "densenet121-res224-all.onnx")
    images = _calibration_images()
    with tempfile.TemporaryDirectory() as folder:
        engines = {"fp32": OnnxEngine(source, threads), "int8": OnnxEngine(_quantize(source, folder, images), threads)}
        batch = np.stack(images)
        max_diff = float(np.abs(engines["fp32"].run(batch) - engines["int8"].run(batch)).max())
        timings = {}
        for name, engine in engines.items():
            for _ in range(warmup):
                engine.run(image)
            samples = []
            for _ in range(runs):
                start = time.perf_counter()
                engine.run(image)
                samples.append((time.perf_counter() - start) * 1000)
            timings[name] = percentile(samples, 50)
    print(f"\nReduced precision (opt-in, NOT the exact engine): onnxruntime int8 static QDQ p50 {timings['int8']:.1f} ms"
          f" vs fp32 {timings['fp32']:.1f} ms ({timings['fp32'] / timings['int8']:.2f}x); max |diff| of the 18 "
          f"calibrated outputs over {len(images)} images: {max_diff:.3f}")
    return {"mode": "onnxruntime-int8-qdq", "p50_ms": timings, "max_abs_diff": max_diff, "images": len(images)}
