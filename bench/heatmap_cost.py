"""What the class activation maps cost: the export with the maps output against the same network without it.

Both ONNX files come from the same weights (the build's, in MODEL_DIR) and run in one process, taking turns
round after round (A B, B A, ...), so host load hits both alike; each reports its median round. Also timed: turning
a batch's maps into the stored record (heatmap encoding) and one PNG overlay as GET .../heatmap renders it.
Run: python -m bench heatmap-cost [--model-dir build/test-weights] [--rounds 25] [--batch 1 8]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from bench.harness import REPO, load_average
from tests.model_support import SAMPLES_DIR

SAMPLE = SAMPLES_DIR / "00000001_000.png"
NAME = "densenet121-res224-all"


def export_without_maps(model_dir: str, out: str) -> None:
    import torch
    import torchxrayvision as xrv

    from cxr_model_build.export import _network_module

    model = xrv.models.DenseNet(weights=NAME, cache_dir=model_dir)
    with torch.no_grad():
        torch.onnx.export(_network_module(model, maps=False), (torch.zeros(1, 1, 224, 224),), out,
                          input_names=["image"], output_names=["probs"],
                          dynamic_axes={"image": {0: "batch"}, "probs": {0: "batch"}}, opset_version=17, dynamo=False)


def session(path: str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    options.enable_mem_pattern = False
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


def kernel_times(path: str, batch: np.ndarray, runs: int, prefix: str) -> dict[str, float]:
    """Per-kernel time (us) of `runs` passes from onnxruntime's own profiler: what each node costs, whatever else
    the host is doing meanwhile stretches every kernel alike."""
    import json

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    options.enable_profiling, options.profile_file_prefix = True, prefix
    profiled = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        profiled.run(None, {"image": batch})
    totals: dict[str, float] = {}
    trace = profiled.end_profiling()
    with open(trace) as handle:
        for event in json.load(handle):
            if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
                totals[event["name"]] = totals.get(event["name"], 0.0) + event["dur"]
    os.remove(trace)
    return totals


def timed(run, repeat: int, clock=time.perf_counter) -> float:
    started = clock()
    for _ in range(repeat):
        run()
    return (clock() - started) / repeat * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=str(REPO / "build" / "test-weights"))
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args(argv)

    from cxr_core.heatmaps import encode_heatmaps
    from cxr_core.overlay import overlay_png
    from cxr_model import load_predictor

    predictor = load_predictor(args.model_dir, engine="onnxruntime", threads=1, name=NAME)
    with_maps = predictor.engine.session
    with tempfile.TemporaryDirectory() as tmp:
        plain_path = os.path.join(tmp, "no-maps.onnx")
        export_without_maps(args.model_dir, plain_path)
        without_maps = session(plain_path)
        image = predictor.preprocess(SAMPLE.read_bytes())
        print(f"load {load_average()}; onnxruntime, 1 intra-op thread; {args.rounds} alternating rounds; "
              f"weights {predictor.identity['weights']}")
        # with one intra-op thread onnxruntime computes on the calling thread: its CPU time is the forward pass's,
        # far less disturbed by other tenants of a loaded host than wall time
        print(f"{'batch':>5}  {'no maps ms':>10}  {'maps ms':>8}  {'extra':>7}  {'no maps CPU ms':>14}  "
              f"{'maps CPU ms':>11}  {'extra CPU':>9}")
        for batch_size in args.batch:
            batch = np.stack([image] * batch_size)
            repeat = max(1, 8 // batch_size)
            runs = {"plain": lambda: without_maps.run(None, {"image": batch}),
                    "maps": lambda: with_maps.run(None, {"image": batch})}
            for run in runs.values():
                run()  # warm
            times = {name: [] for name in runs}
            cpu = {name: [] for name in runs}
            for round_index in range(args.rounds):
                order = list(runs.items())
                for name, run in order if round_index % 2 else order[::-1]:  # neither always goes first
                    times[name].append(timed(run, repeat))
                    cpu[name].append(timed(run, repeat, time.thread_time))
            plain, maps = statistics.median(times["plain"]), statistics.median(times["maps"])
            plain_cpu, maps_cpu = statistics.median(cpu["plain"]), statistics.median(cpu["maps"])
            print(f"{batch_size:>5}  {plain:>10.1f}  {maps:>8.1f}  {100 * (maps - plain) / plain:>6.2f}%  "
                  f"{plain_cpu:>14.1f}  {maps_cpu:>11.1f}  {100 * (maps_cpu - plain_cpu) / plain_cpu:>8.2f}%")
            maps_path = os.path.join(args.model_dir, f"{NAME}.onnx")
            with_maps_kernels = kernel_times(maps_path, batch, 5, os.path.join(tmp, "w"))
            without_kernels = kernel_times(plain_path, batch, 5, os.path.join(tmp, "p"))
            extra = {name: us for name, us in with_maps_kernels.items() if name not in without_kernels}
            share = 100 * sum(extra.values()) / sum(with_maps_kernels.values())
            print(f"       kernels only the maps output runs: {', '.join(sorted(extra))}: {share:.3f}% of the "
                  "pass's kernel time (onnxruntime's profiler)")
        prediction = predictor.predict([image])[0]
        encode_ms = timed(lambda: encode_heatmaps(prediction.heatmaps), 50)
        record = encode_heatmaps(prediction.heatmaps)
        pixels = predictor.model_input_pixels(image)
        overlay_ms = timed(lambda: overlay_png(pixels, record, prediction.top_label, 0.5), 10)
        print(f"stored record: {len(record['data'])} base64 chars for {len(record['labels'])} maps "
              f"(+ {len(str(record['low'])) + len(str(record['high']))} chars of scales); encode {encode_ms:.2f} ms")
        overlay = overlay_png(pixels, record, prediction.top_label, 0.5)
        print(f"overlay PNG {len(overlay)} bytes, render {overlay_ms:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
