"""Where the CPU goes under the seed's load: py-spy samples of every stack process while Locust runs.

Run:  python -m bench profile [--users 20] [--seconds 30] [--launcher SCRIPT] [--env K=V ...]
Prints, per process (API = cxr_local itself, moto, each infer worker), its CPU share and the functions with the
most samples (inclusive and self; GIL-holding samples for the API, moto and Locust), and writes the collapsed stacks to bench/results/profile-<UTC>/.
"""
from __future__ import annotations

import argparse
import time

from bench import pyspy
from bench.harness import RESULTS, UNLIMITED, CpuWindow, load_average, start_stack, utc_stamp
from bench.locust_run import HIT_SEED, pool_size, prime_hit, start_locust
from bench.pools import image_pool

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--rate", type=int, default=67, help="py-spy samples per second per process")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--launcher")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    out = RESULTS / f"profile-{utc_stamp()}"
    pool = image_pool(pool_size(args.users, args.seconds + 10))
    hit = image_pool(1, first_seed=HIT_SEED)[0]
    with start_stack(out / "stack", env=env, params=UNLIMITED, script=args.launcher) as stack:
        prime_hit(stack, hit)
        locust = start_locust(stack, args.users, args.seconds + 8, pool, hit, out / "locust.log")
        time.sleep(4)  # past the spawn: profile the steady state
        pids = {**stack.pids(), "locust": [locust.pid]}
        targets = [(f"{role}-{pid}", pid) for role, ids in pids.items() for pid in ids]
        with CpuWindow(pids) as cpu:
            for spy in pyspy.record(targets, args.seconds, out, args.rate):
                spy.wait(args.seconds + 60)
        locust.wait(60)
    print(f"\nCPU cores used over {cpu.wall_s:.0f} s at {args.users} users (host load avg {load_average()}): "
          + ", ".join(f"{role} {cores:.2f}" for role, cores in cpu.cores.items()))
    pyspy.print_top(out, [name for name, _ in targets], args.top)
    print(f"\ncollapsed stacks: {out}")
    return 0

