"""Throughput of whole worker processes started side by side: processes x intra-op threads, per engine.

Every configuration's workers are loaded once and kept; the configurations then take turns for several short
rounds (A B C D, A B C D, ...) and each reports its median round, so load from other tenants of the host hits all
of them alike instead of whichever happened to run during a busy minute.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench.harness import REPO, percentile

SAMPLE = REPO.parent / "shared" / "data" / "xrays" / "00000001_000.png"


def worker(engine: str, model_dir: str, threads: int) -> None:
    from cxr_model import load_predictor

    predictor = load_predictor(model_dir, engine=engine, threads=threads)
    tensor = predictor.preprocess(SAMPLE.read_bytes())
    for _ in range(3):
        predictor.predict([tensor])
    print("ready", flush=True)
    for line in sys.stdin:  # "go SECONDS": run batch-1 predictions for that long, report the count
        seconds = float(line.split()[1])
        start = count = 0
        start = time.time()
        while time.time() - start < seconds:
            predictor.predict([tensor])
            count += 1
        print(json.dumps({"start": start, "end": time.time(), "images": count}), flush=True)


class Pool:
    """`processes` workers of one engine with `threads` intra-op threads each."""

    def __init__(self, engine: str, model_dir: str, processes: int, threads: int):
        command = [sys.executable, "-m", "bench.model_throughput", engine, model_dir, str(threads)]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        self.children = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                          cwd=REPO)
                         for _ in range(processes)]
        for child in self.children:
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError(f"{engine} worker failed to start")

    def round(self, seconds: float) -> float:
        for child in self.children:
            child.stdin.write(f"go {seconds}\n")
            child.stdin.flush()
        runs = [json.loads(child.stdout.readline()) for child in self.children]
        return sum(r["images"] for r in runs) / (max(r["end"] for r in runs) - min(r["start"] for r in runs))

    def close(self) -> None:
        for child in self.children:
            child.stdin.close()
            child.wait(timeout=60)


def configurations(cores: int) -> list[tuple[str, str, int, int]]:
    return [("torch eager, 1 process x all threads (seed layout)", "torch", 1, cores),
            ("torch eager, 1 process per core x 1 thread", "torch", cores, 1),
            ("onnxruntime, 1 process x all threads", "onnxruntime", 1, cores),
            ("onnxruntime, 1 process per core x 1 thread (default)", "onnxruntime", cores, 1)]


def measure_all(model_dir: str, rounds: int = 3, seconds: float = 4.0) -> dict[str, dict]:
    cores = os.cpu_count() or 1
    pools = {label: Pool(engine, model_dir, processes, threads)
             for label, engine, processes, threads in configurations(cores)}
    samples = {label: [] for label in pools}
    try:
        for _ in range(rounds):
            for label, pool in pools.items():
                samples[label].append(pool.round(seconds))
    finally:
        for pool in pools.values():
            pool.close()
    return {label: {"images_per_s": percentile(values, 50), "rounds": values} for label, values in samples.items()}


if __name__ == "__main__":  # one worker process of a Pool
    parser = argparse.ArgumentParser()
    parser.add_argument("engine")
    parser.add_argument("model_dir")
    parser.add_argument("threads", type=int)
    args = parser.parse_args()
    worker(args.engine, args.model_dir, args.threads)
