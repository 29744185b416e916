"""Long-lived infer worker (EC2 mode): K processes, each long-polling SQS and running micro-batches.

Run as `python -m cxr_worker [--processes K]`. SIGTERM or Ctrl-C: every process finishes the
batch in hand, settles its messages and exits; a process that dies is restarted by the supervisor. With
WORKER_LIFECYCLE_HOOK and WORKER_GROUP_NAME set (the EC2 launch template sets them), a scale-in of this instance
is the same drain, after which the supervisor completes the group's termination lifecycle action.
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import sys
import time

log = logging.getLogger("cxr.worker")
RESTART_BACKOFF_SECONDS = 1.0


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(processName)s %(name)s %(levelname)s %(message)s")


def consume(stop_all) -> None:
    """One worker process: load the model once, then batch after batch until asked to stop."""
    import threading

    from aws_lambda_powertools import Metrics

    import uuid

    from cxr_core.bootstrap import runtime
    from cxr_core.services.infer import job_ids, process_batch
    from cxr_core.telemetry import record_batch

    configure_logging()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides; it forwards SIGTERM
    stop_me = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_me.set())

    def stop_requested() -> bool:
        return stop_me.is_set() or stop_all.is_set()

    rt = runtime()
    deps = rt.infer_deps()
    identity = rt.predictor.identity
    log.warning("worker %d ready: model %s engine %s weights %s%s", os.getpid(), identity.get("name"),
                identity.get("engine"), identity.get("weights"),
                f" - {identity['warning']}" if identity.get("warning") else "")
    source = rt.batch_source()
    metrics = Metrics()
    while not stop_requested():
        try:
            batch = source.next_batch(stop_requested)
            if not batch:
                continue
            token, ids = uuid.uuid4().hex, job_ids(batch)
            with source.kept_alive(batch, lambda: deps.jobs.extend_leases(ids, token, deps.lease_seconds)):
                report = process_batch(batch, deps, token=token)
            source.settle(report)
            record_batch(metrics, report)
            metrics.flush_metrics()
        except Exception:
            log.exception("batch loop error; messages not settled will be redelivered")
            time.sleep(RESTART_BACKOFF_SECONDS)


def recover_periodically(stop, interval_seconds: float) -> None:
    """The recovery pass, run by the supervisor: see cxr_core.services.recovery for what it covers."""
    from cxr_core.bootstrap import runtime

    while not stop.wait(interval_seconds):
        try:
            runtime().recover()
        except Exception:
            log.exception("recovery pass failed; it runs again in %.0f s", interval_seconds)


def supervise(processes: int, recovery_interval: float, termination=None) -> int:
    """termination: a cxr_worker.lifecycle.TerminationHook, or None off EC2."""
    import threading

    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    children: dict[int, multiprocessing.Process] = {}

    def start(slot: int) -> None:
        child = context.Process(target=consume, args=(stop,), name=f"infer-worker-{slot}", daemon=False)
        child.start()
        children[slot] = child

    def request_stop(*_):
        stop.set()
        for child in children.values():
            if child.is_alive():
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    for slot in range(processes):
        start(slot)
    if recovery_interval > 0:
        threading.Thread(target=recover_periodically, args=(stop, recovery_interval), name="recovery",
                         daemon=True).start()
    if termination is not None:
        threading.Thread(target=termination.watch, args=(stop, request_stop), name="lifecycle", daemon=True).start()
    log.warning("supervisor %d: %d worker processes", os.getpid(), processes)
    while not stop.is_set():
        time.sleep(0.5)
        for slot, child in list(children.items()):
            if not child.is_alive() and not stop.is_set():
                log.error("worker %s exited with %s; restarting", child.pid, child.exitcode)
                time.sleep(RESTART_BACKOFF_SECONDS)
                start(slot)
    for child in children.values():
        child.join()
    log.warning("supervisor %d: all workers drained", os.getpid())
    if termination is not None and termination.terminating.is_set():
        try:
            termination.complete()
        except Exception:  # the hook's DefaultResult (CONTINUE) ends the instance at its heartbeat timeout
            log.exception("could not complete the lifecycle action")
    return 0


def termination_hook():
    """The group's termination hook when the launch template named one (EC2), else None."""
    from cxr_core.bootstrap import runtime
    from cxr_worker.lifecycle import InstanceMetadata, TerminationHook

    rt = runtime()
    action = rt.lifecycle_action()
    if action is None:
        return None
    return TerminationHook(action, InstanceMetadata(rt.settings.imds_endpoint), rt.settings.worker_lifecycle_poll_seconds)


def main(argv: list[str] | None = None) -> int:
    from cxr_core.config import settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=settings().worker_processes,
                        help="worker processes (default WORKER_PROCESSES, else one per core)")
    parser.add_argument("--recovery-interval", type=float, default=min(60.0, settings().stuck_job_seconds / 3),
                        help="seconds between recovery passes (0: none; default min(60, STUCK_JOB_SECONDS/3))")
    args = parser.parse_args(argv)
    configure_logging()
    return supervise(max(1, args.processes), args.recovery_interval, termination_hook())


if __name__ == "__main__":
    sys.exit(main())
