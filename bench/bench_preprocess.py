"""Preprocessing benchmark (issue 9): torchxrayvision's reference vs cxr_model exact vs fast, one core, side by side.

Run:  .venv/bin/python bench/bench_preprocess.py [--runs 10] [--model-dir layers/model/weights]
Prints the table (format and size / reference ms / fast ms / tensor deviation / output deviation) and writes
bench/results/bench_preprocess.json.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def reference_pipeline(data: bytes) -> np.ndarray:
    """torchxrayvision's recommended pipeline from bytes: imread/read_xray_dcm, normalize, mean, crop, resize."""
    import skimage.io
    import torchxrayvision as xrv

    if data[128:132] == b"DICM":
        image = xrv.utils.read_xray_dcm(io.BytesIO(data))
    else:
        image = skimage.io.imread(io.BytesIO(data))
        image = xrv.datasets.normalize(image, 255 if image.dtype == np.uint8 else 65535)
        if image.ndim == 3:
            image = image.mean(2)
    image = xrv.datasets.XRayCenterCrop()(image[None, ...])
    return xrv.datasets.XRayResizer(224)(image)


def _p50_ms(function, data: bytes, runs: int, clock=time.perf_counter) -> float:
    """p50 of `clock` ms; clock=time.process_time gives CPU ms, robust to other tenants (BLAS is capped to 1)."""
    function(data)
    samples = []
    for _ in range(runs):
        start = clock()
        function(data)
        samples.append((clock() - start) * 1000)
    return float(np.median(samples))


def _describe(name: str, data: bytes) -> str:
    from cxr_model import check_image

    info = check_image(data)
    return f"{name} ({info.format} {info.width}x{info.height} {info.mode})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=str(REPO / "layers" / "model" / "weights"))
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    import warnings

    warnings.simplefilter("ignore")
    from cxr_model import LABELS, check_image, load_predictor
    from cxr_model.build import build
    from cxr_model.preprocess import preprocess
    from tests.model_support import SAMPLE_FILES, large_radiographs

    build(args.model_dir, allow_random_init=True)
    predictor = load_predictor(args.model_dir, engine="onnxruntime", threads=1)  # also caps BLAS at one thread
    inputs = {**{p.name: p.read_bytes() for p in SAMPLE_FILES}, **large_radiographs()}
    tensor = predictor.preprocess(SAMPLE_FILES[0].read_bytes())
    forward_ms = _p50_ms(lambda _: predictor.engine.run(tensor[None]), b"", args.runs * 3)
    forward_cpu_ms = _p50_ms(lambda _: predictor.engine.run(tensor[None]), b"", args.runs * 3, time.process_time)
    print(f"one core, {args.runs} runs each, host load average {os.getloadavg()[0]:.2f}; "
          f"onnxruntime forward pass p50 {forward_ms:.1f} ms ({forward_cpu_ms:.1f} CPU ms); ratios use CPU ms")
    header = (f"{'input':<58}{'ref ms':>8}{'exact ms':>9}{'fast ms':>8}{'fast cpu':>9}{'ref/fast':>9}{'fast/fwd':>9}"
              f"{'check ms':>9}   {'mean':>5}{'p99':>7}{'max':>7}   {'out max':>8}")
    print(header)
    rows = []
    for name, data in inputs.items():
        reference = reference_pipeline(data)
        exact, fast = preprocess(data, "exact"), preprocess(data, "fast")
        diff = np.abs(fast - exact)
        scores = [[p.output[label] for label in LABELS] for p in predictor.predict([exact, fast])]
        row = {"input": _describe(name, data), "bytes": len(data),
               "reference_ms": _p50_ms(reference_pipeline, data, args.runs),
               "exact_ms": _p50_ms(lambda d: preprocess(d, "exact"), data, args.runs),
               "fast_ms": _p50_ms(lambda d: preprocess(d, "fast"), data, args.runs),
               "fast_cpu_ms": _p50_ms(lambda d: preprocess(d, "fast"), data, args.runs, time.process_time),
               "reference_cpu_ms": _p50_ms(reference_pipeline, data, max(3, args.runs // 3), time.process_time),
               "check_image_ms": _p50_ms(check_image, data, args.runs),
               "exact_vs_reference_max": float(np.abs(exact - reference).max()),
               "mean": float(diff.mean()), "p99": float(np.percentile(diff, 99)), "max": float(diff.max()),
               "output_max_abs_diff": float(np.abs(np.subtract(*scores)).max())}
        rows.append(row)
        print(f"{row['input']:<58}{row['reference_ms']:8.1f}{row['exact_ms']:9.1f}{row['fast_ms']:8.1f}{row['fast_cpu_ms']:9.1f}"
              f"{row['reference_cpu_ms'] / row['fast_cpu_ms']:8.1f}x{row['fast_cpu_ms'] / forward_cpu_ms:8.2f}x"
              f"{row['check_image_ms']:9.1f}   {row['mean']:5.2f}{row['p99']:7.2f}{row['max']:7.1f}"
              f"   {row['output_max_abs_diff']:8.4f}")
    print("mean/p99/max: |fast - exact| on the [-1024, 1024] scale (bounds: mean <= 4, p99 <= 64); "
          "out max: max |diff| of the 18 calibrated outputs; exact vs torchxrayvision max |diff|: "
          f"{max(r['exact_vs_reference_max'] for r in rows):.1e}")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_preprocess.json").write_text(json.dumps(
        {"forward_ms": forward_ms, "forward_cpu_ms": forward_cpu_ms, "runs": args.runs, "identity": predictor.identity, "rows": rows,
         "load_average": os.getloadavg()[0]}, indent=2))


if __name__ == "__main__":
    main()
