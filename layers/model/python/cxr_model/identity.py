"""The model's identity read from the build's provenance, without loading any engine (submit and poll use it)."""
from __future__ import annotations

import os

from .artifacts import RANDOM_INIT, RANDOM_INIT_WARNING, ArtifactPaths, read_provenance, sha256_file, weights_kind
from .specs import get_spec


def model_id(name: str, weights_sha256: str, preprocess_mode: str = "exact") -> str:
    """The result-cache key's model part: the weights and the preprocessing decide the answer, not the engine
    (onnxruntime and torch agree to 1e-4; another preprocessing would not)."""
    return f"{name}@{weights_sha256[:16]}/{preprocess_mode}"


def read_identity(model_dir: str, name: str = "densenet121-res224-all", engine: str = "onnxruntime",
                  preprocess_mode: str = "exact") -> dict:
    paths = ArtifactPaths(os.path.abspath(model_dir), get_spec(name))
    record = read_provenance(paths) or {}
    sha256 = record.get("sha256")
    if not sha256:
        if not os.path.isfile(paths.weights):
            raise FileNotFoundError(f"no model provenance under {model_dir}: run python -m cxr_model.build")
        sha256 = sha256_file(paths.weights)
    kind = weights_kind(record.get("weights"))
    identity = {"name": name, "weights_sha256": sha256, "weights": kind, "engine": engine,
                "preprocess": preprocess_mode, "model_id": model_id(name, sha256, preprocess_mode)}
    if kind == RANDOM_INIT:
        identity["warning"] = RANDOM_INIT_WARNING
    return identity
