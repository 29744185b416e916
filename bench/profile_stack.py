"""Where the CPU goes under the seed's load: py-spy samples of every stack process while Locust runs.

Run:  python -m bench profile [--users 20] [--seconds 30] [--launcher SCRIPT] [--env K=V ...]
Prints, per process (API = cxr_local itself, moto, each infer worker), its CPU share and the functions with the
most samples (inclusive and self; GIL-holding samples for the API, moto and Locust), and writes the collapsed stacks to bench/results/profile-<UTC>/.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.harness import REPO, RESULTS, UNLIMITED, CpuWindow, load_average, start_stack, utc_stamp
from bench.locust_run import HIT_SEED, pool_size, prime_hit, start_locust
from bench.pools import image_pool

PY_SPY = Path(sys.executable).with_name("py-spy")
_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """'submit_image (cxr_core/services/submit.py:71)' -> 'submit_image (cxr_core/services/submit.py)'."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match.group("file")
    for marker in ("site-packages/", "python3.11/", f"{REPO}/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match.group('func')} ({path})"


def aggregate(collapsed: Path) -> tuple[int, Counter, Counter]:
    """Total samples, inclusive samples per function (once per stack), self samples per function."""
    total, inclusive, own = 0, Counter(), Counter()
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        frames = [frame_name(f) for f in stack.split(";")[1:]]  # the first entry names the thread
        total += samples
        for name in set(frames):
            inclusive[name] += samples
        if frames:
            own[frames[-1]] += samples
    return total, inclusive, own


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
            # --gil (only the thread holding the GIL) for the pure-Python servers: py-spy's idle detection counts
            # threads blocked in socket reads as busy in this container. Workers spend most time in ONNX without it.
            spies = [subprocess.Popen([str(PY_SPY), "record", "--pid", str(pid), "--duration", str(args.seconds),
                                       "--rate", str(args.rate), "--format", "raw", "--nonblocking", "--threads",
                                       *([] if name.startswith("worker") else ["--gil"]),
                                       "--output", str(out / f"{name}.txt")], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL) for name, pid in targets]
            for spy in spies:
                spy.wait(args.seconds + 60)
        locust.wait(60)
    print(f"\nCPU cores used over {cpu.wall_s:.0f} s at {args.users} users (host load avg {load_average()}): "
          + ", ".join(f"{role} {cores:.2f}" for role, cores in cpu.cores.items()))
    for name, _ in targets:
        collapsed = out / f"{name}.txt"
        if not collapsed.exists():
            print(f"\n{name}: no samples (py-spy could not attach)")
            continue
        total, inclusive, own = aggregate(collapsed)
        print(f"\n== {name}: {total} on-CPU samples; inclusive (share of samples) ==")
        for func, count in inclusive.most_common(args.top):
            print(f"  {100 * count / max(total, 1):5.1f}%  {func}")
        print("  -- self --")
        for func, count in own.most_common(12):
            print(f"  {100 * count / max(total, 1):5.1f}%  {func}")
    print(f"\ncollapsed stacks: {out}")
    return 0

