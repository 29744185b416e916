"""The model's identity read from the build's provenance, without loading any engine (submit and poll use it)."""
from __future__ import annotations

import os

from .artifacts import (RANDOM_INIT, ArtifactPaths, has_stand_in_marker, read_provenance, sha256_file, weights_kind,
                        weights_warning)
from .notice import INTENDED_USE
from .specs import get_spec


def model_id(name: str, weights_sha256: str, preprocess_mode: str = "exact", precision: str = "fp32") -> str:
    """The result-cache key's model part: the weights, the preprocessing and the precision decide the answer, not the
    engine (onnxruntime and torch, CPU or GPU, agree to 1e-4 in fp32; bf16/fp16 move scores by up to ~1e-2)."""
    key = f"{name}@{weights_sha256[:16]}/{preprocess_mode}"
    return key if precision == "fp32" else f"{key}/{precision}"  # fp32 keys unchanged: the cache stays valid


def read_identity(model_dir: str, name: str = "densenet121-res224-all", engine: str = "onnxruntime",
                  preprocess_mode: str = "exact", precision: str = "fp32") -> dict:
    spec = get_spec(name)
    paths = ArtifactPaths(os.path.abspath(model_dir), spec)
    record = read_provenance(paths) or {}
    sha256 = record.get("sha256")
    if not sha256:
        if not os.path.isfile(paths.weights):
            raise FileNotFoundError(f"no model provenance under {model_dir}: run python -m cxr_model_build.build")
        sha256 = sha256_file(paths.weights)
    stand_in = os.path.isfile(paths.weights) and has_stand_in_marker(paths.weights)  # no .pt on Lambda: the record
    kind = weights_kind(spec, sha256, record.get("weights"), RANDOM_INIT if stand_in else None)
    return {**describe(name, sha256, kind, engine, preprocess_mode, precision),
            "model_id": model_id(name, sha256, preprocess_mode, precision)}


def describe(name: str, sha256: str, weights: str, engine: str, preprocess_mode: str, precision: str = "fp32") -> dict:
    """The identity every result carries: which weights (and how trustworthy), engine, preprocessing, precision,
    intended use."""
    identity = {"name": name, "weights_sha256": sha256, "weights": weights, "engine": engine,
                "preprocess": preprocess_mode, "precision": precision, "intended_use": INTENDED_USE}
    if warning := weights_warning(weights):
        identity["warning"] = warning
    return identity


def model_card(model_dir: str, name: str, engine: str = "onnxruntime", preprocess_mode: str = "exact",
               precision: str = "fp32") -> dict:
    """The identity plus what GET /v1/models lists: the findings this model reports and its input size."""
    spec = get_spec(name)
    return {**read_identity(model_dir, name=name, engine=engine, preprocess_mode=preprocess_mode, precision=precision),
            "findings": list(spec.findings), "input_size": spec.input_resolution}


def check_artifacts(model_dir: str, name: str = "densenet121-res224-all", engine: str = "onnxruntime",
                    preprocess_mode: str = "exact", precision: str = "fp32") -> dict:
    """The identity, once the file the engine would load is on disk (a readiness check: nothing is loaded)."""
    paths = ArtifactPaths(os.path.abspath(model_dir), get_spec(name))
    needed = paths.onnx if engine.startswith("onnxruntime") else paths.weights
    if not os.path.isfile(needed):
        raise FileNotFoundError(f"{needed} missing: run python -m cxr_model_build.build")
    return read_identity(model_dir, name=name, engine=engine, preprocess_mode=preprocess_mode, precision=precision)
