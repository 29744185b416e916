"""Issue 18: the seed's Locust scenario at 50 users, polling every 100 ms vs long polls (?wait=20), in one run.

Run:  python -m bench long-poll [--users 50] [--duration 40] [--warmup 15] [--order poll,wait,...]
One local stack (started with --max-waiting-polls above the user count), the cache_hit image primed, then each
variant in turn on its own fresh image pool: a warm-up (not measured: it starts the long polls' execution
environments, as the polling variant's are already warm) and a measured window. Prints request rate, throughput,
end-to-end latency, CPU share per role and the load average, side by side; writes bench/results/bench_long_poll-<UTC>.json.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from bench.harness import RESULTS, UNLIMITED, StackProcess, fmt_ms, start_stack, summarize, utc_stamp, write_json
from bench.locust_run import HIT_SEED, pool_size, prime_hit, run_locust
from bench.pools import image_pool

WAIT_S = 20
VARIANTS = {"poll": 0, "wait": WAIT_S}


def run_variant(stack: StackProcess, name: str, users: int, duration_s: int, pool: list[Path], hit: Path,
                out_dir: Path) -> dict:
    raw, cpu, load = run_locust(stack, users, duration_s, pool, hit, out_dir, wait_seconds=VARIANTS[name])
    samples, failures = raw["samples"], raw["failures"]
    e2e = {s: {**summarize(samples.get(f"E2E {s}", [])), "failures": failures.get(f"E2E {s}", 0)}
           for s in ("cache_miss", "cache_hit")}
    http = {k: len(v) for k, v in samples.items() if not k.startswith("E2E")}
    jobs = e2e["cache_miss"]["n"] + e2e["cache_hit"]["n"]
    return {"variant": name, "users": users, "duration_s": duration_s, "e2e": e2e, "http_requests": http,
            "http_requests_per_s": sum(http.values()) / duration_s, "polls_per_job": sum(
                n for k, n in http.items() if k.startswith("GET")) / max(1, jobs),
            "jobs_per_s": jobs / duration_s, "http_failures": sum(v for k, v in failures.items() if not k.startswith("E2E")),
            "cpu_share": cpu.cores, "load_avg_1m": load}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=int, default=40, help="measured seconds per variant (default 40)")
    parser.add_argument("--warmup", type=int, default=15, help="unmeasured seconds before each variant (default 15)")
    parser.add_argument("--order", default="poll,wait", help="variants in run order (default poll,wait)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    stamp = utc_stamp()
    order = args.order.split(",")
    hit = image_pool(1, first_seed=HIT_SEED)[0]
    results = []
    out = RESULTS / f"bench_long_poll-{stamp}"
    stack_args = ["--max-waiting-polls", str(args.users + 10)]
    with start_stack(out / "stack", workers=args.workers, params=UNLIMITED, args=stack_args) as stack:
        prime_hit(stack, hit)
        for index, name in enumerate(order):
            # pools in folders of their own: locust takes a folder's first files, so a shared one would replay the
            # warm-up's images as cache hits in the measured window
            warm = image_pool(pool_size(args.users, args.warmup), first_seed=3_000_001 + index * 100_000)
            measured = image_pool(pool_size(args.users, args.duration), first_seed=2_000_001 + index * 100_000)
            print(f"{name}: warm-up {args.warmup} s, then {args.duration} s at {args.users} users ...", flush=True)
            if args.warmup:
                run_variant(stack, name, args.users, args.warmup, warm, hit, out / f"{index}-{name}-warmup")
            results.append(run_variant(stack, name, args.users, args.duration, measured, hit, out / f"{index}-{name}"))
    print(f"\n{args.users} users, {args.duration} s each, one stack ({args.workers} infer workers) on this "
          f"{os.cpu_count()}-core shared host, load generator on the same cores")
    print("| variant | HTTP req/s | GET per job | jobs/s | miss p50 | miss p95 | hit p50 | hit p95 | HTTP failures | "
          "CPU api / moto / worker / locust | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        miss, hit_row, cpu = r["e2e"]["cache_miss"], r["e2e"]["cache_hit"], r["cpu_share"]
        print(f"| {r['variant']} | {r['http_requests_per_s']:.0f} | {r['polls_per_job']:.1f} | {r['jobs_per_s']:.1f} | "
              f"{fmt_ms(miss['p50'])} | {fmt_ms(miss['p95'])} | {fmt_ms(hit_row['p50'])} | {fmt_ms(hit_row['p95'])} | "
              f"{r['http_failures']} | {cpu['api']:.2f} / {cpu['moto']:.2f} / {cpu['worker']:.2f} / {cpu['locust']:.2f} | "
              f"{r['load_avg_1m'][0]:.1f}->{r['load_avg_1m'][1]:.1f} |")
    write_json(RESULTS / f"bench_long_poll-{stamp}.json", {"when": stamp, "users": args.users, "results": results})
    print(f"wrote bench/results/bench_long_poll-{stamp}.json")
    return 0

