"""The local stack's model artifacts: their build, and what weights they hold (read from the ONNX export)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from cxr_model.specs import DEFAULT_MODEL

from . import processes
from .report import say

RANDOM_INIT, PROVIDED, REAL = "random-init", "provided", "real"


def weights_status(model_dir: str | Path) -> dict[str, Any]:
    """{"kind", "sha256", "random_init", "detail"}; "random_init" stays for older readers of the ready file."""
    from cxr_model.deploy_check import NotDeployable, served_weights

    try:
        served = served_weights(str(model_dir))
    except NotDeployable as exc:
        return {"kind": "unknown", "sha256": None, "random_init": True, "detail": f"weights unknown: {exc}"}
    kind, sha256 = served["kind"], served["sha256"]
    detail = {REAL: "real: torchxrayvision's published file",
              PROVIDED: "PROVIDED, UNVERIFIED: not torchxrayvision's published file; flagged in every result",
              RANDOM_INIT: "random-init stand-in of the real architecture"}.get(kind, kind)
    return {"kind": kind, "sha256": sha256, "random_init": kind == RANDOM_INIT,
            "detail": f"{detail} (SHA-256 {sha256[:16]}, {model_dir})"}


def served_model_names(params: dict[str, str]) -> list[str]:
    """The models the template parameters name (ModelName, then ServedModels); none named: the build's default."""
    names = [params["ModelName"]] if params.get("ModelName") else []
    if params.get("ServedModels"):
        names = (names or [DEFAULT_MODEL]) + [name.strip() for name in params["ServedModels"].split(",") if name.strip()]
    return names


def start_model_build(model_dir: Path, env: dict[str, str], cwd: Path, names: list[str] = ()) -> subprocess.Popen:
    command = [sys.executable, "-m", "cxr_model_build.build", "--model-dir", str(model_dir), "--allow-random-init"]
    command += [argument for name in names for argument in ("--name", name)]
    say("model artifacts: " + " ".join(command[1:]))
    return processes.spawn(command, env=env, cwd=cwd, log=None)
