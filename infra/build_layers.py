"""Builds the Lambda layer folders template.yaml points at (build/layers/core, build/layers/model) for python3.12 x86_64.

Run before `sam build`:  python infra/build_layers.py [core|model ...] [--allow-missing-weights] [--allow-provided-weights]
The model layer is refused (and a stale one removed) unless its ONNX export was made from torchxrayvision's published
weights, or from other weights that load with --allow-provided-weights: a random-init stand-in never reaches AWS.
Wheels are fetched for the Lambda platform whatever the local Python is; byte code is compiled with a local
python3.12 when one is found, because a read-only /opt cannot cache it and cold starts would compile in memory.
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD_ROOT = REPO / "build" / "layers"
LAMBDA_PYTHON = "3.12"
LAMBDA_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
# The python3.12 Lambda runtime ships the AWS SDK; a second copy in a layer only spends the 250 MB budget.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"})
# Tooling that inference never imports: test suites, console scripts, onnxruntime's model-optimisation kits.
PRUNED_PATHS = ("bin", "onnxruntime/transformers", "onnxruntime/quantization", "onnxruntime/tools")
WEIGHT_PATTERNS = ("*.onnx", "*.weights.json")  # the onnxruntime engine needs no torch weights file


@dataclass(frozen=True)
class LayerSpec:
    name: str
    requirements: str
    packages: dict[str, str]
    drop_distributions: frozenset[str] = frozenset()
    weights_dir: str | None = None


LAYERS = {
    "core": LayerSpec("core", "requirements/core.txt", {"cxr_core": "layers/core/python/cxr_core"},
                      drop_distributions=RUNTIME_PROVIDED),
    "model": LayerSpec("model", "requirements/model.txt", {"cxr_model": "layers/model/python/cxr_model"},
                       weights_dir="layers/model/weights"),
}


def find_python312() -> str | None:
    """A local CPython 3.12 to compile byte code with: $CXR_PYTHON312, python3.12 on PATH, or a pyenv install."""
    candidates = [os.environ.get("CXR_PYTHON312"), shutil.which("python3.12")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")), reverse=True)
    for candidate in filter(None, candidates):
        try:
            version = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                     capture_output=True, text=True, timeout=30).stdout.strip()
        except OSError:
            continue
        if version == LAMBDA_PYTHON:
            return candidate
    return None


def pip_install_for_lambda(requirements: Path, target: Path) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(target),
               "--python-version", LAMBDA_PYTHON, "--implementation", "cp", "--only-binary=:all:",
               "--upgrade", "-r", str(requirements)]
    for platform in LAMBDA_PLATFORMS:
        command += ["--platform", platform]
    subprocess.run(command, check=True)


def drop_distributions(site: Path, names: frozenset[str]) -> list[str]:
    """Remove installed distributions by name, file by file as their RECORD lists them."""
    dropped = []
    for dist_info in sorted(site.glob("*.dist-info")):
        metadata = (dist_info / "METADATA").read_text(encoding="utf-8", errors="replace")
        name = next((line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Name:")), "")
        if name.lower().replace("_", "-") not in names:
            continue
        for line in (dist_info / "RECORD").read_text(encoding="utf-8").splitlines():
            path = site / line.split(",", 1)[0]
            if path.is_file():
                path.unlink()
        shutil.rmtree(dist_info, ignore_errors=True)
        dropped.append(name)
    for directory in sorted((p for p in site.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(directory.iterdir()):
            directory.rmdir()
    return dropped


def prune(site: Path) -> None:
    for relative in PRUNED_PATHS:
        shutil.rmtree(site / relative, ignore_errors=True)
    for tests in [p for p in site.rglob("tests") if p.is_dir()]:
        shutil.rmtree(tests, ignore_errors=True)
    for cache in [p for p in site.rglob("__pycache__") if p.is_dir()]:
        shutil.rmtree(cache, ignore_errors=True)


def strip_debug_info(site: Path) -> int:
    """Drop the DWARF sections some wheels ship (the DICOM codecs: ~19 MiB of 25); code and symbols stay.
    Only libraries that carry `.debug_info`, never auditwheel's vendored `*.libs/` (patchelf-edited: strip breaks
    their load commands). Returns the bytes saved; without binutils' `strip` nothing changes."""
    strip = shutil.which("strip")
    if strip is None:
        print("warning: no `strip` - shared libraries keep their debug info (larger layer)", file=sys.stderr)
        return 0
    saved = 0
    for library in sorted(site.rglob("*.so")):
        vendored = any(part.endswith(".libs") for part in library.relative_to(site).parts)
        if vendored or library.is_symlink() or b".debug_info" not in library.read_bytes():
            continue
        before = library.stat().st_size
        if subprocess.run([strip, "--strip-debug", str(library)], capture_output=True).returncode == 0:
            saved += before - library.stat().st_size
    return saved


def copy_weights(source: Path, destination: Path, allow_missing: bool) -> list[str]:
    files = sorted({path for pattern in WEIGHT_PATTERNS for path in source.glob(pattern)})
    if not any(path.suffix == ".onnx" for path in files):
        if not allow_missing:
            raise SystemExit(f"no ONNX export under {source}: run `python -m cxr_model_build.build` first")
        return []
    destination.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copy2(path, destination / path.name)
    return [path.name for path in files]


def check_weights(source: Path, allow_missing: bool, allow_provided: bool, allow_stand_in: bool = False) -> str | None:
    """The default model's weights kind from the ONNX export's own metadata; SystemExit when any exported model is a
    stand-in or unverified. allow_stand_in is for bench/package_sizes.py only, which measures and then deletes it."""
    from cxr_model.deploy_check import NotDeployable, check_every_model
    from cxr_model.specs import DEFAULT_MODEL

    if (allow_missing and not any(source.glob("*.onnx"))) or allow_stand_in:
        return None
    try:
        return check_every_model(str(source), allow_provided=allow_provided)[DEFAULT_MODEL]
    except NotDeployable as exc:
        raise SystemExit(f"refusing to build the model layer: {exc}") from None


def build_layer(name: str, out_root: Path = BUILD_ROOT, allow_missing_weights: bool = False,
                python312: str | None = None, allow_provided_weights: bool = False, allow_stand_in: bool = False) -> Path:
    """Build one layer folder: python/ (site-packages + our package) and, for the model layer, weights/."""
    spec = LAYERS[name]
    out = out_root / name
    shutil.rmtree(out, ignore_errors=True)  # first: a refused build must not leave an older layer for `sam build`
    if spec.weights_dir:
        check_weights(REPO / spec.weights_dir, allow_missing_weights, allow_provided_weights, allow_stand_in)
    site = out / "python"
    pip_install_for_lambda(REPO / spec.requirements, site)
    if spec.drop_distributions:
        drop_distributions(site, spec.drop_distributions)
    prune(site)
    strip_debug_info(site)
    for package, source in spec.packages.items():
        shutil.copytree(REPO / source, site / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if spec.weights_dir:
        copy_weights(REPO / spec.weights_dir, out / "weights", allow_missing_weights)
    if python312:
        subprocess.run([python312, "-m", "compileall", "-q", "-j", "0", str(site)], check=True,
                       stdout=subprocess.DEVNULL)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("layers", nargs="*", choices=sorted(LAYERS), default=sorted(LAYERS))
    parser.add_argument("--out", type=Path, default=BUILD_ROOT)
    parser.add_argument("--allow-missing-weights", action="store_true")
    parser.add_argument("--allow-provided-weights", action="store_true",
                        help="ship weights other than torchxrayvision's published file (flagged 'provided')")
    args = parser.parse_args(argv)
    python312 = find_python312()
    if python312 is None:
        print("warning: no local python3.12 - layers ship without byte code (slower cold starts)", file=sys.stderr)
    for name in args.layers:
        print(build_layer(name, args.out, args.allow_missing_weights, python312, args.allow_provided_weights))
    return 0


if __name__ == "__main__":
    sys.exit(main())
