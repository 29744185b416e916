"""Local stack start-up time and POST /v1/jobs latency over real HTTP (new image vs cache hit).

Run: python -m bench submit [--requests 200] [--workers K] [--skip-cold]
Submit latency is timed twice: with the infer workers running (cache hits once the queue is idle; new images
while the workers consume them, sharing the CPUs), and with no workers (the API path alone).
Prints a table and writes bench/results/bench_submit-<UTC time>.json.
"""
from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import requests
from PIL import Image

from bench.harness import (REPO, RESULTS, UNLIMITED, StackProcess, load_average, percentile, start_stack, summarize,
                           utc_stamp, wait_until, write_json)
from cxr_local.launcher import launch_stack

SAMPLE = REPO.parent / "shared" / "data" / "xrays" / "00000001_000.png"


def cold_start(workers: int, log_dir: Path) -> dict:
    """Start from a copy of the repository without model artifacts, so the stack runs the model build."""
    with tempfile.TemporaryDirectory(prefix="cxr-cold-") as copy:
        root = Path(copy)
        shutil.copy(REPO / "template.yaml", root / "template.yaml")
        shutil.copytree(REPO / "functions", root / "functions", ignore=shutil.ignore_patterns("__pycache__"))
        (root / "layers" / "model" / "weights").mkdir(parents=True)
        stack = launch_stack(log_dir / "cold", workers=workers, params=UNLIMITED, cwd=root, ready_timeout_s=600)
        stack.stop()
        return {"wall_s": stack.start_s, "self_reported_s": stack.info["ready_seconds"]}


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
    wait_until(lambda: session.get(f"{base}/v1/jobs/{job_id}", timeout=10).json()["status"] == "COMPLETED", 120,
               interval_s=0.1, what=f"job {job_id} completed")


def queue_idle(stack: StackProcess) -> None:
    """Wait until the workers have drained the jobs queue, so cache hits are timed on an idle CPU."""
    sqs, url = stack.aws("sqs"), stack.info["resources"]["queues"]["JobsQueue"]

    def drained() -> bool:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 0

    wait_until(drained, 600, interval_s=0.5, what="the jobs queue drained")


def measure_submits(stack: StackProcess, count: int) -> dict:
    """Cache hits on an idle stack, then new images (workers, if any, consume them as they arrive)."""
    base, warmup, workers = stack.url, 10, stack.info["workers"]
    rng = random.Random(20261128)
    sample = Image.open(SAMPLE)
    sample.load()
    bodies = [png_variant(sample, rng) for _ in range(count + warmup + 1)]
    with requests.Session() as session:
        session.headers.update(stack.auth_headers)
        first = session.post(f"{base}/v1/jobs", files={"image": ("x.png", bodies[0], "image/png")}, timeout=30)
        if workers:
            wait_completed(session, base, first.json()["id"])
            queue_idle(stack)
            hits = timed_posts(session, f"{base}/v1/jobs", [bodies[0]] * (count + warmup), expect=200)[warmup:]
            queued = None
        else:  # nothing completes without workers: time the "same image already queued" answer instead
            hits = None
            queued = timed_posts(session, f"{base}/v1/jobs", [bodies[0]] * (count + warmup), expect=200)[warmup:]
        new = timed_posts(session, f"{base}/v1/jobs", bodies[1:], expect=201)[warmup:]
    return {"workers": workers, "submit_new_image": summarize(new),
            "submit_cache_hit": summarize(hits) if hits else None,
            "submit_already_queued": summarize(queued) if queued else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per case (>= 200 for the report)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="infer worker processes")
    parser.add_argument("--starts", type=int, default=3, help="warm starts to time (median reported)")
    parser.add_argument("--skip-cold", action="store_true", help="skip the start that runs the model build (~1 min)")
    args = parser.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="cxr-bench-"))
    results: dict = {"when": utc_stamp(), "cpus": os.cpu_count(), "workers": args.workers, "requests": args.requests,
                     "load_avg_at_start": load_average()}

    if not args.skip_cold:
        results["start_cold_build"] = cold_start(args.workers, log_dir)
    warm = []
    for attempt in range(args.starts):
        stack = launch_stack(log_dir / f"warm{attempt}", workers=args.workers, params=UNLIMITED)
        warm.append({"wall_s": stack.start_s, "self_reported_s": stack.info["ready_seconds"]})
        if attempt < args.starts - 1:
            stack.stop()
    results["start_warm"] = {"runs": warm, "median_wall_s": percentile([w["wall_s"] for w in warm], 50)}
    results["weights"] = stack.info["weights"]

    with stack:
        results["with_workers"] = measure_submits(stack, args.requests)
    with start_stack(log_dir / "no-workers", workers=0, params={"InferPath": "lambda", **UNLIMITED}) as stack:
        results["without_workers"] = measure_submits(stack, args.requests)
    results["load_avg_at_end"] = load_average()

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
            print(f"{label:<42}{stats['p50']:>10.2f}ms  p95 {stats['p95']:.2f}ms  n={stats['n']}")
    out = write_json(RESULTS / f"bench_submit-{results['when']}.json", results)
    print(f"load average {results['load_avg_at_start']} -> {results['load_avg_at_end']}; wrote {out.relative_to(REPO)}")
    return 0

