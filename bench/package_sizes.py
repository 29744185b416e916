"""Builds the Lambda layers as `infra/build_layers.py` does and prints unzipped/zipped MiB per layer and function.

Lambda's limit is 250 MB (= 250 MiB, 262,144,000 bytes) unzipped for a function plus all its layers
(a container image may be 10 GB).
Run: python -m bench package-sizes [--reuse] [--import-check]
  --reuse         measure build/layers as it is instead of rebuilding it
  --import-check  with a local python3.12: import each handler with only its layers (+ the runtime's boto3),
                  and run sample radiographs through the model layer alone
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from bench.harness import REPO
from infra.build_layers import BUILD_ROOT, LAYERS, build_layer, check_weights, find_python312

LAMBDA_UNZIPPED_LIMIT = 262_144_000  # 250 MB as Lambda counts it
SAMPLES = Path(os.environ.get("CXR_SAMPLES_DIR", REPO.parent / "shared" / "data" / "xrays"))
MB = 1_048_576  # MiB: Lambda's 250 MB limit is 250 MiB


def tree_bytes(root: Path) -> tuple[int, int]:
    """(unzipped bytes, zipped bytes) of a folder as `sam package` would zip it (local byte-code caches skipped)."""
    unzipped = 0
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in sorted(root.rglob("*")):
            stale_bytecode = path.suffix == ".pyc" and ".cpython-312." not in path.name  # local caches, not shipped
            if path.is_file() and not stale_bytecode:
                unzipped += path.stat().st_size
                archive.write(path, path.relative_to(root))
    return unzipped, buffer.tell()


def function_layers() -> dict[str, tuple[Path, list[str]]]:
    """Function logical id -> (code folder, layer logical ids) as template.yaml declares them."""
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((REPO / "template.yaml").read_text())
    result = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        layers = [layer["Ref"] for layer in props.get("Layers", [])]
        result[logical_id] = (REPO / props["CodeUri"], layers)
    return result


def import_check(python312: str, layer_root: Path, image: Path) -> str:
    """Import the model layer alone as Lambda would (python/ on sys.path) and predict one sample radiograph."""
    script = (
        "import time; t = time.perf_counter();"
        "from cxr_model.predictor import load_predictor;"
        f"p = load_predictor({str(layer_root / 'weights')!r}, engine='onnxruntime', threads=1, preprocess_mode='exact');"
        "load = time.perf_counter() - t;"
        f"pred = p.predict([p.preprocess(open({str(image)!r}, 'rb').read())])[0];"
        "print(f'cold import+load {load:.2f}s, top_label {pred.top_label}, {len(pred.output)} labels, '"
        "f'weights {p.identity[\"weights\"]}')"
    )
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(layer_root / "python"), "PYTHONNOUSERSITE": "1"}
    done = subprocess.run([python312, "-S", "-c", script], capture_output=True, text=True, env=env, timeout=300)
    if done.returncode:
        raise SystemExit(f"model layer import check failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip()


def handler_import_check(python312: str, functions: dict[str, tuple[Path, list[str]]]) -> list[str]:
    """Import every handler module with only its code, its layers and the runtime's SDK on the path."""
    sdk = BUILD_ROOT.parent / "runtime-sdk"  # stands in for the boto3 the python3.12 runtime provides
    if not (sdk / "boto3").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(sdk),
                        "boto3"], check=True)
    lines = []
    for function, (code_dir, layers) in functions.items():
        paths = [str(code_dir)] + [str(BUILD_ROOT / layer.removesuffix("Layer").lower() / "python") for layer in layers]
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join(paths + [str(sdk)]),
               "PYTHONNOUSERSITE": "1", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"}
        done = subprocess.run([python312, "-S", "-c", "import app; print(app.lambda_handler.__name__)"],
                              capture_output=True, text=True, env=env, cwd=code_dir, timeout=300)
        lines.append(f"{function}: {'ok' if done.returncode == 0 else 'FAILED ' + done.stderr.strip()[-600:]}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--import-check", action="store_true")
    parser.add_argument("--images", type=Path, nargs="+", default=[SAMPLES / "00000001_000.png",
                                                                   SAMPLES / "Fake_MONOHR1.dcm"])
    args = parser.parse_args(argv)
    python312 = find_python312()
    if not args.reuse:
        for name in LAYERS:
            build_layer(name, BUILD_ROOT, python312=python312, allow_stand_in=True)  # sizes only: see the end
    layer_sizes = {f"{name.capitalize()}Layer": tree_bytes(BUILD_ROOT / name) for name in LAYERS}
    print(f"{'artifact':<28}{'unzipped':>12}{'zipped':>11}   (MiB)")
    for layer, (unzipped, zipped) in layer_sizes.items():
        print(f"{layer:<28}{unzipped / MB:>12.1f}{zipped / MB:>11.1f}")
    weights = sum(p.stat().st_size for p in (BUILD_ROOT / "model" / "weights").glob("*"))
    print(f"{'  of which ModelLayer weights':<28}{weights / MB:>12.1f}")
    print(f"\n{'function (+ its layers)':<28}{'code':>12}{'total':>11}{'limit':>10}  fits")
    worst = 0
    for function, (code_dir, layers) in function_layers().items():
        code, _ = tree_bytes(code_dir)
        total = code + sum(layer_sizes[layer][0] for layer in layers)
        worst = max(worst, total)
        print(f"{function:<28}{code / MB:>12.2f}{total / MB:>11.1f}{LAMBDA_UNZIPPED_LIMIT / MB:>10.0f}  "
              f"{'yes' if total <= LAMBDA_UNZIPPED_LIMIT else 'NO'}  ({' + '.join(layers) or 'no layers'})")
    print(f"\nheadroom of the largest function: {(LAMBDA_UNZIPPED_LIMIT - worst) / MB:.1f} MiB; "
          f"byte code compiled with {python312 or 'nothing (no local python3.12)'}")
    if args.import_check:
        if python312 is None:
            raise SystemExit("--import-check needs a local python3.12")
        for line in handler_import_check(python312, function_layers()):
            print("handler import check:", line)
        for image in args.images:
            print(f"model layer import check ({image.name}):", import_check(python312, BUILD_ROOT / "model", image))
    try:
        check_weights(BUILD_ROOT / "model" / "weights", allow_missing=True, allow_provided=True)
    except SystemExit as refused:  # a stand-in layer measured here must not be left for `sam build`
        shutil.rmtree(BUILD_ROOT / "model", ignore_errors=True)
        print(f"\nmodel layer folder removed after measuring: {refused}")
    return 0

