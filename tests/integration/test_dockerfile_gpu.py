"""The GPU worker image (Dockerfile.gpu), checked without Docker: base, user, healthcheck, pins, allow-list, layout."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.unit.template_support import REPO
from .test_dockerfile import check_copies, dockerignore_allows, instructions, lay_out_image

GPU_DOCKERFILE = (REPO / "Dockerfile.gpu").read_text()
IGNORE = "Dockerfile.gpu.dockerignore"  # BuildKit reads <Dockerfile>.dockerignore beside the Dockerfile


def one(keyword: str) -> str:
    [found] = [args for key, args in instructions(GPU_DOCKERFILE) if key == keyword]
    return found


def _pins(name: str) -> dict[str, str]:
    lines = (REPO / "requirements" / name).read_text().splitlines()
    return dict(line.split("#")[0].strip().split("==", 1) for line in lines if "==" in line.split("#")[0])


def test_cuda_runtime_base_non_root_healthcheck_and_the_worker_entry_point():
    assert one("FROM").startswith("nvidia/cuda:") and "-runtime-" in one("FROM")
    assert one("USER").split(":")[0] == "10001" and "--uid 10001" in GPU_DOCKERFILE
    assert "cxr_worker.healthcheck" in one("HEALTHCHECK") and "--start-period" in one("HEALTHCHECK")
    assert json.loads(one("CMD")) == ["python", "-m", "cxr_worker"]
    assert one("STOPSIGNAL") == "SIGTERM"
    assert "MODEL_ENGINE=torch-cuda" in one("ENV")


def test_it_installs_the_runtime_pins_plus_a_pinned_cuda_torch_that_the_lambda_layers_never_get():
    [installed] = [args for key, args in instructions(GPU_DOCKERFILE) if key == "RUN" and "pip install" in args]
    assert all(f"requirements/{name}" in installed for name in ("core.txt", "model.txt", "gpu.txt"))
    assert "--only-binary=:all:" in installed
    gpu = _pins("gpu.txt")
    assert {"torch", "torchvision", "torchxrayvision"} <= set(gpu)
    dev = _pins("dev.txt")
    assert all(dev[name] == version for name, version in gpu.items() if name in dev)  # CI tests these versions
    assert not {"torch", "torchxrayvision"} & (set(_pins("core.txt")) | set(_pins("model.txt")))


@pytest.fixture(scope="module")
def built_weights(tmp_path_factory) -> Path:
    from tests.model_support import built_model_dir
    return Path(built_model_dir(str(tmp_path_factory.mktemp("model"))))


def test_every_copied_file_exists_and_passes_its_own_allow_list(built_weights):
    check_copies(built_weights, GPU_DOCKERFILE, IGNORE)
    assert dockerignore_allows("layers/model/weights/some-torch-weights.pt", IGNORE)  # the torch engine's file
    assert not dockerignore_allows(".venv/bin/python", IGNORE) and not dockerignore_allows("tests/x.py", IGNORE)


@pytest.fixture(scope="module")
def image_root(tmp_path_factory, built_weights) -> Path:
    return lay_out_image(tmp_path_factory.mktemp("gpu-image"), built_weights, GPU_DOCKERFILE)


def run_in_image(image_root: Path, code: str) -> subprocess.CompletedProcess:
    """Python with the image's /app on the path and the installed packages (torch too: gpu.txt) but no editable
    install of this checkout."""
    import torch
    import torchxrayvision

    paths = [str(image_root / "app"), sysconfig.get_paths()["purelib"],
             *{str(Path(module.__file__).parents[1]) for module in (torch, torchxrayvision)}]
    env = {"PYTHONPATH": os.pathsep.join(paths), "PATH": "/usr/bin:/bin", "HOME": str(image_root),
           "MODEL_DIR": str(image_root / "opt/weights"), "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env,
                          cwd=image_root / "app", timeout=300)


def test_the_image_layout_serves_torch_cuda_and_says_clearly_when_no_gpu_is_there(image_root):
    """On this CPU host the GPU image's own code refuses torch-cuda with the engine's message, and its torch engine
    loads the baked weights (the same files a GPU host would move to the device)."""
    done = run_in_image(image_root, (
        "import torch; from cxr_model import load_predictor; from cxr_model.engines import EngineUnavailable\n"
        "try:\n    load_predictor(__import__('os').environ['MODEL_DIR'], engine='torch-cuda'); print('gpu')\n"
        "except EngineUnavailable as exc:\n    print('refused:', exc)\n"
        "p = load_predictor(__import__('os').environ['MODEL_DIR'], engine='torch'); print(p.identity['weights'])"))
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()[:2]
    assert first == "gpu" or first.startswith("refused: MODEL_ENGINE=torch-cuda needs an NVIDIA GPU")
    assert second == "random-init"
