"""Both infer paths side by side in one run (measured on the local emulation): the seed's scenario and a burst.

    python -m bench infer-paths [--users 10 --duration 30 --burst 120 --idle 15]

For each scenario, a fresh stack per path (InferPath=lambda: the emulated event source mapping; InferPath=ec2: the
worker), interleaved: seed/lambda, seed/ec2, burst/lambda, burst/ec2. Per path: end-to-end latency (the jobs'
created_at -> finished_at, and what the seed's polling client saw), cold starts, infer CPU-seconds and (Lambda)
GB-seconds per 1,000 images. Then dollars (bench/costs.py, bench/prices.json) and the cost-vs-volume plot.
"""
from __future__ import annotations

import argparse
import json
import re
from datetime import datetime

from bench.harness import (RESULTS, UNLIMITED, CpuWindow, StackProcess, load_average, start_stack, summarize,
                           utc_stamp, write_json)
from bench.infer_paths_report import print_report
from bench.infer_paths_scenarios import burst_scenario, seed_scenario, wait_final
from bench.pools import image_pool

PATHS = ("lambda", "ec2")
WORKERS = 2  # EC2 worker processes, or the most concurrent Lambda environments
WARM_UP_IMAGES = 16  # two batches at once before the seed scenario: both Lambda environments start (cold) first
ENVIRONMENT_LINE = re.compile(r"execution environment pid (\d+) started")


def images(count: int, first_seed: int) -> list[bytes]:
    """Distinct real radiographs (a few pixels changed): each one a cache miss."""
    return [path.read_bytes() for path in image_pool(count, first_seed, folder="infer_paths")]


def infer_pids(stack: StackProcess, path: str) -> list[int]:
    if path == "ec2":
        return stack.pids()["worker"]
    return [int(pid) for pid in ENVIRONMENT_LINE.findall(stack.log_path.read_text(errors="replace"))]


def warm_up_latency(table: dict[str, dict], jobs: list[str]) -> dict:
    done = [table[j] for j in jobs if table.get(j, {}).get("status") == "COMPLETED"]
    return summarize([(_iso(j["finished_at"]) - _iso(j["created_at"])).total_seconds() * 1000 for j in done])


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def run(scenario: str, path: str, pool: list[bytes], args, stamp: str) -> dict:
    log_dir = RESULTS / f"bench_infer_paths-{stamp}" / f"{scenario}-{path}"
    stack = start_stack(log_dir, workers=WORKERS, params={**UNLIMITED, "InferPath": path})
    warm = {"jobs": []}
    try:
        if scenario == "seed":  # steady traffic: the environments/workers are warm before the measurement starts
            warm = burst_scenario(stack, pool[:WARM_UP_IMAGES], idle_s=0)
            pool = pool[WARM_UP_IMAGES:]
        load = load_average()
        with CpuWindow(lambda: {"infer": infer_pids(stack, path)}) as meter:  # follows environments started later
            if scenario == "seed":
                outcome = seed_scenario(stack, pool, args.users, args.duration)
            else:
                outcome = burst_scenario(stack, pool, args.idle)
            table = wait_final(stack, outcome["jobs"] + warm["jobs"], timeout_s=120)
        cpu_s, wall_s = meter.seconds["infer"], meter.wall_s
    finally:
        stack.stop()
    done = [table[j] for j in outcome["jobs"] if table[j]["status"] == "COMPLETED"]
    e2e_ms = [(_iso(j["finished_at"]) - _iso(j["created_at"])).total_seconds() * 1000 for j in done]
    span_s = (max(_iso(j["finished_at"]) for j in done) - min(_iso(j["created_at"]) for j in done)).total_seconds()
    first, last = min(_iso(j["created_at"]) for j in done), max(_iso(j["created_at"]) for j in done)
    warm_ms = [ms for j, ms in zip(done, e2e_ms) if _iso(j["created_at"]) >= first + (last - first) / 2]
    row = {"scenario": scenario, "path": path, "images": len(outcome["jobs"]), "completed": len(done),
           "warm_up_e2e_ms": warm_up_latency(table, warm["jobs"]) if scenario == "seed" else None,
           "e2e_ms": summarize(e2e_ms), "e2e_second_half_ms": summarize(warm_ms),
           "client_ms": summarize(outcome["client_ms"]), "span_s": span_s,
           "wall_s": wall_s, "infer_cpu_s": cpu_s, "client_errors": len(outcome["errors"]), "load_before": load,
           "load_after": load_average()}
    mapping = log_dir / "infer-mapping.json"
    if path == "lambda" and mapping.exists():
        row["lambda"] = json.loads(mapping.read_text())
    else:  # what each worker process spent starting (imports, model load): the CPU of one cold start
        row["worker_processes"] = WORKERS
        row["cold_start_cpu_s"] = sum(sorted(meter.base.values())[-WORKERS:]) / WORKERS
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--duration", type=float, default=30, help="seed scenario length, seconds")
    parser.add_argument("--burst", type=int, default=120, help="images submitted at once (the issue's 500, scaled)")
    parser.add_argument("--idle", type=float, default=15, help="seconds of idle after the burst")
    args = parser.parse_args(argv)
    stamp = utc_stamp()
    needed = args.users * int(args.duration) + 50 + WARM_UP_IMAGES
    seed_pool, burst_pool = images(needed, 3_000_000), images(args.burst, 4_000_000)
    rows = []
    for scenario, pool in (("seed", seed_pool), ("burst", burst_pool)):
        for path in PATHS:
            print(f"[bench] {scenario} / InferPath={path} ...", flush=True)
            rows.append(run(scenario, path, pool, args, stamp))
    out = RESULTS / f"bench_infer_paths-{stamp}.json"
    write_json(out, {"args": vars(args), "rows": rows})
    print_report(rows, out)
    return 0

