"""Unzipped size of what the onnxruntime-only infer runtime needs, against Lambda's 250 MB limit.

Run: python -m bench layer-size [--model-dir layers/model/weights]
Counts the installed files (RECORD) of requirements/model.txt and their dependency closure, cxr_model and the
ONNX file. torch, torchxrayvision, scipy and scikit-image are not needed at run time and are not counted.
"""
from __future__ import annotations

import argparse
import re
from importlib import metadata
from pathlib import Path

from bench.harness import REPO, RESULTS, write_json

LIMIT_MB = 250.0
# Runtime-irrelevant dependencies a layer build may drop with `pip install --no-deps`.
OPTIONAL = {"sympy", "mpmath", "coloredlogs", "humanfriendly"}


def _requirement_names(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.append(re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0])
    return names


def _closure(names: list[str]) -> set[str]:
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        for requirement in metadata.distribution(name).requires or []:
            if "extra ==" not in requirement:
                todo.append(re.split(r"[=<>!~\[; (]", requirement, maxsplit=1)[0])
    return seen


def _installed_mb(name: str) -> float:
    dist = metadata.distribution(name)
    total = 0
    for file in dist.files or []:
        path = Path(dist.locate_file(file))
        if path.is_file() and "__pycache__" not in path.parts:
            total += path.stat().st_size
    return total / 1e6


def _tree_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=str(REPO / "layers" / "model" / "weights"))
    args = parser.parse_args(argv)
    packages = {name: _installed_mb(name) for name in sorted(_closure(_requirement_names(REPO / "requirements" / "model.txt")))}
    onnx_files = sorted(Path(args.model_dir).glob("*.onnx"))
    parts = {**packages, "cxr_model (source)": _tree_mb(REPO / "layers" / "model" / "python" / "cxr_model"),
             **{f"{p.name}": p.stat().st_size / 1e6 for p in onnx_files}}
    required = sum(v for k, v in parts.items() if k not in OPTIONAL)
    print(f"{'component':<40}{'MB':>9}")
    for name, size in sorted(parts.items(), key=lambda item: -item[1]):
        print(f"  {name:<38}{size:9.1f}{'  (optional: not imported at run time)' if name in OPTIONAL else ''}")
    print(f"{'total (with optional deps)':<40}{sum(parts.values()):9.1f}")
    print(f"{'total needed at run time':<40}{required:9.1f}   limit {LIMIT_MB:.0f} MB -> "
          f"{'fits' if required <= LIMIT_MB else 'DOES NOT FIT'} ({LIMIT_MB - required:+.1f} MB headroom)")
    core = {name: _installed_mb(name) for name in sorted(_closure(_requirement_names(REPO / "requirements" / "core.txt")))
            if name not in packages}
    with_core = required + sum(v for k, v in core.items() if k not in OPTIONAL)
    print(f"{'+ requirements/core.txt (shared layer)':<40}{with_core:9.1f}   (boto3/botocore: "
          f"{core.get('botocore', 0) + core.get('boto3', 0):.1f} MB of it, already in the Lambda runtime)")
    write_json(RESULTS / "layer_size.json", {"parts_mb": parts, "required_mb": required, "core_mb": core,
                                             "with_core_mb": with_core, "all_mb": sum(parts.values()),
                                             "limit_mb": LIMIT_MB})
    return 0
