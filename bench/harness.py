"""What every study shares: the stack launcher, the one percentile, CPU sampling, result files, the load average."""
from __future__ import annotations

import csv
import json
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

from cxr_local.launcher import StackProcess, launch_stack
from cxr_local.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
# One client sends thousands of requests: the per-client limit (600/min) would refuse them. The limiter still does
# its DynamoDB write per lease, so its cost stays in the figures.
UNLIMITED = {"RateLimitPerMinute": "100000000"}

__all__ = ["REPO", "RESULTS", "UNLIMITED", "StackProcess", "wait_until", "start_stack", "percentile", "summarize",
           "fmt_ms", "utc_stamp", "load_average", "write_csv", "write_json", "cpu_seconds", "CpuWindow"]


def start_stack(log_dir: Path, workers: int = 2, env: dict[str, str] | None = None,
                params: dict[str, str] | None = None, script: str | None = None,
                args: list[str] | None = None) -> StackProcess:
    """The local stack with the artifacts already built (--no-build), ready once every EC2 worker loaded the model.

    The studies before issue 20 measured the EC2 worker, so InferPath defaults to ec2 here (infer_paths passes
    lambda). script: run the stack through a scratch copy with a prototype fix (--launcher of the studies)."""
    params = {"InferPath": "ec2", **(params or {})}
    return launch_stack(log_dir, "--no-build", *(args or []), workers=workers, env=env, params=params, script=script,
                        wait_for_workers=params["InferPath"] == "ec2")


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); q in [0, 100]. The bench's only percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def p50_cpu_ms(function, runs: int) -> float:
    """Median CPU time (this process, ms) of `function` over `runs` calls, after one warm-up call."""
    function()
    samples = []
    for _ in range(runs):
        start = time.process_time()
        function()
        samples.append((time.process_time() - start) * 1000)
    return percentile(samples, 50)


def summarize(values: list[float]) -> dict:
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "p99": percentile(values, 99), "mean": sum(values) / len(values) if values else None,
            "min": min(values) if values else None, "max": max(values) if values else None}


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: printed beside every figure (the host is shared)."""
    return [round(value, 2) for value in os.getloadavg()]


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


def _process_cpu(pid: int) -> float | None:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return None
    return times.user + times.system


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    """User + system CPU seconds spent so far, per role, summed over that role's processes (gone ones count 0)."""
    return {role: sum(_process_cpu(pid) or 0.0 for pid in ids) for role, ids in pids.items()}


class CpuWindow:
    """CPU per role over a measured window: `with CpuWindow(pids) as cpu: ...`, then cpu.seconds, cpu.cores.

    pids: {role: [pid, ...]}, or a callable giving it, asked again at the end so that processes started during the
    window count too (from zero; e.g. Lambda environments started on demand). A process that ended during the
    window counts what it had spent when the window opened (nothing after: its last times are gone)."""

    def __init__(self, pids) -> None:
        self._pids = pids if callable(pids) else (lambda: pids)
        self.seconds: dict[str, float] = {}
        self.base: dict[int, float] = {}  # CPU each process had spent when the window opened
        self.wall_s = 0.0

    def __enter__(self) -> "CpuWindow":
        self.base = {pid: spent for ids in self._pids().values() for pid in ids
                     if (spent := _process_cpu(pid)) is not None}
        self._began = time.monotonic()
        return self

    def __exit__(self, *_exc) -> None:
        roles = self._pids()
        self.wall_s = time.monotonic() - self._began
        self.seconds = {}
        for role, ids in roles.items():
            total = 0.0
            for pid in ids:
                spent = _process_cpu(pid)
                if spent is not None:
                    total += spent - self.base.get(pid, 0.0)
            self.seconds[role] = total

    @property
    def cores(self) -> dict[str, float]:
        return {role: seconds / self.wall_s for role, seconds in self.seconds.items()} if self.wall_s else {}

    def ms_per(self, count: int) -> dict[str, float]:
        return {role: 1000 * seconds / max(1, count) for role, seconds in self.seconds.items()}
