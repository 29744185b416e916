"""Resident memory per added model: one worker process loads the served models one after another, lazily, as jobs
for each arrive, and runs a batch through each; RSS is read after each (a fresh process per run).
Run: python -m bench model-memory [--model-dir build/test-weights] [--models NAME ...] [--batch 8]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.harness import REPO, load_average
from tests.model_support import SAMPLES_DIR

SAMPLE = SAMPLES_DIR / "00000001_000.png"


def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1_048_576


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=str(REPO / "build" / "test-weights"))
    parser.add_argument("--models", nargs="+", default=["densenet121-res224-all", "densenet121-res224-chex"])
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args(argv)

    import numpy as np

    from cxr_model import load_predictor

    start = rss_mib()
    print(f"load {load_average()}; onnxruntime, 1 thread, batch {args.batch}; RSS at start {start:.0f} MiB")
    previous, loaded = start, []
    for name in args.models:
        predictor = load_predictor(args.model_dir, engine="onnxruntime", threads=1, name=name)
        loaded.append(predictor)
        image = predictor.preprocess(SAMPLE.read_bytes())
        predictor.predict([image] * args.batch)
        now = rss_mib()
        onnx = Path(args.model_dir, f"{name}.onnx").stat().st_size / 1_048_576
        print(f"{name:<30} +{now - previous:6.1f} MiB (ONNX file {onnx:.1f} MiB), RSS {now:.0f} MiB, "
              f"weights {predictor.identity['weights']}")
        previous = now
    for predictor in loaded:  # a second round on every model: what a long-lived worker settles at
        predictor.predict([np.zeros((1, 224, 224), np.float32)] * args.batch)
    print(f"after a second batch on each: RSS {rss_mib():.0f} MiB ({rss_mib() - start:.0f} MiB over the start)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
