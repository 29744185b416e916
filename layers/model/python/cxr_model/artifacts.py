"""Where the build step leaves its files under MODEL_DIR, and the provenance it records with them."""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass

from .specs import ModelSpec

RANDOM_INIT = "random-init"
REAL = "real"
PROVIDED = "provided"
RANDOM_INIT_WARNING = "random-initialised weights - NOT FOR CLINICAL USE"
PROVIDED_WARNING = "unverified weights (not torchxrayvision's published file) - NOT VALIDATED FOR CLINICAL USE"
# An attribute the build sets on the stand-in module before pickling it: the file itself says what it is.
STAND_IN_MARKER = "cxr_model_stand_in"


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ArtifactPaths:
    model_dir: str
    spec: ModelSpec

    @property
    def weights(self) -> str:
        """torchxrayvision looks the weights up under cache_dir by exactly this file name."""
        return os.path.join(self.model_dir, self.spec.weights_filename)

    @property
    def provenance(self) -> str:
        return os.path.join(self.model_dir, f"{self.spec.name}.weights.json")

    @property
    def onnx(self) -> str:
        return os.path.join(self.model_dir, f"{self.spec.name}.onnx")

    @property
    def staging(self) -> str:
        """Downloads and copies wait here (a .part file resumes) until verified; nothing ships from it."""
        return os.path.join(self.model_dir, ".download")


def read_provenance(paths: ArtifactPaths) -> dict | None:
    try:
        with open(paths.provenance) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def has_stand_in_marker(path: str) -> bool:
    """True for the build's stand-in, read from the pickle inside torch's zip format (no torch, no unpickling)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(STAND_IN_MARKER.encode() in archive.read(name)
                       for name in archive.namelist() if name.endswith("data.pkl"))
    except (zipfile.BadZipFile, OSError, KeyError):
        return False


def weights_kind(spec: ModelSpec, sha256: str, *markers: str | None) -> str:
    """At run time: random-init if any marker says so, real only for the published file's hash, else provided."""
    if any(marker == RANDOM_INIT for marker in markers):
        return RANDOM_INIT
    return REAL if spec.weights_sha256 is not None and sha256 == spec.weights_sha256 else PROVIDED


def weights_warning(kind: str) -> str | None:
    return {RANDOM_INIT: RANDOM_INIT_WARNING, PROVIDED: PROVIDED_WARNING}.get(kind)
