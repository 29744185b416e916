"""Saturated throughput of the full local stack against the engine alone, measured side by side in one run.

Run:  python -m bench saturation [--grid] [--seconds 20] [--batches 1 2 4 8] [--windows 0 0.05 0.2 1]
      [--mix clinical]  (2-3k px 12/16-bit PNGs, large JPEGs, uncompressed DICOM: bench/clinical_mix.py; default:
      the 1024 px sample PNGs)
Per batch size: the engine alone (decode + preprocess + ONNX forward pass of distinct X-rays, in K processes of one
thread each, K = workers) and the full stack (API + moto + K infer workers) fed by a separate open-loop feeder
process that keeps a backlog queued. Default sweep: every batch size at window 0, every window at the largest batch
(--grid: all pairs). Writes bench/results/bench_saturation-<UTC>.{json,csv,png}.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.clinical_mix import ClinicalUploads, base_files
from bench.harness import (REPO, RESULTS, UNLIMITED, CpuWindow, load_average, start_stack, utc_stamp, write_csv,
                           write_json)
from bench.pools import image_pool, multipart_body
from bench.seed import SEED_CEILING_JOBS_PER_S, TARGETS
from bench.worker_log import CompletionTail, batch_sizes, completions

ENGINE_POOL_SEED = 500_001
STACK_POOL_SEED = 1
WARMUP_S = 4.0
CLINICAL = "clinical"  # in place of a pool folder: the clinical mix


def _pool_folder(pool) -> str:
    return CLINICAL if isinstance(pool, ClinicalUploads) else str(pool[0].parent)


# ---- engine alone -------------------------------------------------------------------------------------------
def _engine_images(pool_dir: str, first: int, count: int) -> list[bytes]:
    if pool_dir == CLINICAL:  # the engine has no cache: the five base images, in turn, are the mix
        return [path.read_bytes() for path in base_files()]
    return [p.read_bytes() for p in sorted(Path(pool_dir).glob("*.png"))[first:first + count]]


def engine_child(batch: int, seconds: float, pool_dir: str, first: int, count: int) -> None:
    """One process: the worker's predictor (same settings), timed over distinct images until `seconds` pass."""
    from cxr_core.config import settings
    from cxr_model import load_predictor

    config = settings()
    predictor = load_predictor(config.model_dir, engine=config.model_engine, threads=config.model_threads,
                               preprocess_mode=config.preprocess_mode, name=config.model_name)
    images = _engine_images(pool_dir, first, count)
    predictor.predict([predictor.preprocess(images[0])] * batch)  # warm-up
    print("ready", flush=True)
    sys.stdin.readline()
    began, cpu_began, done, index = time.perf_counter(), time.process_time(), 0, 0
    while time.perf_counter() - began < seconds:
        chunk = [images[(index + i) % len(images)] for i in range(batch)]
        index += batch
        predictor.predict([predictor.preprocess(data) for data in chunk])
        done += batch
    print(json.dumps({"images": done, "seconds": time.perf_counter() - began,
                      "cpu_seconds": time.process_time() - cpu_began}), flush=True)


def measure_engine(batch: int, processes: int, seconds: float, pool: list[Path], env: dict[str, str]) -> dict:
    per = len(pool) // processes
    children = [subprocess.Popen([sys.executable, "-m", "bench.saturation", "--engine-child", str(batch), str(seconds),
                                  _pool_folder(pool), str(i * per), str(per)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True, cwd=REPO,
                                 env={**os.environ, **env, "OMP_NUM_THREADS": env.get("MODEL_THREADS", "1")})
                for i in range(processes)]
    for child in children:
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("engine child failed to start")
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    runs = [json.loads(child.stdout.readline()) for child in children]
    for child in children:
        child.wait(timeout=60)
    rate = sum(r["images"] / r["seconds"] for r in runs)
    images = sum(r["images"] for r in runs)
    return {"batch_size": batch, "processes": processes, "jobs_per_s": rate, "images": images,
            "cpu_ms_per_image": 1000 * sum(r["cpu_seconds"] for r in runs) / images}


# ---- full stack ---------------------------------------------------------------------------------------------
def feeder(url: str, api_key: str, pool_dir: str, first: int, count: int, worker_log: str, backlog: int,
           seconds: float, threads: int) -> None:
    """Separate process: submit distinct images as fast as the API takes them while fewer than `backlog` are
    outstanding (submitted, not yet completed), for `seconds`. Prints its submit count and latency."""
    import requests

    if pool_dir == CLINICAL:
        bodies = ClinicalUploads(first, count, multipart=True)
    else:
        bodies = [multipart_body(p.read_bytes()) for p in sorted(Path(pool_dir).glob("*.png"))[first:first + count]]
    tail = CompletionTail(Path(worker_log))
    lock, state = threading.Lock(), {"next": 0, "errors": 0, "latency_ms": []}
    deadline = time.monotonic() + seconds

    def outstanding() -> int:
        with lock:
            return state["next"] - tail.poll()

    def run() -> None:
        session = requests.Session()
        headers = {"x-api-key": api_key} if api_key else {}
        while time.monotonic() < deadline:
            if outstanding() >= backlog:
                time.sleep(0.01)
                continue
            with lock:
                index = state["next"]
                if index >= len(bodies):
                    return
                state["next"] += 1
            body, content_type = bodies[index]
            began = time.perf_counter()
            answer = session.post(f"{url}/v1/jobs", data=body, headers={**headers, "Content-Type": content_type},
                                  timeout=60)
            with lock:
                state["latency_ms"].append((time.perf_counter() - began) * 1000)
                if answer.status_code != 201:
                    state["errors"] += 1

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(json.dumps({"submitted": state["next"], "errors": state["errors"], "latency_ms": state["latency_ms"],
                      "exhausted": state["next"] >= len(bodies)}), flush=True)


def measure_stack(batch: int, window: float, workers: int, seconds: float, pool: list[Path], env: dict[str, str],
                  log_dir: Path, launcher: str | None = None) -> dict:
    settings = {**env, "INFER_BATCH_SIZE": str(batch), "INFER_BATCH_WINDOW_SECONDS": str(window)}
    backlog = max(16, 3 * batch * workers)
    with start_stack(log_dir, workers=workers, env=settings, params=UNLIMITED, script=launcher) as stack:
        total = WARMUP_S + seconds
        feed = subprocess.Popen([sys.executable, "-m", "bench.saturation", "--feeder", stack.url,
                                 stack.info.get("api_key") or "", _pool_folder(pool), "0", str(len(pool)),
                                 str(stack.worker_log), str(backlog), str(total), "4"], stdout=subprocess.PIPE,
                                text=True, cwd=REPO)
        time.sleep(WARMUP_S)  # the backlog fills and every worker is busy before the window opens
        first = len(completions(stack.worker_log))
        began = time.time()
        with CpuWindow({**stack.pids(), "feeder": [feed.pid]}) as cpu:
            time.sleep(seconds)
        ended = time.time()
        fed = json.loads(feed.communicate(timeout=120)[0].strip().splitlines()[-1])
        done = [t for t, _ in completions(stack.worker_log) if began <= t <= ended]
        sizes = batch_sizes(stack.worker_log)
    if fed["exhausted"]:
        raise RuntimeError("the image pool ran out: the backlog was not kept full; use a larger pool")
    latency = sorted(fed["latency_ms"])
    cpu_ms = cpu.ms_per(len(done))
    return {"batch_size": batch, "window_s": window, "stack_jobs_per_s": len(done) / (ended - began),
            "completed_in_window": len(done), "completed_before_window": first, "submitted": fed["submitted"],
            "submit_errors": fed["errors"], "submit_p50_ms": latency[len(latency) // 2] if latency else None,
            "mean_batch_size": sum(sizes) / len(sizes) if sizes else None, "backlog": backlog,
            "cpu_ms_per_job": cpu_ms, "stack_cpu_ms_per_job": sum(v for k, v in cpu_ms.items() if k != "feeder"),
            "cores_used": cpu.cores}


def plan(batches: list[int], windows: list[float], grid: bool) -> list[tuple[int, float]]:
    """(batch, window) pairs: all of them with --grid, else every batch at the first window and every window at
    the largest batch (under saturation the queue is never empty, so the window barely matters)."""
    if grid:
        return [(b, w) for b in batches for w in windows]
    pairs = [(b, windows[0]) for b in batches] + [(max(batches), w) for w in windows[1:]]
    return list(dict.fromkeys(pairs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--windows", type=float, nargs="+", default=[0.0, 0.05, 0.2, 1.0])
    parser.add_argument("--grid", action="store_true", help="every batch x window pair (~16 stack starts)")
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds per stack setting")
    parser.add_argument("--engine-seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--launcher", help="run the stack through this script instead of `-m cxr_local` "
                        "(a scratch copy with a prototype fix)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--mix", choices=["png", CLINICAL], default="png",
                        help="uploads: the 1024 px sample PNGs (default) or the clinical mix (bench/clinical_mix.py)")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    env.setdefault("MODEL_DIR", str(REPO / "layers" / "model" / "weights"))
    stamp = utc_stamp()
    if args.mix == CLINICAL:
        stack_pool = ClinicalUploads(STACK_POOL_SEED, int((WARMUP_S + args.seconds) * 20) + 100)
        engine_pool = ClinicalUploads(ENGINE_POOL_SEED, len(base_files()))
    else:
        stack_pool = image_pool(int((WARMUP_S + args.seconds) * 40) + 200, first_seed=STACK_POOL_SEED)
        engine_pool = image_pool(64, first_seed=ENGINE_POOL_SEED)
    pairs = plan(args.batches, args.windows, args.grid)
    engine: dict[int, list[dict]] = {}
    rows = []
    load_start = load_average()[0]
    for batch, window in pairs:
        # the engine is measured next to every stack run, so both see the same noise from the shared host
        engine_row = measure_engine(batch, args.workers, args.engine_seconds, engine_pool, env)
        engine.setdefault(batch, []).append(engine_row)
        stack_row = measure_stack(batch, window, args.workers, args.seconds, stack_pool, env,
                                  RESULTS / f"bench_saturation-{stamp}" / f"b{batch}-w{window:g}", args.launcher)
        ratio = stack_row["stack_jobs_per_s"] / engine_row["jobs_per_s"]
        overhead = (1 / stack_row["stack_jobs_per_s"] - 1 / engine_row["jobs_per_s"]) * args.workers * 1000
        cpu_ratio = engine_row["cpu_ms_per_image"] / stack_row["stack_cpu_ms_per_job"]
        row = {**stack_row, "engine_jobs_per_s": engine_row["jobs_per_s"], "ratio": ratio,
               "overhead_ms_per_message": overhead, "engine_cpu_ms_per_image": engine_row["cpu_ms_per_image"],
               "cpu_ratio": cpu_ratio,
               "cpu_overhead_ms_per_message": stack_row["stack_cpu_ms_per_job"] - engine_row["cpu_ms_per_image"],
               "load_avg_1m": load_average()[0]}
        rows.append(row)
        print(f"batch {batch} window {window:g}s: stack {row['stack_jobs_per_s']:.2f} jobs/s, engine "
              f"{row['engine_jobs_per_s']:.2f} jobs/s, ratio {ratio:.2f}, overhead {overhead:.1f} ms/message, "
              f"mean batch {row['mean_batch_size'] or 0:.2f}, submit p50 {row['submit_p50_ms'] or 0:.0f} ms; CPU ms/job "
              + ", ".join(f"{k} {v:.0f}" for k, v in row["cpu_ms_per_job"].items())
              + f" vs engine {row['engine_cpu_ms_per_image']:.0f} -> CPU ratio {cpu_ratio:.2f}", flush=True)
    print_report(rows, args.workers, load_start, args.mix)
    report = {"when": stamp, "mix": args.mix, "cpus": os.cpu_count(), "workers": args.workers, "env": env, "rows": rows,
              "engine": engine, "launcher": args.launcher, "seed_ceiling_jobs_per_s": SEED_CEILING_JOBS_PER_S}
    write_json(RESULTS / f"bench_saturation-{stamp}.json", report)
    write_csv(RESULTS / f"bench_saturation-{stamp}.csv", rows)
    from bench.plots import plot_saturation

    png = plot_saturation(rows, RESULTS / f"bench_saturation-{stamp}.png")
    print(f"wrote bench/results/bench_saturation-{stamp}.json, .csv, {png.name}")
    return 0


def print_report(rows: list[dict], workers: int, load_start: float, mix: str = "png") -> None:
    print(f"\nSaturation ({'clinical mix' if mix == CLINICAL else '1024 px PNGs'}), {workers} infer workers on this {os.cpu_count()}-core shared host (feeder on the same "
          f"cores; load avg {load_start:.1f} at start). Seed ceiling: ~{SEED_CEILING_JOBS_PER_S:.0f} req/s (estimated, "
          f"t3.large).")
    print("| batch | window s | stack jobs/s | engine jobs/s | stack/engine | overhead ms/msg | mean batch "
          "| submit p50 ms | stack CPU ms/job (api+moto+worker) | engine CPU ms/image | CPU ratio | CPU overhead ms/msg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        parts = "+".join(f"{row['cpu_ms_per_job'][k]:.0f}" for k in ("api", "moto", "worker"))
        print(f"| {row['batch_size']} | {row['window_s']:g} | {row['stack_jobs_per_s']:.2f} | "
              f"{row['engine_jobs_per_s']:.2f} | {row['ratio']:.2f} | {row['overhead_ms_per_message']:.1f} | "
              f"{row['mean_batch_size'] or 0:.2f} | {row['submit_p50_ms'] or 0:.0f} | "
              f"{row['stack_cpu_ms_per_job']:.0f} ({parts}) | {row['engine_cpu_ms_per_image']:.0f} | "
              f"{row['cpu_ratio']:.2f} | {row['cpu_overhead_ms_per_message']:.0f} |")
    best = max(rows, key=lambda row: row["ratio"])
    verdict = "MET" if best["ratio"] >= TARGETS["saturation_ratio"] else "MISSED"
    print(f"best: batch {best['batch_size']}, window {best['window_s']:g} s: {best['stack_jobs_per_s']:.2f} jobs/s = "
          f"{best['ratio']:.2f} of the engine (target >= {TARGETS['saturation_ratio']}: {verdict}); "
          f"{best['stack_jobs_per_s'] / SEED_CEILING_JOBS_PER_S:.1f}x the seed's estimated ceiling")
    lean = max(rows, key=lambda row: row["cpu_ratio"])
    cores = os.cpu_count() or 1
    print(f"CPU view (robust to other tenants): best CPU ratio {lean['cpu_ratio']:.2f} at batch {lean['batch_size']}, "
          f"window {lean['window_s']:g} s; the stack spends {lean['stack_cpu_ms_per_job']:.0f} CPU ms per job -> "
          f"{1000 * cores / lean['stack_cpu_ms_per_job']:.1f} jobs/s if it had all {cores} cores "
          f"(engine alone: {1000 * cores / lean['engine_cpu_ms_per_image']:.1f})")


if __name__ == "__main__":  # the study's child processes; the study itself: python -m bench saturation
    if sys.argv[1] == "--engine-child":
        engine_child(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    elif sys.argv[1] == "--feeder":
        feeder(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), sys.argv[7],
               int(sys.argv[8]), float(sys.argv[9]), int(sys.argv[10]))
