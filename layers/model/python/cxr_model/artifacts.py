"""Where the build step leaves its files under MODEL_DIR, and the provenance it records with them."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

from .specs import ModelSpec

RANDOM_INIT = "random-init"
REAL = "real"
RANDOM_INIT_WARNING = "random-initialised weights - NOT FOR CLINICAL USE"


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


def read_provenance(paths: ArtifactPaths) -> dict | None:
    try:
        with open(paths.provenance) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def write_provenance(paths: ArtifactPaths, record: dict) -> None:
    tmp = paths.provenance + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(record, handle, indent=2, sort_keys=True)
    os.replace(tmp, paths.provenance)


def weights_kind(*markers: str | None) -> str:
    """'real' only when no random-init marker exists anywhere."""
    return RANDOM_INIT if any(marker == RANDOM_INIT for marker in markers) else REAL
