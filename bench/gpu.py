"""GPU study (issue 29): images/s at batch 1/8/64/256 (fp32, TF32 off), max |delta p| vs the CPU engine, the GPU resize,
and the CPU cores one GPU needs to decode clinical-size inputs at its rate. Writes one JSON file.

Where a GPU is lent (bench/README.md, "GPU study"): `bash bench/gpu_prepare.sh` here once, then on the GPU machine
  PYTHONPATH=.gpu-carry/site:layers/model/python:modelbuild:. CXR_SAMPLES_DIR=.gpu-carry/xrays python3 -m bench gpu --out $OUT/gpu_study.json
It builds the random-init stand-in there (cxr_model_build's own offline path), so no weights file travels. `--device cpu`
runs every step on the CPU (tests/integration/test_gpu_study.py), so the study cannot rot where no GPU is.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

import numpy as np

from bench.gpu_feed import cores_per_device, decode_costs, decode_thread_scaling, device_resize_rate
from bench.gpu_timing import timed

MODEL = "densenet121-res224-all"
BATCHES = (1, 8, 64, 256)


def build_stand_in(model_dir: str, threads: int):
    """The artifacts as `make model` builds them offline (a random-init stand-in of the identical architecture) and
    the CPU engine to compare with: onnxruntime, or torch on the CPU where the ONNX export fails on that machine's
    torch (the record says so), so one export problem does not cost the GPU figures."""
    from cxr_model import load_predictor
    from cxr_model.artifacts import ArtifactPaths
    from cxr_model.specs import get_spec
    from cxr_model_build.build import build

    try:
        record = build(model_dir, MODEL, allow_random_init=True, offline=True)
        return record, load_predictor(model_dir, engine="onnxruntime", threads=threads)
    except Exception as exc:  # noqa: BLE001 - recorded in the result
        from cxr_model_build.stand_in import create_random_weights

        paths = ArtifactPaths(os.path.abspath(model_dir), get_spec(MODEL))
        if not os.path.isfile(paths.weights):
            create_random_weights(paths)
        record = {"weights": "random-init", "cpu_reference": "torch", "build_error": repr(exc)[:500]}
        return record, load_predictor(model_dir, engine="torch", threads=threads)


def forward_rates(engine, inputs: np.ndarray, batches: list[int], runs: int, warmup: int) -> dict[str, float]:
    """images/s of engine.run_tensor on a batch already on the device (the forward pass alone)."""
    import torch

    rates = {}
    for size in batches:
        batch = torch.from_numpy(np.resize(inputs, (size, *inputs.shape[1:]))).to(engine.device)
        for _ in range(warmup):
            engine.run_tensor(batch)
        rates[str(size)] = size / timed(lambda: engine.run_tensor(batch), engine.device, runs)
    return rates


def deviations(cpu_predictor, engine, datas: dict[str, bytes]) -> dict:
    """max |delta p| of the device engine against the CPU engine (onnxruntime): on the CPU's preprocessed tensors,
    and through the device pipeline from the same bytes (decode on the CPU, exact resize on the device)."""
    from cxr_model.engines.torch_device import DevicePipeline
    from cxr_model.predictor import Predictor

    tensors = np.stack([cpu_predictor.preprocess(data) for data in datas.values()])
    reference = cpu_predictor.engine.run(tensors)
    device_predictor = Predictor(engine, cpu_predictor.labels, cpu_predictor.identity, "exact", DevicePipeline(engine))
    from_bytes = np.array([[p.output[label] for label in cpu_predictor.labels if label] for p in
                           device_predictor.predict([device_predictor.preprocess(data) for data in datas.values()])])
    labelled = [i for i, label in enumerate(cpu_predictor.labels) if label]
    return {"engine_max_abs_delta_p": float(np.abs(engine.run(tensors) - reference).max()),
            "pipeline_max_abs_delta_p": float(np.abs(from_bytes - reference[:, labelled]).max()),
            "images": len(datas), "saturated_fraction": float(np.mean((reference < 1e-4) | (reference > 1 - 1e-4)))}


def reduced_precision(model, device: str, tensors: np.ndarray, exact: np.ndarray, batch: int, runs: int,
                      warmup: int) -> dict:
    """fp16/bf16 (autocast; opt-in MODEL_PRECISION): max |delta p| vs fp32 on the same device, and images/s."""
    from cxr_model.engines.torch_engine import REDUCED_PRECISION_BOUND, TorchEngine

    results = {}
    for precision in (("bf16",) if device == "cpu" else ("fp16", "bf16")):
        engine = TorchEngine(model, device=device, precision=precision)
        delta = float(np.abs(engine.run(tensors) - exact).max())
        rate = forward_rates(engine, tensors, [batch], runs, warmup)[str(batch)]
        results[precision] = {"max_abs_delta_p_vs_fp32": delta, "within_bound": delta <= REDUCED_PRECISION_BOUND,
                              f"images_per_s_batch_{batch}": rate}
    return results


def decodable(cpu_predictor, datas: dict[str, bytes], skipped: dict[str, str]) -> dict[str, bytes]:
    """The inputs this machine's decoders read (a codec missing there costs one input, not the GPU run)."""
    kept = {}
    for name, data in datas.items():
        try:
            cpu_predictor.preprocess(data)
            kept[name] = data
        except Exception as exc:  # noqa: BLE001 - recorded in the result
            skipped[name] = repr(exc)[:300]
    return kept


def study(args) -> dict:
    import torch

    from cxr_model.engines.torch_engine import TorchEngine, exact_cuda_math
    from tests.model_support import SAMPLE_FILES, large_radiographs

    started = time.time()
    exact_cuda_math()  # what the torch-cuda engine sets; recorded below as the state the figures ran under
    record, cpu_predictor = build_stand_in(args.model_dir, args.threads)
    engine = TorchEngine.load(args.model_dir, MODEL, threads=args.threads, device=args.device)
    skipped: dict[str, str] = {}
    samples = decodable(cpu_predictor, {path.name: path.read_bytes() for path in SAMPLE_FILES}, skipped)
    clinical = decodable(cpu_predictor, dict(list(large_radiographs().items())[:args.clinical]), skipped)
    tensors = np.stack([cpu_predictor.preprocess(data) for data in {**samples, **clinical}.values()])
    batches = [int(size) for size in args.batches.split(",")]
    rates = forward_rates(engine, tensors, batches, args.runs, args.warmup)
    costs = decode_costs(clinical, args.runs)
    best = max(rates.values())
    result = {
        "study": "gpu", "device": args.device,
        "device_name": torch.cuda.get_device_name(engine.device) if engine.device.type == "cuda" else "cpu",
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
        "weights": record.get("weights"), "precision": "fp32", "cpu_engine": cpu_predictor.identity["engine"],
        "build_error": record.get("build_error"), "skipped_inputs": skipped,
        "forward_images_per_s": rates,
        "deviation_vs_cpu_engine": {"samples": deviations(cpu_predictor, engine, samples),
                                    "clinical": deviations(cpu_predictor, engine, clinical)},
        "reduced_precision": reduced_precision(engine.model, args.device, tensors, engine.run(tensors),
                                               max(batches), args.runs, args.warmup),
        "device_resize_images_per_s": device_resize_rate(clinical, engine.device, min(max(batches), 64), args.runs),
        "cpu_decode_single_thread": costs,
        "decode_thread_scaling": decode_thread_scaling(clinical, min(4, os.cpu_count() or 1)),
        "cpu_cores_per_device_at_best_rate": {"images_per_s": best, **cores_per_device(best, costs)},
        "host": {"cpus": os.cpu_count(), "load_average": list(os.getloadavg())},
        "seconds": None,
    }
    result["seconds"] = round(time.time() - started, 1)
    return result


def report(result: dict) -> str:
    lines = [f"GPU study on {result['device_name']} (torch {result['torch']}, CUDA {result['cuda']}, TF32 "
             f"{result['tf32']}, weights {result['weights']}; load average {result['host']['load_average']})",
             "forward images/s (fp32): " + ", ".join(f"batch {b}: {r:.1f}"
                                                   for b, r in result["forward_images_per_s"].items())]
    for name, dev in result["deviation_vs_cpu_engine"].items():
        lines.append(f"max |delta p| vs the CPU engine, {name} ({dev['images']} images): engine "
                     f"{dev['engine_max_abs_delta_p']:.2e}, whole pipeline (device resize) "
                     f"{dev['pipeline_max_abs_delta_p']:.2e}")
    for precision, found in result["reduced_precision"].items():
        lines.append(f"{precision} (opt-in): max |delta p| vs fp32 {found['max_abs_delta_p_vs_fp32']:.3f} "
                     f"(within 0.01: {found['within_bound']}), "
                     + ", ".join(f"{k} {v:.1f}" for k, v in found.items() if k.startswith("images")))
    cores = result["cpu_cores_per_device_at_best_rate"]
    lines.append(f"CPU cores to feed {cores['images_per_s']:.0f} images/s of clinical-size inputs: "
                 f"{cores['resize_on_device']:.1f} (decode {cores['mean_decode_crop_ms']:.1f} ms/image, resize on "
                 f"the device) or {cores['resize_on_cpu']:.1f} (whole preprocessing {cores['mean_preprocess_ms']:.1f}"
                 f" ms/image on the CPU)")
    scaling = result["decode_thread_scaling"]
    lines.append(f"decoding in {scaling['threads']} threads of one process: {scaling['speedup']:.2f}x one thread")
    lines.append("device resize images/s: " + ", ".join(f"{k} {v:.0f}"
                                                        for k, v in result["device_resize_images_per_s"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (the CI check)")
    parser.add_argument("--model-dir", default="/tmp/cxr-gpu-study-weights", help="where the stand-in is built")
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU engine threads (the CPU reference)")
    parser.add_argument("--clinical", type=int, default=8, help="how many clinical-size inputs (of 8)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "gpu_study.json"))
    args = parser.parse_args(argv)
    result = study(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(report(result))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
