"""What a closed loop of seed-style users can offer, and the saturation plateau to hold a load level against."""
from __future__ import annotations

import json
from pathlib import Path

WAIT_RANGE_S = (1, 3)  # the seed's pause between one user's tasks (locustfile's wait_time)


def offered_tasks_per_s(users: int, mean_task_s: float) -> float:
    """Each user starts its next task a mean pause after the last one finished, so N users can ask for no more
    than N / (mean pause + mean task time) tasks a second, however fast the stack is."""
    return users / (sum(WAIT_RANGE_S) / 2 + mean_task_s)


def mean_task_s(e2e: dict[str, dict]) -> float | None:
    """Mean end-to-end task time over every scenario, from per-scenario summaries (ms, with n)."""
    total = sum(row["n"] for row in e2e.values())
    return sum(row["mean"] * row["n"] for row in e2e.values() if row["n"]) / total / 1000 if total else None


def latest_plateau(results: Path) -> dict | None:
    """The best sustained jobs/s of the newest bench_saturation run (another run than the load test's)."""
    runs = sorted(results.glob("bench_saturation-*.json"))
    if not runs:
        return None
    data = json.loads(runs[-1].read_text())
    best = max(data["rows"], key=lambda row: row["stack_jobs_per_s"])
    return {"when": data["when"], "jobs_per_s": best["stack_jobs_per_s"], "batch_size": best["batch_size"],
            "window_s": best["window_s"]}
