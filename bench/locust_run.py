"""The seed's Locust scenario (locustfile.py) run headless in its own process against a started stack."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import requests

from bench.harness import REPO, CpuWindow, StackProcess, load_average, wait_until
from bench.pools import multipart_body

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
HIT_SEED = 900_001
MISS_SHARE, MEAN_WAIT_S = 0.7, 2.0


def pool_size(users: int, duration_s: int) -> int:
    """Distinct images a run may use: 0.7 misses per task, a task every ~2 s per user, 70 % margin."""
    return int(users * duration_s * MISS_SHARE / MEAN_WAIT_S * 1.7) + 50


def prime_hit(stack: StackProcess, image: Path) -> None:
    """Make the cache_hit image a cache entry before the run, as the seed's warm cache was."""
    body, content_type = multipart_body(image.read_bytes())
    answer = requests.post(f"{stack.url}/v1/jobs", data=body, headers={**stack.auth_headers,
                                                                        "Content-Type": content_type}, timeout=30)
    if answer.status_code not in (200, 201):
        raise RuntimeError(f"priming the cache_hit image: {answer.status_code} {answer.text}")
    job_url = f"{stack.url}/v1/jobs/{answer.json()['id']}"
    wait_until(lambda: requests.get(job_url, headers=stack.auth_headers, timeout=10).json()["status"] == "COMPLETED",
               120, interval_s=0.1, what="the cache_hit image completed")


def start_locust(stack: StackProcess, users: int, seconds: float, pool: list[Path], hit: Path, log: Path,
                 samples_out: Path | None = None, wait_seconds: float = 0, csv_prefix: Path | None = None,
                 client: str = "fast") -> subprocess.Popen:
    """Locust headless, all users spawned in the first second, with the pool and the hit image (BENCH_* env).
    client: fast (FastHttpUser, prebuilt bodies) or seed (HttpUser, requests encoding each upload)."""
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users), "-r",
               str(users), "-t", f"{seconds:g}s", "--stop-timeout", "30", "--host", stack.url, "--only-summary",
               "--loglevel", "WARNING", *(["--csv", str(csv_prefix)] if csv_prefix else [])]
    env = {**os.environ, "BENCH_POOL_DIR": str(pool[0].parent), "BENCH_POOL_LIMIT": str(len(pool)),
           "BENCH_HIT_IMAGE": str(hit), "BENCH_API_KEY": stack.info.get("api_key") or "",
           "BENCH_WAIT_SECONDS": str(wait_seconds), "BENCH_CLIENT": client,
           **({"BENCH_SAMPLES_OUT": str(samples_out)} if samples_out else {})}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as handle:
        return subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO)


def run_locust(stack: StackProcess, users: int, duration_s: int, pool: list[Path], hit: Path, out_dir: Path,
               wait_seconds: float = 0, csv: bool = False, client: str = "fast") -> tuple[dict, CpuWindow, list]:
    """One measured run: (raw samples and failures, CPU per role over the run, [load before, load after])."""
    samples_out = out_dir / "samples.json"
    load_before = load_average()[0]
    locust = start_locust(stack, users, duration_s, pool, hit, out_dir / "locust.log", samples_out, wait_seconds,
                          out_dir / "locust" if csv else None, client)
    with CpuWindow({**stack.pids(), "locust": [locust.pid]}) as cpu:
        try:
            locust.wait(timeout=duration_s)  # locust's own -t: sample CPU over the measured window only
        except subprocess.TimeoutExpired:
            pass
    locust.wait(timeout=duration_s + 120)
    return json.loads(samples_out.read_text()), cpu, [load_before, load_average()[0]]
