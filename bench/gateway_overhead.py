"""The gateway's own CPU per instance against the worker's CPU per image, per input kind, side by side in one run.

Run:  python -m bench gateway-overhead [--instances 8] [--runs 3] [--only SUBSTRING] [--pdu 16384]
Inputs: one 3000 x 2500, 12-bit chest radiograph with patient identity, as a frontal CR in each kind below.
- worker: CPU per image as the service scores it: decode + exact preprocessing (`cxr_model.preprocess`) + one
  forward pass, onnxruntime batch 1, one thread (process_time, p50 of --runs).
- gateway: this process runs the gateway (cxr_gateway.app.Gateway); a sender process C-STOREs --instances distinct
  instances per kind (one association, --pdu byte fragments), a peer process stands in for the service's API and the
  destination PACS (bench/gateway_peers.py), so this process's CPU is the gateway's alone: receive (C-STORE in, header
  rules, sealed into the spool), submit (spool opened, de-identification, upload), poll (long poll, result, the SR
  filled from its template and sealed), deliver (C-STORE of the SR to the destination). Receive is this process's CPU over the sending, then its CPU until every SR is
  delivered, split by the CPU of the threads that ran each pipeline step (time.thread_time around it); `other` is
  the rest of that phase (picking due items, the study's own polling of the backlog).
Target (issue 24): gateway / worker <= 0.10. Writes bench/results/gateway_overhead.json.
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.harness import REPO, RESULTS, fmt_ms, load_average, p50_cpu_ms, wait_until, write_json

KINDS = {"uncompressed (explicit VR LE)": "ExplicitVRLittleEndian", "JPEG Lossless SV1": "JPEGLosslessSV1",
         "JPEG 2000 lossless": "JPEG2000Lossless"}
SENDER_AE = "BENCH_SENDER"


def instances(syntax: str, count: int) -> list[bytes]:
    """`count` instances of one study (distinct SOP Instance UIDs, the same pixels) in one transfer syntax."""
    import pydicom
    from pydicom.uid import generate_uid

    from tests.dicom_factory import clinical_radiograph
    from tests.gateway_support import image_instance

    first = image_instance(generate_uid(), syntax, array=clinical_radiograph(3000, 2500, bits=12, seed=24),
                           ViewPosition="PA", BodyPartExamined="CHEST")
    out = []
    for _ in range(count):
        ds = pydicom.dcmread(io.BytesIO(first))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True, implicit_vr=False, little_endian=True)
        out.append(buffer.getvalue())
    return out


def worker_ms(data: bytes, predictor, runs: int) -> dict:
    from cxr_model.preprocess import preprocess

    prep = p50_cpu_ms(lambda: preprocess(data), runs)
    tensor = preprocess(data)[None, ...].astype(np.float32)
    forward = p50_cpu_ms(lambda: predictor.engine.run(tensor), max(runs, 5))
    return {"worker_prep_ms": prep, "worker_forward_ms": forward, "worker_ms": prep + forward}


class StepClock:
    """CPU seconds of the threads that ran each pipeline step, per state (wraps Pipeline.step)."""

    def __init__(self, pipeline) -> None:
        self.seconds, self._lock, self._step = defaultdict(float), threading.Lock(), pipeline.step
        pipeline.step = self._timed

    def _timed(self, item) -> None:
        start = time.thread_time()
        try:
            self._step(item)
        finally:
            with self._lock:
                self.seconds[item.state] += time.thread_time() - start

    def take(self) -> dict[str, float]:
        with self._lock:
            taken, self.seconds = dict(self.seconds), defaultdict(float)
        return taken


def start_peer() -> tuple[subprocess.Popen, dict]:
    peer = subprocess.Popen([sys.executable, "-m", "bench.gateway_peers", "service"], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return peer, json.loads(peer.stdout.readline())


def gateway_ms(gateway, clock: StepClock, files: list[Path], pdu: int) -> dict:
    """Send the files, then advance every item to delivered; CPU ms per instance of each phase."""
    count = len(files)
    started = time.process_time()
    sent = subprocess.run([sys.executable, "-m", "bench.gateway_peers", "send", str(gateway.dicom_port),
                           gateway.config.ae_title, *map(str, files), "--pdu", str(pdu)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    receive_s = time.process_time() - started
    if sent.returncode != 0:
        raise RuntimeError(f"sender failed: {sent.stdout} {sent.stderr}")
    if gateway.store.backlog()["pending"] != count:
        raise RuntimeError(f"{gateway.store.backlog()} after sending {count}")

    def drained() -> bool:
        gateway.run_due_once()
        return gateway.store.backlog()["pending"] == 0 and not gateway.in_hand()  # every step's CPU counted

    started = time.process_time()
    wait_until(drained, 600, 0.05, "every SR delivered")
    process_s = time.process_time() - started
    if gateway.metrics.snapshot()["counts"].get("delivered", 0) != count:
        raise RuntimeError(f"not every SR delivered: {gateway.metrics.snapshot()}")
    steps = clock.take()
    row = {"gateway_receive_ms": 1000 * receive_s / count}
    for state, name in (("received", "submit"), ("submitted", "poll"), ("ready", "deliver")):
        row[f"gateway_{name}_ms"] = 1000 * steps.get(state, 0.0) / count
    # the rest of the processing phase: picking due items, the study's own waiting
    row["gateway_other_ms"] = 1000 * (process_s - sum(steps.values())) / count
    row["gateway_ms"] = 1000 * (receive_s + process_s) / count
    gateway.metrics.counts.clear()
    return row


def warm_up(gateway, clock: StepClock, scratch: Path) -> None:
    """One small instance through every step first: imports, the per-model SR template, first connections."""
    from pydicom.uid import generate_uid

    from tests.gateway_support import image_instance

    path = scratch / "warm-up.dcm"
    path.write_bytes(image_instance(generate_uid(), ViewPosition="PA", BodyPartExamined="CHEST"))
    gateway_ms(gateway, clock, [path], 16384)


def make_gateway(store_dir: Path, ports: dict):
    from cxr_gateway.app import Gateway
    from cxr_gateway.config import GatewayConfig

    config = GatewayConfig(ae_title="CXR_GATEWAY", dicom_port=0, http_port=0, allowed_aets=[SENDER_AE],
                           api_url=f"http://127.0.0.1:{ports['api_port']}", api_key="bench-key",
                           destination=f"BENCH_PACS@127.0.0.1:{ports['scp_port']}", allow_stand_in=True,
                           store_path=str(store_dir / "store.sqlite3"))
    gateway = Gateway(config)
    gateway.start(serve_http=False, process=False)  # the study advances the items itself (run_due_once)
    return gateway


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=8, help="instances per kind sent through the gateway")
    parser.add_argument("--runs", type=int, default=3, help="worker timings per kind (p50)")
    parser.add_argument("--only", default="", help="only kinds whose name contains this")
    parser.add_argument("--pdu", type=int, default=16384, help="the sender's P-DATA fragment size")
    parser.add_argument("--model-dir", default=str(REPO / "build" / "test-weights"),
                        help="an exported DenseNet-121 (the stand-in has the real graph: the same forward cost)")
    args = parser.parse_args(argv)

    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.getLogger("cxr_gateway").setLevel(logging.WARNING)
    logging.getLogger("pynetdicom").setLevel(logging.ERROR)
    from cxr_model import load_predictor

    predictor = load_predictor(args.model_dir, engine="onnxruntime", threads=1)  # also caps BLAS at one thread
    peer, ports = start_peer()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="gateway-overhead-") as scratch:
            gateway = make_gateway(Path(scratch) / "store", ports)
            clock = StepClock(gateway.pipeline)
            try:
                warm_up(gateway, clock, Path(scratch))
                for kind, syntax in KINDS.items():
                    if args.only not in kind:
                        continue
                    data = instances(syntax, args.instances)
                    files = []
                    for index, instance in enumerate(data):
                        files.append(Path(scratch) / f"{syntax}-{index}.dcm")
                        files[-1].write_bytes(instance)
                    row = {"input": kind, "mb": len(data[0]) / 1e6, "instances": len(data),
                           **worker_ms(data[0], predictor, args.runs), **gateway_ms(gateway, clock, files, args.pdu)}
                    row["ratio"] = row["gateway_ms"] / row["worker_ms"]
                    row["load_average"] = load_average()
                    rows.append(row)
                    print(f"{kind}: gateway {row['gateway_ms']:.1f} ms / worker {row['worker_ms']:.1f} ms "
                          f"= {row['ratio']:.3f} (load {row['load_average']})", flush=True)
            finally:
                gateway.stop()
    finally:
        peer.stdin.close()
        peer.wait(timeout=30)
    print(f"\nCPU ms per instance, load average {load_average()}; sender fragments {args.pdu} B")
    print(f"{'input':<32}{'MB':>6}{'w prep':>8}{'w fwd':>7}{'worker':>8}{'g recv':>8}{'g submit':>9}{'g poll':>7}"
          f"{'g deliver':>10}{'g other':>8}{'gateway':>8}{'ratio':>7}")
    for row in rows:
        print(f"{row['input']:<32}{row['mb']:6.2f}{fmt_ms(row['worker_prep_ms']):>8}"
              f"{fmt_ms(row['worker_forward_ms']):>7}{fmt_ms(row['worker_ms']):>8}"
              f"{fmt_ms(row['gateway_receive_ms']):>8}{fmt_ms(row['gateway_submit_ms']):>9}"
              f"{fmt_ms(row['gateway_poll_ms']):>7}{fmt_ms(row['gateway_deliver_ms']):>10}"
              f"{fmt_ms(row['gateway_other_ms']):>8}"
              f"{fmt_ms(row['gateway_ms']):>8}{row['ratio']:7.3f}")
    write_json(RESULTS / "gateway_overhead.json", {"rows": rows, "pdu": args.pdu, "load_average": load_average()})
    return 0
