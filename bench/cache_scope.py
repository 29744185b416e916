"""What per-client cache scope costs: 5 client keys sending the same image, CACHE_SCOPE=client vs global.

Run: python -m bench cache-scope [--clients 5] [--rounds 3] [--workers 1]
One local stack per scope, one after the other in this run. Client 1 sends the image and waits for its result;
clients 2..N then send the same bytes, each waiting for its result (in client scope each runs the model; in global
scope each is a cache hit); then every client sends it again `rounds` times (hits in both scopes). Prints the model
runs and the time from POST to a result per phase and scope, and writes bench/results/cache_scope-<UTC time>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from bench.harness import REPO, RESULTS, StackProcess, fmt_ms, load_average, start_stack, summarize, utc_stamp, write_json

SAMPLE = Path(os.environ.get("CXR_XRAYS_DIR", REPO.parent / "shared" / "data" / "xrays")) / "00000001_000.png"


def new_key(stack: StackProcess, client: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cxr_core.admin", "--stack", str(stack.ready_file),
                           "keys", "create", "--client", client], cwd=REPO, capture_output=True, text=True,
                          check=True, timeout=120)
    return json.loads(done.stdout)["api_key"]


def time_to_result(url: str, key: str, data: bytes) -> tuple[float, bool]:
    """POST the image, poll every 20 ms until COMPLETED; (ms, whether the answer was cached)."""
    headers = {"x-api-key": key}
    began = time.perf_counter()
    job = requests.post(f"{url}/v1/jobs", headers=headers, files={"image": ("x.png", data)}, timeout=60).json()
    while job["status"] != "COMPLETED":
        if job["status"] == "FAILED":
            raise SystemExit(f"job failed: {job}")
        time.sleep(0.02)
        job = requests.get(f"{url}/v1/jobs/{job['id']}", headers=headers, timeout=60).json()
    return (time.perf_counter() - began) * 1000, bool(job.get("cached"))


def run_scope(scope: str, clients: int, rounds: int, workers: int, data: bytes, log_root: Path) -> dict:
    with start_stack(log_root / scope, workers=workers, env={"CACHE_SCOPE": scope}) as stack:
        keys = [new_key(stack, f"bench-client-{i}") for i in range(clients)]
        first_ms, _ = time_to_result(stack.url, keys[0], data)
        others = [time_to_result(stack.url, key, data) for key in keys[1:]]
        repeats = [time_to_result(stack.url, key, data) for _ in range(rounds) for key in keys]
    return {"scope": scope, "first_ms": first_ms,
            "other_clients": summarize([ms for ms, _ in others]),
            "other_clients_model_runs": sum(1 for _, cached in others if not cached),
            "repeats": summarize([ms for ms, _ in repeats]),
            "model_runs": 1 + sum(1 for _, cached in others + repeats if not cached)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    data = SAMPLE.read_bytes() + str(time.time()).encode()  # trailing bytes: a fresh cache key, still a PNG
    load_before = load_average()
    results = [run_scope(scope, args.clients, args.rounds, args.workers, data, RESULTS / f"cache_scope-{utc_stamp()}")
               for scope in ("client", "global")]
    print(f"{args.clients} clients, same image; load average before: {load_before}, after: {load_average()}")
    print(f"{'scope':8} {'model runs':>10} {'clients 2..N p50 ms':>20} {'mean':>8} {'repeats p50 ms':>15}")
    for r in results:
        print(f"{r['scope']:8} {r['model_runs']:>10} {fmt_ms(r['other_clients']['p50']):>20} "
              f"{fmt_ms(r['other_clients']['mean']):>8} {fmt_ms(r['repeats']['p50']):>15}")
    client, shared = results
    if shared["other_clients"]["mean"]:
        print(f"per-client scope: clients 2..N wait {client['other_clients']['mean'] / shared['other_clients']['mean']:.1f}x "
              f"as long for their first answer, and the model runs {client['model_runs']}x instead of "
              f"{shared['model_runs']}x; repeats cost the same ({fmt_ms(client['repeats']['p50'])} vs "
              f"{fmt_ms(shared['repeats']['p50'])} ms p50)")
    path = write_json(RESULTS / f"cache_scope-{utc_stamp()}.json", {"clients": args.clients, "results": results,
                                                                   "loadavg_before": load_before})
    print(f"wrote {path}")
    return 0

