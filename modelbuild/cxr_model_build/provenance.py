"""What the build decides about a weights file from its bytes, and the provenance record it writes beside it."""
from __future__ import annotations

import json
import os

from cxr_model.artifacts import PROVIDED, RANDOM_INIT, REAL, ArtifactPaths, has_stand_in_marker, sha256_file
from cxr_model.specs import ModelSpec


def write_provenance(paths: ArtifactPaths, record: dict) -> None:
    tmp = paths.provenance + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(record, handle, indent=2, sort_keys=True)
    os.replace(tmp, paths.provenance)


def is_published(spec: ModelSpec, size: int, sha256: str) -> bool:
    return spec.weights_sha256 is not None and (size, sha256) == (spec.weights_size, spec.weights_sha256)


def classify_weights(path: str, spec: ModelSpec) -> tuple[str, str]:
    """(kind, sha256) of a weights file from its bytes alone: the published file is real, the build's
    stand-in random-init, anything else provided (it must still load into the architecture)."""
    sha256 = sha256_file(path)
    if is_published(spec, os.path.getsize(path), sha256):
        return REAL, sha256
    return (RANDOM_INIT if has_stand_in_marker(path) else PROVIDED), sha256
