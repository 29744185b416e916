"""Refuses to package an ONNX export unless it was built from the published weights (or provided ones, if allowed).

python -m cxr_model.deploy_check MODEL_DIR [--allow-provided]   (the Docker image build and infra/build_layers.py)
"""
from __future__ import annotations

import argparse
import os
import sys

from .artifacts import PROVIDED, RANDOM_INIT, REAL, ArtifactPaths, weights_kind
from .specs import DEFAULT_MODEL, SPECS, get_spec


class NotDeployable(RuntimeError):
    pass


def served_weights(model_dir: str, name: str = "densenet121-res224-all") -> dict[str, str]:
    """{"kind", "sha256"} of the weights the ONNX export was made from, read from its own metadata."""
    from .engines.onnx_engine import onnx_metadata

    spec = get_spec(name)
    onnx_path = ArtifactPaths(os.path.abspath(model_dir), spec).onnx
    if not os.path.isfile(onnx_path):
        raise NotDeployable(f"no ONNX export at {onnx_path}: run python -m cxr_model_build.build first")
    metadata = onnx_metadata(onnx_path)
    sha256 = metadata.get("cxr_model.weights_sha256", "")
    return {"kind": weights_kind(spec, sha256, metadata.get("cxr_model.weights")), "sha256": sha256}


def check_deployable(model_dir: str, name: str = "densenet121-res224-all", allow_provided: bool = False) -> str:
    served = served_weights(model_dir, name)
    kind, sha256 = served["kind"], served["sha256"]
    if kind == REAL or (kind == PROVIDED and allow_provided):
        return kind
    if kind == RANDOM_INIT:
        raise NotDeployable(f"{name}: {model_dir} holds the RANDOM-INIT stand-in (SHA-256 {sha256[:16]}), not real weights: "
                            "run python -m cxr_model_build.build on a machine with internet, or with --weights-from PATH")
    raise NotDeployable(f"{name}: {model_dir} holds weights that are not torchxrayvision's published file (SHA-256 "
                        f"{sha256[:16]}); allow them explicitly (--allow-provided) to ship them flagged 'provided'")


def check_every_model(model_dir: str, allow_provided: bool = False) -> dict[str, str]:
    """check_deployable for every model whose ONNX export is in model_dir (the default's must be there): a served
    set is refused as a whole when any of its exports is a stand-in or unverified and not allowed."""
    present = [name for name in SPECS if os.path.isfile(ArtifactPaths(os.path.abspath(model_dir), SPECS[name]).onnx)]
    names = list(dict.fromkeys([DEFAULT_MODEL, *present]))
    return {name: check_deployable(model_dir, name, allow_provided) for name in names}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cxr_model.deploy_check", description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--name", default=None, help="one model (default: every model exported in MODEL_DIR)")
    parser.add_argument("--allow-provided", action="store_true", help="accept weights other than the published file")
    args = parser.parse_args(argv)
    try:
        kinds = ({args.name: check_deployable(args.model_dir, args.name, args.allow_provided)} if args.name
                 else check_every_model(args.model_dir, args.allow_provided))
    except NotDeployable as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    for name, kind in kinds.items():
        print(f"{name}: weights {kind}" + (" (UNVERIFIED, flagged in every result)" if kind == PROVIDED else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
