"""A 100-instance study pushed by C-STORE from a real Orthanc through the DICOM gateway, next to direct API
submission of the same files, in one run: instances/s and the gateway's overhead per instance (issue 24, item 9).

`python -m bench gateway-study [--instances 100] [--size 1024] [--syntax JPEGLSLossless] [--workers 1]`
Phase "direct": the files go to POST /v1/jobs (application/dicom) from 4 client threads, each job long-polled to
COMPLETED. Phase "gateway": the same files, preloaded into Orthanc, are sent as one study with
/modalities/{gateway}/store; the phase ends when the last SR is in Orthanc. Gateway overhead per instance is its own
CPU time per instance (receive, de-identify, upload, poll, build the SR, C-STORE it back) and the extra wall time per
instance over the direct phase; both are compared with the worker's CPU time per image in the direct phase.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.harness import RESULTS, cpu_seconds, load_average, utc_stamp, write_json
from bench.worker_log import completions

TARGET_OVERHEAD_RATIO = 0.10


def make_study(count: int, size: int, syntax: str) -> tuple[str, list[tuple[str, bytes]]]:
    from pydicom.uid import generate_uid

    from tests.pacs.study import radiograph

    study_uid = generate_uid()
    return study_uid, [radiograph(study_uid, seed=1000 + index, syntax=syntax, size=size, series_number=1)
                       for index in range(count)]


def cpu_of(pids: list[int]) -> float:
    return cpu_seconds({"all": pids})["all"]


def direct_phase(stack, api_key: str, files: list[bytes], threads: int = 4) -> dict:
    from cxr_cli.api import Client

    client = Client(stack.url, api_key)

    def one(data: bytes) -> str:
        job = client.submit(data, "application/dicom").body
        while job.get("status") not in ("COMPLETED", "FAILED"):
            job = client.job(job["id"], wait=20)
        return job["status"]

    one(files[0][:-2] + b"\x00\x00")  # warm-up: the workers' model loaded before the clock starts (not counted)
    workers_before = cpu_of(stack.pids()["worker"])
    began = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        statuses = list(pool.map(one, files))
    wall = time.monotonic() - began
    worker_cpu = cpu_of(stack.pids()["worker"]) - workers_before
    if worker_cpu <= 0:
        raise RuntimeError("no CPU time measured for the infer workers: their processes were not found")
    return {"wall_s": wall, "completed": statuses.count("COMPLETED"), "worker_cpu_s": worker_cpu,
            "instances_per_s": len(files) / wall, "worker_cpu_s_per_image": worker_cpu / len(files)}


def gateway_phase(setup, study_uid: str, sent: set[str], timeout_s: float,
                  py_spy: str | None = None) -> dict:
    from cxr_local.waiting import wait_until
    from tests.pacs.gateway_stack import GATEWAY_MODALITY

    stack, orthanc, gateway = setup.stack, setup.orthanc, setup.gateway
    worker_log = stack.worker_log
    study_id = orthanc.find_study(study_uid)
    workers_before, gateway_before = cpu_of(stack.pids()["worker"]), cpu_of([gateway.pid])
    orthanc_before = cpu_of([orthanc.process.pid])
    completed_before = len(completions(worker_log))
    recorder = None
    if py_spy:
        import subprocess

        spy = Path(sys.executable).parent / "py-spy"
        recorder = subprocess.Popen([str(spy), "record", "-o", py_spy, "-f", "svg" if py_spy.endswith(".svg") else "raw", "--pid", str(gateway.pid), "-r", "50",
                                     "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    began = time.monotonic()
    stored = orthanc.store_to_modality(GATEWAY_MODALITY, [study_id], timeout=timeout_s)
    stored_s = time.monotonic() - began

    def all_srs():
        found = [item for item in orthanc.study_instances(study_id)
                 if item["MainDicomTags"]["SOPInstanceUID"] not in sent]
        return len(found) >= len(sent)

    wait_until(all_srs, timeout_s, interval_s=0.5, what=f"{len(sent)} SRs in Orthanc")
    wall = time.monotonic() - began
    gateway_cpu = cpu_of([gateway.pid]) - gateway_before
    if recorder is not None:
        import signal

        recorder.send_signal(signal.SIGINT)
        recorder.wait(60)
    return {"wall_s": wall, "cstore_s": stored_s, "cstore_failed": stored.get("FailedInstancesCount"),
            "instances_per_s": len(sent) / wall, "gateway_cpu_s": gateway_cpu,
            "gateway_cpu_s_per_instance": gateway_cpu / len(sent),
            "orthanc_cpu_s": cpu_of([orthanc.process.pid]) - orthanc_before,
            "worker_cpu_s": cpu_of(stack.pids()["worker"]) - workers_before,
            "images_scored": len(completions(worker_log)) - completed_before,
            "gateway_metrics": gateway.metrics()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench gateway-study", description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--size", type=int, default=1024, help="pixels per side (12-bit CR)")
    parser.add_argument("--syntax", default="JPEGLSLossless", help="transfer syntax the PACS stores and sends")
    parser.add_argument("--workers", type=int, default=1, help="infer worker processes")
    parser.add_argument("--model-dir", default=None, help="default: the tests' stand-in (same cost as real weights)")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--py-spy", metavar="SVG", help="record the gateway process with py-spy during its phase")
    args = parser.parse_args(argv)

    from tests.pacs.gateway_process import create_client_key
    from tests.pacs.gateway_stack import start_pacs_stack

    print(f"building {args.instances} CR instances ({args.size} px, 12-bit, {args.syntax}) ...", flush=True)
    study_uid, instances = make_study(args.instances, args.size, args.syntax)
    files = [data for _, data in instances]
    work = Path(tempfile.mkdtemp(prefix="gateway_study-"))
    stack_args = ("--param", "InferPath=ec2", *(("--model-dir", args.model_dir) if args.model_dir else ()))
    setup = start_pacs_stack(work, allow_stand_in=True, stack_args=stack_args, workers=args.workers)
    try:
        for data in files:
            setup.orthanc.upload(data)
        load_before = load_average()
        print("phase direct: POST /v1/jobs ...", flush=True)
        direct = direct_phase(setup.stack, create_client_key(setup.stack.ready_file, "bench-direct"), files)
        print("phase gateway: Orthanc -> C-STORE -> gateway -> API -> SR -> Orthanc ...", flush=True)
        via_gateway = gateway_phase(setup, study_uid, {uid for uid, _ in instances}, args.timeout, args.py_spy)
        load_after = load_average()
    finally:
        setup.stop()
    per_image = direct["worker_cpu_s_per_image"]
    extra_wall = (via_gateway["wall_s"] - direct["wall_s"]) / args.instances
    report = {"instances": args.instances, "size": args.size, "syntax": args.syntax, "workers": args.workers,
              "bytes_per_instance": sum(map(len, files)) // len(files), "direct": direct, "gateway": via_gateway,
              "gateway_cpu_overhead_ratio": via_gateway["gateway_cpu_s_per_instance"] / per_image,
              "gateway_extra_wall_s_per_instance": extra_wall,
              "gateway_extra_wall_ratio": extra_wall / (direct["wall_s"] / args.instances),
              "loadavg_before": load_before, "loadavg_after": load_after}
    path = write_json(RESULTS / f"gateway_study-{utc_stamp()}.json", report)
    print(f"\n{args.instances} instances, {args.size} px 12-bit {args.syntax}, "
          f"{report['bytes_per_instance'] / 1e6:.2f} MB each, {args.workers} worker(s); "
          f"load average {load_before[0]:.2f} -> {load_after[0]:.2f}")
    print(f"| path | wall s | instances/s | worker CPU s/image | gateway CPU s/instance |")
    print(f"|---|---|---|---|---|")
    print(f"| direct API | {direct['wall_s']:.1f} | {direct['instances_per_s']:.2f} | {per_image:.3f} | - |")
    print(f"| Orthanc -> gateway (C-STORE) -> SR back | {via_gateway['wall_s']:.1f} | "
          f"{via_gateway['instances_per_s']:.2f} | {via_gateway['worker_cpu_s'] / args.instances:.3f} | "
          f"{via_gateway['gateway_cpu_s_per_instance']:.3f} |")
    ratio = report["gateway_cpu_overhead_ratio"]
    print(f"gateway CPU per instance / worker CPU per image = {ratio:.1%} (target <= {TARGET_OVERHEAD_RATIO:.0%}: "
          f"{'met' if ratio <= TARGET_OVERHEAD_RATIO else 'NOT met'}); extra wall per instance "
          f"{extra_wall * 1000:.0f} ms = {report['gateway_extra_wall_ratio']:.1%} of the direct wall per image; "
          f"images scored in the gateway phase: {via_gateway['images_scored']}")
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
