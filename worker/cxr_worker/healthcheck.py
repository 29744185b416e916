"""Docker HEALTHCHECK of the EC2 infer worker: every worker process is up, none is in a crash-restart loop, and
what they need answers.

The supervisor (`python -m cxr_worker`) restarts a dead worker after a second, so a worker that keeps
crashing (missing weights, bad settings) shows as a process younger than MIN_AGE_SECONDS at every check. Then the
readiness function behind GET /v1/ops/ready runs here, in-process (the worker has no HTTP server): one call each to
the tables, the bucket and the queue the workers use, and a look at the model artifacts.
Exit 0 healthy, 1 unhealthy (reason on stdout).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

MIN_AGE_SECONDS = 20.0
SUPERVISOR_MARKER = " -m cxr_worker "  # the supervisor's command line (not -m cxr_worker.healthcheck)
WORKER_MARKER = "multiprocessing.spawn"


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _parent(pid: str) -> str | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return line.split()[1]
    except OSError:
        return None
    return None


def _age_seconds(pid: str) -> float:
    start_ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def check(expected_workers: int, min_age: float = MIN_AGE_SECONDS,
          supervisors: list[str] | None = None) -> tuple[bool, str]:
    pids = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    if supervisors is None:
        supervisors = [pid for pid in pids if SUPERVISOR_MARKER in _cmdline(pid) and WORKER_MARKER not in _cmdline(pid)]
    supervisors = [pid for pid in supervisors if _cmdline(pid)]
    if not supervisors:
        return False, "no worker supervisor process"
    workers = [pid for pid in pids if _parent(pid) in supervisors and "spawn_main" in _cmdline(pid)]
    if len(workers) < expected_workers:
        return False, f"{len(workers)} of {expected_workers} worker processes running"
    young = [pid for pid in workers if _age_seconds(pid) < min_age]
    if young:
        return False, f"worker(s) {young} younger than {min_age:.0f}s: restarting after crashes?"
    return True, f"{len(workers)} worker processes up"


def check_ready(rt) -> tuple[bool, str]:
    """The API's readiness function with the worker's dependencies (cxr_core.bootstrap.Runtime.readiness_probes)."""
    from cxr_core.services.ops import readiness

    report = readiness(rt.readiness_probes(worker=True))
    failed = [f"{name}: {check['error']}" for name, check in report["checks"].items() if not check["ok"]]
    if failed:
        return False, "not ready: " + "; ".join(failed)
    return True, f"ready ({', '.join(report['checks'])})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=None, help="expected workers (default: WORKER_PROCESSES)")
    parser.add_argument("--min-age", type=float, default=MIN_AGE_SECONDS)
    parser.add_argument("--supervisor-pid", help="check this supervisor only (default: find it by command line)")
    args = parser.parse_args(argv)
    if args.workers is None:
        from cxr_core.config import settings
        args.workers = settings().worker_processes
    supervisors = [args.supervisor_pid] if args.supervisor_pid else None
    healthy, reason = check(args.workers, args.min_age, supervisors)
    if healthy:
        from cxr_core.bootstrap import runtime
        healthy, ready = check_ready(runtime())
        reason = f"{reason}; {ready}"
    print(reason)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
