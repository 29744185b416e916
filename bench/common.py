"""Shared bench helpers: the seed's figures, percentiles, CSV/JSON output, the X-ray pool and the local stack."""
from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
POOL_ROOT = RESULTS / "image_pool"

# The seed platform's figures (seed/performance-analysis.ko.md; EC2 t3.large, Django + Redis + 2 torch workers).
SEED_LOAD = {  # users -> scenario -> ms
    10: {"cache_miss": {"p50": 1100.0, "p95": 2800.0}, "cache_hit": {"p50": 68.0, "p95": 230.0}},
    20: {"cache_miss": {"p50": 6000.0, "p95": 9700.0}, "cache_hit": {"p50": 110.0, "p95": 370.0}},
}
SEED_SUBMIT_P50_MS = 92.0
SEED_CEILING_JOBS_PER_S = 7.0
TARGETS = {"miss_p50_ms_20": 300.0, "miss_p95_ms_20": 800.0, "hit_p50_ms_20": 20.0, "submit_p50_ms": 15.0,
           "saturation_ratio": 0.85}

_COMPLETED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ \S+ INFO job (\S+) completed")
_READY = re.compile(r"worker (\d+) ready")


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); q in [0, 100]."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: list[float]) -> dict:
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "p99": percentile(values, 99), "mean": sum(values) / len(values) if values else None,
            "max": max(values) if values else None}


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def write_csv(path: Path, rows: list[dict]) -> Path:
    """Rows of flat dicts; the header is the union of keys in first-seen order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fields: list[str] = []
    for row in rows:
        fields.extend(key for key in row if key not in fields)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


def _make_variant(seed: int) -> bytes:
    sys.path.insert(0, str(REPO))
    from tests.images import XRAYS, perturbed_png

    sources = sorted(p for p in XRAYS.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    return perturbed_png(seed, source=sources[seed % len(sources)])


def image_pool(count: int, first_seed: int = 1) -> list[Path]:
    """`count` distinct, real-looking X-ray PNGs (sample radiographs, a few pixels changed), cached on disk.

    Made before a measurement so the load generator spends no CPU encoding PNGs while it runs.
    """
    folder = POOL_ROOT / f"seed{first_seed}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{seed:06d}.png" for seed in range(first_seed, first_seed + count)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for path, data in zip(missing, pool.map(_make_variant, [int(p.stem) for p in missing], chunksize=16)):
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(data)
                tmp.replace(path)
    return paths


def multipart_body(data: bytes, boundary: str = "cxrbenchboundary7MA4YWxk") -> tuple[bytes, str]:
    """A seed-compatible multipart/form-data body with field `image`; returns (body, content type)."""
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"xray.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def completions(worker_log: Path) -> list[tuple[float, str]]:
    """(epoch seconds, job id) of every `job ... completed` line the infer workers logged."""
    found = []
    if not worker_log.exists():
        return found
    with open(worker_log, errors="replace") as handle:
        for line in handle:
            match = _COMPLETED.match(line)
            if match:
                stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
                found.append((stamp.timestamp(), match.group(2)))  # the worker logs local time
    return found


def batch_sizes(worker_log: Path) -> list[int]:
    """BatchSize of every non-empty batch, from the workers' EMF lines."""
    sizes = []
    if worker_log.exists():
        for line in worker_log.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"BatchSize"' in line:
                try:
                    size = int(json.loads(line)["BatchSize"][0])
                except (ValueError, KeyError, IndexError, TypeError):
                    continue
                if size:
                    sizes.append(size)
    return sizes


class LocalStack:
    """`python -m cxr_local` as a child process; ready once the API answers and every worker loaded the model.

    launcher: a script to run instead of `-m cxr_local` (same arguments), to measure a prototype fix made in a
    scratch copy without touching the stack's code.
    """

    def __init__(self, log_dir: Path, workers: int = 2, env: dict[str, str] | None = None,
                 params: dict[str, str] | None = None, launcher: str | None = None, args: list[str] | None = None):
        self.log_dir, self.workers, self.launcher, self.args = log_dir, workers, launcher, args or []
        # the benches before issue 20 measured the EC2 worker; bench_infer_paths.py passes InferPath=lambda
        self.env, self.params = env or {}, {"InferPath": "ec2", **(params or {})}
        self.process: subprocess.Popen | None = None
        self.info: dict = {}

    @property
    def url(self) -> str:
        return self.info["url"]

    @property
    def worker_log(self) -> Path:
        return self.log_dir / "worker.log"

    def start(self, timeout_s: float = 300) -> "LocalStack":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        ready = self.log_dir / "ready.json"
        ready.unlink(missing_ok=True)
        entry = [str(Path(self.launcher).resolve())] if self.launcher else ["-m", "cxr_local"]
        command = [sys.executable, *entry, "--port", "0", "--workers", str(self.workers), "--no-build",
                   "--ready-file", str(ready), "--log-dir", str(self.log_dir)]
        command += [a for k, v in self.env.items() for a in ("--env", f"{k}={v}")]
        command += [a for k, v in self.params.items() for a in ("--param", f"{k}={v}")] + self.args
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CXR_LOCAL_"))}
        began = time.monotonic()
        with open(self.log_dir / "stack.log", "ab") as log:
            self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        workers = self.workers if self.params["InferPath"] == "ec2" else 0  # Lambda environments start on demand
        while not ready.exists() or self._ready_workers() < workers:
            if self.process.poll() is not None or time.monotonic() - began > timeout_s:
                self.stop()
                tail = (self.log_dir / "stack.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"local stack did not become ready:\n{tail}")
            time.sleep(0.1)
        self.info = json.loads(ready.read_text())
        self.info["start_s"] = time.monotonic() - began
        return self

    def _ready_workers(self) -> int:
        if not self.worker_log.exists():
            return 0
        return len(set(_READY.findall(self.worker_log.read_text(errors="replace"))))

    def pids(self) -> dict[str, list[int]]:
        """API (cxr_local's HTTP server plus its function sandbox processes), moto, and the infer workers."""
        import psutil

        root = psutil.Process(self.process.pid)
        found: dict[str, list[int]] = {"api": [root.pid], "moto": [], "worker": []}
        for child in root.children():
            try:
                line = " ".join(child.cmdline())
            except psutil.NoSuchProcess:  # a function sandbox that timed out and was replaced
                continue
            if "moto" in line:
                found["moto"].append(child.pid)
            elif "-m cxr_worker" in line:
                found["worker"] += [child.pid] + [p.pid for p in child.children(recursive=True)]
            else:
                found["api"] += [child.pid] + [p.pid for p in child.children(recursive=True)]
        return found

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()
