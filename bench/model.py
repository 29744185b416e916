"""Model benchmark: torch eager fp32 vs onnxruntime side by side in one run (latency, batch scaling, load, RSS).

Run:  python -m bench model [--runs 50] [--threads 1] [--model-dir layers/model/weights]
Prints tables and writes bench/results/bench_model.json (plus a timestamped copy).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from bench import model_throughput
from bench.harness import REPO, RESULTS, load_average, percentile, write_json
from bench.seed import SEED_BATCH_MS as SEED_BATCH, SEED_SINGLE_MS as SEED_SINGLE

SAMPLE = REPO.parent / "shared" / "data" / "xrays" / "00000001_000.png"
ENGINES = ("onnxruntime", "torch")


def _stats(samples_ms: list[float]) -> dict[str, float]:
    return {"p50": percentile(samples_ms, 50), "p95": percentile(samples_ms, 95), "p99": percentile(samples_ms, 99),
            "mean": sum(samples_ms) / len(samples_ms)}


def _time_interleaved(runners: dict, batch: np.ndarray, warmup: int, runs: int):
    """Alternate the engines run by run so load from other processes on the host hits both alike.

    Returns wall-clock and CPU (process_time) milliseconds per run: with one intra-op thread the CPU time is what
    the engine itself costs, and stays meaningful when other tenants share the cores.
    """
    for _ in range(warmup):
        for run in runners.values():
            run(batch)
    wall, cpu = {name: [] for name in runners}, {name: [] for name in runners}
    for _ in range(runs):
        for name, run in runners.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            run(batch)
            cpu[name].append((time.process_time() - start_cpu) * 1000)
            wall[name].append((time.perf_counter() - start) * 1000)
    return wall, cpu


def _peak_rss_mb() -> float:
    """VmHWM, not ru_maxrss: ru_maxrss survives exec and would report the parent's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def probe(engine: str, model_dir: str, threads: int) -> None:
    """Child process: time import+load+first result, then peak RSS over a worker-like load (batches of 8)."""
    start = time.perf_counter()
    from cxr_model import load_predictor

    imported = time.perf_counter()
    predictor = load_predictor(model_dir, engine=engine, threads=threads)
    loaded = time.perf_counter()
    image = predictor.preprocess(SAMPLE.read_bytes())
    predictor.predict([image])
    first = time.perf_counter()
    rss_after_first = _peak_rss_mb()
    for _ in range(5):
        predictor.predict([image] * 8)
    print(json.dumps({"engine": engine, "import_s": imported - start, "load_s": loaded - imported,
                      "first_result_s": first - imported, "total_to_first_result_s": first - start,
                      "peak_rss_mb_batch1": rss_after_first,
                      "peak_rss_mb_batch8": _peak_rss_mb(),
                      "torch_imported": "torch" in sys.modules}))


def _run_probe(engine: str, model_dir: str, threads: int) -> dict:
    result = subprocess.run([sys.executable, "-m", "bench.model", "--probe", engine, "--model-dir", model_dir,
                             "--threads", str(threads)], capture_output=True, text=True, timeout=600, cwd=REPO)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _print_single(stats: dict) -> None:
    print("\nSingle image (batch 1), ms        p50      p95      p99     mean")
    for name in ENGINES:
        print(f"  {name:<30}" + "".join(f"{stats[name][k]:9.1f}" for k in ("p50", "p95", "p99", "mean")))
    print(f"  {'ratio torch / onnxruntime':<30}" + "".join(
        f"{stats['torch'][k] / stats['onnxruntime'][k]:8.2f}x" for k in ("p50", "p95", "p99", "mean")))
    print(f"  {'seed (torch, its host)':<30}" + "".join(f"{SEED_SINGLE[k]:9.1f}" for k in ("p50", "p95", "p99", "mean")))


def _print_batches(batches: dict) -> None:
    print("\nBatch scaling, p50 ms per batch (ms per image)     onnxruntime             torch     speed-up   seed"
          "   CPU-ms speed-up")
    for size, row in batches.items():
        ort, tch = row["onnxruntime"]["p50"], row["torch"]["p50"]
        cpu_ratio = row["torch"]["cpu_p50"] / row["onnxruntime"]["cpu_p50"]
        print(f"  batch {size:<3}{'':28}{ort:8.1f} ({ort / size:5.1f}){tch:9.1f} ({tch / size:5.1f})"
              f"{tch / ort:9.2f}x{SEED_BATCH[size]:8.0f}{cpu_ratio:14.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=str(REPO / "layers" / "model" / "weights"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--batch-runs", type=int, default=10)
    parser.add_argument("--throughput-rounds", type=int, default=3)
    parser.add_argument("--throughput-seconds", type=float, default=4.0)
    parser.add_argument("--reduced-precision", action="store_true", help="also measure the opt-in int8/bf16 mode")
    parser.add_argument("--probe", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        probe(args.probe, args.model_dir, args.threads)
        return 0

    from cxr_model import load_predictor
    from cxr_model_build.build import build

    build(args.model_dir, allow_random_init=True)
    predictors = {engine: load_predictor(args.model_dir, engine=engine, threads=args.threads) for engine in ENGINES}
    runners = {name: predictor.engine.run for name, predictor in predictors.items()}
    image = predictors["onnxruntime"].preprocess(SAMPLE.read_bytes())[None]
    print(f"cxr_model benchmark: {predictors['onnxruntime'].identity}, threads={args.threads}, "
          f"host load average {load_average()} on {os.cpu_count()} cores")

    wall, cpu = _time_interleaved(runners, image, args.warmup, args.runs)
    single, single_cpu = ({k: _stats(v) for k, v in d.items()} for d in (wall, cpu))
    _print_single(single)
    print(f"  {'CPU ms p50 (process_time)':<30}" + "".join(f"{single_cpu[n]['p50']:9.1f}" for n in ENGINES)
          + f"   -> torch / onnxruntime {single_cpu['torch']['p50'] / single_cpu['onnxruntime']['p50']:.2f}x "
          "(robust to other tenants when threads=1)")
    batches = {}
    for size in (1, 2, 4, 8):
        samples, cpu_samples = _time_interleaved(runners, np.repeat(image, size, axis=0), 2, args.batch_runs)
        batches[size] = {k: {**_stats(v), "cpu_p50": percentile(cpu_samples[k], 50)} for k, v in samples.items()}
    _print_batches(batches)
    max_diff = float(np.abs(runners["onnxruntime"](np.repeat(image, 8, 0)) - runners["torch"](np.repeat(image, 8, 0))).max())
    print(f"\nmax |onnxruntime - torch| over the 18 calibrated outputs, batch 8: {max_diff:.2e}")

    probes = {engine: _run_probe(engine, args.model_dir, args.threads) for engine in ENGINES}
    print("\nFresh process               import s   load s   load->first result s   peak RSS MB (b1 / b8)   torch imported")
    for engine, row in probes.items():
        print(f"  {engine:<26}{row['import_s']:8.2f}{row['load_s']:9.2f}{row['first_result_s']:15.2f}"
              f"{row['peak_rss_mb_batch1']:17.0f} / {row['peak_rss_mb_batch8']:.0f}{str(row['torch_imported']):>16}")

    cores = os.cpu_count() or 1
    print(f"\nThroughput, whole worker processes, batch 1: median of {args.throughput_rounds} interleaved rounds "
          f"of {args.throughput_seconds:.0f} s per configuration")
    throughput = model_throughput.measure_all(args.model_dir, args.throughput_rounds, args.throughput_seconds)
    for label, row in throughput.items():
        rounds = ", ".join(f"{value:.1f}" for value in row["rounds"])
        print(f"  {label:<55}{row['images_per_s']:7.1f} images/s   (rounds: {rounds})")
    labels = [label for label, *_ in model_throughput.configurations(cores)]
    seed_layout, same_layout, default = (throughput[labels[i]]["images_per_s"] for i in (0, 1, 3))
    print(f"  default onnxruntime vs seed-layout torch: {default / seed_layout:.2f}x; "
          f"vs torch in the same layout: {default / same_layout:.2f}x")

    reduced = None
    if args.reduced_precision:
        from bench.reduced_precision import measure_reduced_precision

        reduced = measure_reduced_precision(args.model_dir, image, args.threads, args.warmup, args.runs)
    report = {"identity": predictors["onnxruntime"].identity, "threads": args.threads, "runs": args.runs,
              "single_ms": single, "single_cpu_ms": single_cpu, "batch_ms": batches, "seed_single_ms": SEED_SINGLE, "seed_batch_ms": SEED_BATCH,
              "max_abs_diff_onnx_vs_torch": max_diff, "fresh_process": probes, "throughput": throughput, "reduced_precision": reduced,
              "load_average": load_average(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for path in (RESULTS / "bench_model.json", RESULTS / f"bench_model-{report['measured_at']}.json"):
        write_json(path, report)
    print(f"\nwritten {RESULTS / 'bench_model.json'}")
    return 0


if __name__ == "__main__":  # the --probe child; the study itself: python -m bench model
    sys.exit(main())
