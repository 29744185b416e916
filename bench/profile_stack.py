"""Where the CPU goes under the seed's load: py-spy samples of every stack process while Locust runs.

Run:  .venv/bin/python bench/profile_stack.py [--users 20] [--seconds 30] [--launcher SCRIPT] [--env K=V ...]
Prints, per process (API = cxr_local itself, moto, each infer worker), its CPU share and the functions with the
most samples (inclusive and self; GIL-holding samples for the API, moto and Locust), and writes the collapsed stacks to bench/results/profile-<UTC>/.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench_load import BENCH_PARAMS, HIT_SEED, LOCUSTFILE, cpu_seconds, pool_size, prime_hit
from common import RESULTS, LocalStack, image_pool, utc_stamp

PY_SPY = Path(sys.executable).with_name("py-spy")
_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """'submit_image (cxr_core/services/submit.py:71)' -> 'submit_image (cxr_core/services/submit.py)'."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match.group("file")
    for marker in ("site-packages/", "python3.11/", "/work/main/"):
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--rate", type=int, default=67, help="py-spy samples per second per process")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--launcher")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    out = RESULTS / f"profile-{utc_stamp()}"
    pool = image_pool(pool_size(args.users, args.seconds + 10))
    hit = image_pool(1, first_seed=HIT_SEED)[0]
    with LocalStack(out / "stack", env=env, params=BENCH_PARAMS, launcher=args.launcher) as stack:
        prime_hit(stack.url, stack.info.get("api_key"), hit)
        locust = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(args.users), "-r",
             str(args.users), "-t", f"{args.seconds + 8}s", "--host", stack.url, "--only-summary", "--loglevel",
             "WARNING"], cwd=LOCUSTFILE.parent, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            env={**os.environ, "BENCH_POOL_DIR": str(pool[0].parent), "BENCH_POOL_LIMIT": str(len(pool)),
                 "BENCH_HIT_IMAGE": str(hit), "BENCH_API_KEY": stack.info.get("api_key") or ""})
        time.sleep(4)  # past the spawn
        pids = {**stack.pids(), "locust": [locust.pid]}
        targets = [(f"{role}-{pid}", pid) for role, ids in pids.items() for pid in ids]
        before = cpu_seconds(pids)
        # --gil (only the thread holding the GIL) for the pure-Python servers: py-spy's idle detection counts
        # threads blocked in socket reads as busy in this container. Workers spend most time in ONNX without it.
        spies = [subprocess.Popen([str(PY_SPY), "record", "--pid", str(pid), "--duration", str(args.seconds),
                                   "--rate", str(args.rate), "--format", "raw", "--nonblocking", "--threads",
                                   *([] if name.startswith("worker") else ["--gil"]),
                                   "--output", str(out / f"{name}.txt")], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for name, pid in targets]
        for spy in spies:
            spy.wait(args.seconds + 60)
        after = cpu_seconds(pids)
        locust.wait(60)
    print(f"\nCPU cores used over {args.seconds} s at {args.users} users (host load avg {os.getloadavg()[0]:.1f}): "
          + ", ".join(f"{role} {(after[role] - before[role]) / args.seconds:.2f}" for role in before))
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


if __name__ == "__main__":
    sys.exit(main())
