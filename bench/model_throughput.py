"""Throughput of whole worker processes started side by side: processes x intra-op threads, per engine."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "xrays" / "00000001_000.png"


def worker(engine: str, model_dir: str, threads: int, images: int, batch: int) -> None:
    from cxr_model import load_predictor

    predictor = load_predictor(model_dir, engine=engine, threads=threads)
    tensor = predictor.preprocess(SAMPLE.read_bytes())
    for _ in range(3):
        predictor.predict([tensor] * batch)
    print("ready", flush=True)
    sys.stdin.readline()  # the parent releases all workers at once
    start = time.time()
    for _ in range(images // batch):
        predictor.predict([tensor] * batch)
    print(json.dumps({"start": start, "end": time.time(), "images": images // batch * batch}), flush=True)


def measure(engine: str, model_dir: str, processes: int, threads: int, images: int, batch: int = 1) -> dict:
    """Images per second of `processes` workers of `threads` threads each, released together."""
    command = [sys.executable, __file__, engine, model_dir, str(threads), str(images), str(batch)]
    children = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "OMP_NUM_THREADS": str(threads)}) for _ in range(processes)]
    for child in children:
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{engine} worker failed to start")
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    runs = [json.loads(child.stdout.readline()) for child in children]
    for child in children:
        child.wait(timeout=60)
    elapsed = max(r["end"] for r in runs) - min(r["start"] for r in runs)
    total = sum(r["images"] for r in runs)
    return {"engine": engine, "processes": processes, "threads": threads, "batch": batch,
            "images": total, "seconds": elapsed, "images_per_s": total / elapsed}


def configurations(cores: int) -> list[tuple[str, str, int, int]]:
    return [("torch eager, 1 process x all threads (seed layout)", "torch", 1, cores),
            ("torch eager, 1 process per core x 1 thread", "torch", cores, 1),
            ("onnxruntime, 1 process x all threads", "onnxruntime", 1, cores),
            ("onnxruntime, 1 process per core x 1 thread (default)", "onnxruntime", cores, 1)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("engine", "model_dir"):
        parser.add_argument(name)
    for name in ("threads", "images", "batch"):
        parser.add_argument(name, type=int)
    args = parser.parse_args()
    worker(args.engine, args.model_dir, args.threads, args.images, args.batch)
