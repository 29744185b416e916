"""The seed's Locust load test against the local stack at 10, 20 and 50 users, with the seed's figures beside ours.

Run:  python -m bench load [--full] [--users 10 20 50] [--duration 45] [--env KEY=VALUE ...]
Starts a fresh local stack per user level, runs Locust headless in its own process, prints the seed-format
tables and writes bench/results/bench_load-<UTC>.{json,csv} and bench_load-<UTC>.png.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from bench.capacity import latest_plateau, mean_task_s, offered_tasks_per_s
from bench.harness import RESULTS, UNLIMITED, fmt_ms, start_stack, summarize, utc_stamp, write_csv, write_json
from bench.locust_run import HIT_SEED, pool_size, prime_hit, run_locust
from bench.pools import image_pool
from bench.seed import SEED_LOAD, SEED_SUBMIT_P50_MS, TARGETS
from bench.worker_log import batch_sizes


def run_level(users: int, duration_s: int, pool: list[Path], hit: Path, env: dict[str, str], workers: int,
              stamp: str, launcher: str | None = None) -> dict:
    level_dir = RESULTS / f"bench_load-{stamp}" / f"{users}u"
    with start_stack(level_dir / "stack", workers=workers, env=env, params=UNLIMITED, script=launcher) as stack:
        prime_hit(stack, hit)
        batches_before = len(batch_sizes(stack.worker_log))
        raw, cpu, load = run_locust(stack, users, duration_s, pool, hit, level_dir, csv=True)
        sizes = batch_sizes(stack.worker_log)[batches_before:]
    samples, failures = raw["samples"], raw["failures"]

    def stats(key: str) -> dict:
        row = summarize(samples.get(key, []))
        row["failures"] = failures.get(key, 0)
        return row

    e2e = {scenario: stats(f"E2E {scenario}") for scenario in ("cache_miss", "cache_hit")}
    submit_all = samples.get("POST /v1/jobs [cache_miss]", []) + samples.get("POST /v1/jobs [cache_hit]", [])
    requests_total = sum(len(v) for k, v in samples.items() if not k.startswith("E2E"))
    request_failures = sum(v for k, v in failures.items() if not k.startswith("E2E"))
    return {
        "users": users, "duration_s": duration_s, "e2e": e2e,
        "submit": summarize(submit_all), "submit_miss": stats("POST /v1/jobs [cache_miss]"),
        "submit_hit": stats("POST /v1/jobs [cache_hit]"), "poll": stats("GET /v1/jobs/{id}"),
        "http_requests": requests_total, "http_failures": request_failures,
        "failures": request_failures + sum(row["failures"] for row in e2e.values()),
        "jobs_per_s": (e2e["cache_miss"]["n"] + e2e["cache_hit"]["n"]) / duration_s,
        "inferred_per_s": e2e["cache_miss"]["n"] / duration_s,
        "http_requests_per_s": requests_total / duration_s,
        "mean_batch_size": sum(sizes) / len(sizes) if sizes else None, "batches": len(sizes),
        "mean_task_s": mean_task_s(e2e),
        "cpu_share": cpu.cores, "cpu_ms_per_job": cpu.ms_per(e2e["cache_miss"]["n"] + e2e["cache_hit"]["n"]),
        "load_avg_1m": load, "pool_used": raw["misses_used"], "stack_start_s": stack.start_s,
    }


def print_report(levels: list[dict], env: dict[str, str], launcher: str | None = None) -> None:
    print(f"\nLoad test, local stack on this {os.cpu_count()}-core shared host (load generator on the same cores); "
          f"seed: EC2 t3.large. Settings: {env or 'template defaults'}"
          + (f"; stack launched through {launcher} (prototype)" if launcher else ""))
    for level in levels:
        seed = SEED_LOAD.get(level["users"])
        print(f"\n### {level['users']} users ({level['duration_s']} s)")
        print("| scenario | p50 | p95 | p99 | n | failures | seed p50 | seed p95 | seed/ours p50 |")
        print("|---|---|---|---|---|---|---|---|---|")
        for scenario, row in level["e2e"].items():
            seed_row = seed[scenario] if seed else None
            ratio = f"{seed_row['p50'] / row['p50']:.1f}x" if seed_row and row["p50"] else "-"
            print(f"| {scenario} | {fmt_ms(row['p50'])} ms | {fmt_ms(row['p95'])} ms | {fmt_ms(row['p99'])} ms | "
                  f"{row['n']} | {row['failures']} | {fmt_ms(seed_row['p50']) if seed_row else '-'} | "
                  f"{fmt_ms(seed_row['p95']) if seed_row else '-'} | {ratio} |")
        cpu = ", ".join(f"{k} {v:.2f} ({level['cpu_ms_per_job'][k]:.0f} ms/job)" for k, v in level["cpu_share"].items())
        print(f"submit p50 {fmt_ms(level['submit']['p50'])} ms / p95 {fmt_ms(level['submit']['p95'])} ms "
              f"(miss {fmt_ms(level['submit_miss']['p50'])}, hit {fmt_ms(level['submit_hit']['p50'])}; "
              f"seed p50 {SEED_SUBMIT_P50_MS:.0f}); poll p50 {fmt_ms(level['poll']['p50'])} ms; "
              f"failures {level['failures']} of {level['http_requests']} requests")
        print(f"throughput {level['jobs_per_s']:.1f} jobs/s ({level['inferred_per_s']:.1f} inferred/s), "
              f"{level['http_requests_per_s']:.0f} HTTP req/s; mean batch {level['mean_batch_size'] or 0:.2f}; "
              f"CPU cores used: {cpu}; load avg {level['load_avg_1m'][0]:.1f}->{level['load_avg_1m'][1]:.1f}")
        if level["mean_task_s"] is not None:  # a closed loop: tasks/s = users / (mean pause + mean task time)
            print(f"closed loop: mean task time {level['mean_task_s']:.2f} s; {level['users']} users can ask for at "
                  f"most {offered_tasks_per_s(level['users'], 0):.1f} tasks/s, at zero latency")
    twenty = next((lv for lv in levels if lv["users"] == 20), None)
    if twenty:
        miss, hit = twenty["e2e"]["cache_miss"], twenty["e2e"]["cache_hit"]
        checks = [("20u miss p50 <= 300 ms", miss["p50"], TARGETS["miss_p50_ms_20"]),
                  ("20u miss p95 <= 800 ms", miss["p95"], TARGETS["miss_p95_ms_20"]),
                  ("20u hit p50 <= 20 ms", hit["p50"], TARGETS["hit_p50_ms_20"]),
                  ("submit p50 <= 15 ms (20u)", twenty["submit"]["p50"], TARGETS["submit_p50_ms"])]
        print("\nTargets: " + "; ".join(f"{name}: {fmt_ms(value)} {'MET' if value is not None and value <= limit else 'MISSED'}"
                                        for name, value, limit in checks))
    print("Failures: " + ", ".join(f"{lv['users']}u {lv['failures']}" for lv in levels))
    plateau, top = latest_plateau(RESULTS), max(levels, key=lambda lv: lv["users"])
    if plateau:
        print(f"{top['users']}u against the saturation plateau of the latest bench_saturation run ({plateau['when']}, "
              f"another run: {plateau['jobs_per_s']:.1f} jobs/s at batch {plateau['batch_size']}, window "
              f"{plateau['window_s']:g} s): tasks {top['jobs_per_s']:.1f}/s = {top['jobs_per_s'] / plateau['jobs_per_s']:.2f}, "
              f"inferred {top['inferred_per_s']:.1f}/s = {top['inferred_per_s'] / plateau['jobs_per_s']:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[10, 20, 50])
    parser.add_argument("--duration", type=int, default=45, help="seconds per user level (default 45)")
    parser.add_argument("--full", action="store_true", help="120 s per level, as the seed ran it")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--launcher", help="run the stack through this script instead of `-m cxr_local` "
                        "(a scratch copy with a prototype fix)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="stack setting override, e.g. INFER_BATCH_WINDOW_SECONDS=0")
    args = parser.parse_args(argv)
    duration = 120 if args.full else args.duration
    env = dict(item.split("=", 1) for item in args.env)
    stamp = utc_stamp()
    pool = image_pool(pool_size(max(args.users), duration))
    hit = image_pool(1, first_seed=HIT_SEED)[0]
    levels = []
    for users in args.users:
        print(f"running {users} users for {duration} s ...", flush=True)
        levels.append(run_level(users, duration, pool, hit, env, args.workers, stamp, args.launcher))
    print_report(levels, env, args.launcher)
    report = {"when": stamp, "cpus": os.cpu_count(), "workers": args.workers, "env": env, "levels": levels,
              "launcher": args.launcher,
              "seed": {"load": SEED_LOAD, "submit_p50_ms": SEED_SUBMIT_P50_MS}}
    write_json(RESULTS / f"bench_load-{stamp}.json", report)
    rows = [{"users": lv["users"], "scenario": s, **{k: lv["e2e"][s][k] for k in ("n", "p50", "p95", "p99", "failures")},
             "seed_p50": (SEED_LOAD.get(lv["users"]) or {}).get(s, {}).get("p50"),
             "seed_p95": (SEED_LOAD.get(lv["users"]) or {}).get(s, {}).get("p95"),
             "submit_p50": lv["submit"]["p50"], "submit_p95": lv["submit"]["p95"], "jobs_per_s": lv["jobs_per_s"],
             "failures_total": lv["failures"]} for lv in levels for s in ("cache_miss", "cache_hit")]
    write_csv(RESULTS / f"bench_load-{stamp}.csv", rows)
    from bench.plots import plot_load

    png = plot_load(levels, RESULTS / f"bench_load-{stamp}.png")
    print(f"wrote bench/results/bench_load-{stamp}.json, .csv, {png.name}")
    return 0

