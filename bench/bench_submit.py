"""Local stack start-up time and POST /v1/jobs latency over real HTTP (new image vs cache hit).

Run: .venv/bin/python bench/bench_submit.py [--requests 200] [--workers K] [--skip-cold]
Submit latency is timed twice: with the infer workers running (cache hits once the queue is idle; new images
while the workers consume them, sharing the CPUs), and with no workers (the API path alone).
Prints a table and writes bench/results/bench_submit-<UTC time>.json.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import boto3
import requests
from PIL import Image

from samtranslator.yaml_helper import yaml_parse
from cxr_local.processes import stop

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "xrays" / "00000001_000.png"
RESULTS = REPO / "bench" / "results"


def start(cwd: Path, workers: int, log_path: Path, *extra: str) -> tuple[subprocess.Popen, dict, float]:
    """Start `python -m cxr_local`; return it, its ready info and the wall seconds until health answered 200."""
    ready = log_path.with_suffix(".ready.json")
    ready.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CXR_LOCAL_"))}
    if "RateLimitPerMinute" in yaml_parse((cwd / "template.yaml").read_text()).get("Parameters", {}):
        extra = ("--param", "RateLimitPerMinute=1000000", *extra)  # the bench is one client sending thousands
    began = time.perf_counter()
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "cxr_local", "--port", "0", "--workers", str(workers),
                                    "--ready-file", str(ready), *extra], cwd=cwd, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    while not ready.exists():
        if process.poll() is not None or time.perf_counter() - began > 600:
            stop(process, grace_s=60)
            raise SystemExit(f"stack did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.02)
    info = json.loads(ready.read_text())
    health = requests.get(info["url"] + "/v1/ops/health", headers=auth(info), timeout=30)
    assert health.status_code == 200, health.text
    return process, info, time.perf_counter() - began


def auth(info: dict) -> dict[str, str]:
    return {"x-api-key": info["api_key"]} if info.get("api_key") else {}


def cold_start(workers: int, log_dir: Path) -> dict:
    """Start from a copy of the repository without model artifacts, so the stack runs the model build."""
    with tempfile.TemporaryDirectory(prefix="cxr-cold-") as copy:
        root = Path(copy)
        shutil.copy(REPO / "template.yaml", root / "template.yaml")
        shutil.copytree(REPO / "functions", root / "functions", ignore=shutil.ignore_patterns("__pycache__"))
        (root / "layers" / "model" / "weights").mkdir(parents=True)
        process, info, seconds = start(root, workers, log_dir / "cold.log")
        stop(process, grace_s=60)
        return {"wall_s": seconds, "self_reported_s": info["ready_seconds"]}


def png_variant(base: Image.Image, rng: random.Random) -> bytes:
    """The sample radiograph with a few random pixels changed: a new SHA-256, still a valid image."""
    image = base.copy()
    for _ in range(5):
        xy = (rng.randrange(image.width), rng.randrange(image.height))
        image.putpixel(xy, (image.getpixel(xy) + rng.randrange(1, 255)) % 256)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def timed_posts(session: requests.Session, url: str, bodies: list[bytes], expect: int) -> list[float]:
    millis = []
    for body in bodies:
        began = time.perf_counter()
        response = session.post(url, files={"image": ("xray.png", body, "image/png")}, timeout=30)
        millis.append((time.perf_counter() - began) * 1000)
        if response.status_code != expect:
            raise SystemExit(f"expected {expect}, got {response.status_code}: {response.text}")
    return millis


def wait_completed(session: requests.Session, base: str, job_id: str) -> None:
    deadline = time.monotonic() + 120
    while session.get(f"{base}/v1/jobs/{job_id}", timeout=10).json()["status"] != "COMPLETED":
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} did not complete")
        time.sleep(0.1)


def queue_idle(info: dict) -> None:
    """Wait until the workers have drained the jobs queue, so cache hits are timed on an idle CPU."""
    sqs = boto3.client("sqs", endpoint_url=info["moto_endpoint"], region_name=info["aws_region"],
                       aws_access_key_id=info["aws_access_key_id"], aws_secret_access_key=info["aws_secret_access_key"])
    url = info["resources"]["queues"]["JobsQueue"]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        if int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 0:
            return
        time.sleep(0.5)
    raise SystemExit("jobs queue did not drain")


def measure_submits(info: dict, count: int) -> dict:
    """Cache hits on an idle stack, then new images (workers, if any, consume them as they arrive)."""
    base, warmup = info["url"], 10
    rng = random.Random(20261128)
    sample = Image.open(SAMPLE)
    sample.load()
    bodies = [png_variant(sample, rng) for _ in range(count + warmup + 1)]
    with requests.Session() as session:
        session.headers.update(auth(info))
        first = session.post(f"{base}/v1/jobs", files={"image": ("x.png", bodies[0], "image/png")}, timeout=30)
        if info["workers"]:
            wait_completed(session, base, first.json()["id"])
            queue_idle(info)
            hits = timed_posts(session, f"{base}/v1/jobs", [bodies[0]] * (count + warmup), expect=200)[warmup:]
            queued = None
        else:  # nothing completes without workers: time the "same image already queued" answer instead
            hits = None
            queued = timed_posts(session, f"{base}/v1/jobs", [bodies[0]] * (count + warmup), expect=200)[warmup:]
        new = timed_posts(session, f"{base}/v1/jobs", bodies[1:], expect=201)[warmup:]
    return {"workers": info["workers"], "submit_new_image": summary(new),
            "submit_cache_hit": summary(hits) if hits else None,
            "submit_already_queued": summary(queued) if queued else None}


def summary(millis: list[float]) -> dict:
    ordered = sorted(millis)
    return {"n": len(ordered), "p50_ms": statistics.median(ordered), "p95_ms": ordered[int(0.95 * (len(ordered) - 1))],
            "mean_ms": statistics.fmean(ordered), "min_ms": ordered[0], "max_ms": ordered[-1]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per case (>= 200 for the report)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="infer worker processes")
    parser.add_argument("--starts", type=int, default=3, help="warm starts to time (median reported)")
    parser.add_argument("--skip-cold", action="store_true", help="skip the start that runs the model build (~1 min)")
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="cxr-bench-"))
    results: dict = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
                     "workers": args.workers, "requests": args.requests, "load_avg_1m_at_start": os.getloadavg()[0]}

    if not args.skip_cold:
        results["start_cold_build"] = cold_start(args.workers, log_dir)
    warm = []
    for attempt in range(args.starts):
        process, info, seconds = start(REPO, args.workers, log_dir / f"warm{attempt}.log")
        warm.append({"wall_s": seconds, "self_reported_s": info["ready_seconds"]})
        if attempt < args.starts - 1:
            stop(process, grace_s=60)
    results["start_warm"] = {"runs": warm, "median_wall_s": statistics.median(w["wall_s"] for w in warm)}
    results["weights"] = info["weights"]

    try:
        results["with_workers"] = measure_submits(info, args.requests)
    finally:
        stop(process, grace_s=60)
    process, info, _ = start(REPO, 0, log_dir / "no-workers.log", "--no-build")
    try:
        results["without_workers"] = measure_submits(info, args.requests)
    finally:
        stop(process, grace_s=60)
    results["load_avg_1m_at_end"] = os.getloadavg()[0]

    print(f"\nlocal stack on {os.cpu_count()} CPUs, {args.workers} infer worker process(es), "
          f"weights: {'RANDOM-INIT' if results['weights']['random_init'] else 'real'}")
    print(f"{'measure':<42}{'value':>12}")
    if "start_cold_build" in results:
        print(f"{'start -> ready, cold (model build)':<42}{results['start_cold_build']['wall_s']:>11.2f}s")
    print(f"{'start -> ready, weights built':<42}{results['start_warm']['median_wall_s']:>11.2f}s  "
          f"(median of {args.starts})")
    for scenario in ("with_workers", "without_workers"):
        data = results[scenario]
        for name in ("submit_new_image", "submit_cache_hit", "submit_already_queued"):
            stats = data[name]
            if stats is None:
                continue
            label = f"POST {name.split('_', 1)[1].replace('_', ' ')} p50, {data['workers']} workers"
            print(f"{label:<42}{stats['p50_ms']:>10.2f}ms  p95 {stats['p95_ms']:.2f}ms  n={stats['n']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bench_submit-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
