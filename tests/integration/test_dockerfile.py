"""The EC2 worker image, checked without Docker: its instructions, its allow-list, and the file layout it builds."""
from __future__ import annotations

import fnmatch
import glob
import json
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.unit.template_support import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
WEIGHTS_SOURCE = "layers/model/weights/"  # the tests build their stand-in elsewhere (tests/model_support.py)


def instructions(dockerfile: str = DOCKERFILE) -> list[tuple[str, str]]:
    joined = dockerfile.replace("\\\n", " ")
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
            for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def one(keyword: str) -> str:
    found = [args for key, args in instructions() if key == keyword]
    assert len(found) == 1, (keyword, found)
    return found[0]


def dockerignore_allows(path: str, ignore_file: str = ".dockerignore") -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a parent folder matches its files."""
    allowed = True
    candidates = [path] + ["/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 1)]
    for line in (REPO / ignore_file).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated, pattern = line.startswith("!"), line.lstrip("!")
        patterns = [pattern, pattern[3:]] if pattern.startswith("**/") else [pattern]
        if any(fnmatch.fnmatch(candidate, p) or fnmatch.fnmatch(candidate, "*/" + p) * pattern.startswith("**/")
               for candidate in candidates for p in patterns):
            allowed = negated
    return allowed


def source_matches(source: str, weights: Path) -> list[str]:
    """What a COPY source names, the model folder read from the tests' own stand-in build."""
    if source.startswith(WEIGHTS_SOURCE):
        return glob.glob(str(weights / source[len(WEIGHTS_SOURCE):]))
    return glob.glob(str(REPO / source))


def copies(dockerfile: str = DOCKERFILE) -> list[tuple[list[str], str]]:
    result = []
    for key, args in instructions(dockerfile):
        if key == "COPY":
            *sources, destination = shlex.split(args)
            result.append(([s for s in sources if not s.startswith("--")], destination))
    return result


def test_cpu_only_python312_base_non_root_healthcheck_and_worker_entry_point():
    assert one("FROM").startswith("python:3.12")
    user = one("USER").split(":")[0]
    assert user not in ("root", "0")
    assert "10001" in one("USER") and "--uid 10001" in DOCKERFILE
    assert "cxr_worker.healthcheck" in one("HEALTHCHECK") and "--start-period" in one("HEALTHCHECK")
    assert json.loads(one("CMD")) == ["python", "-m", "cxr_worker"]
    assert one("STOPSIGNAL") == "SIGTERM"
    installed = [args for key, args in instructions() if key == "RUN" and "pip install" in args][0]
    assert "requirements/core.txt" in installed and "requirements/model.txt" in installed
    for requirements in ("core.txt", "model.txt"):
        lines = (REPO / "requirements" / requirements).read_text().splitlines()
        names = {line.split("==")[0].strip().lower() for line in lines if line.strip() and not line.startswith("#")}
        assert not names & {"torch", "torchvision", "torchxrayvision"}


@pytest.fixture(scope="module")
def built_weights(tmp_path_factory) -> Path:
    """The model build step's output the image bakes in (the build is a no-op when it is up to date)."""
    from tests.model_support import built_model_dir
    return Path(built_model_dir(str(tmp_path_factory.mktemp("model"))))


def check_copies(built_weights: Path, dockerfile: str = DOCKERFILE, ignore_file: str = ".dockerignore") -> None:
    """Every COPY source names something, and each file it names passes the build context's allow-list."""
    for sources, _ in copies(dockerfile):
        for source in sources:
            matches = source_matches(source, built_weights)
            assert matches, f"COPY {source}: nothing there"
            for match in matches:
                files = [match] if Path(match).is_file() else [
                    str(p) for p in Path(match).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
                for file in files:
                    relative = (WEIGHTS_SOURCE + Path(file).name if source.startswith(WEIGHTS_SOURCE)
                                else str(Path(file).relative_to(REPO)))
                    assert dockerignore_allows(relative, ignore_file), file


def test_every_copied_file_exists_and_passes_the_dockerignore_allow_list(built_weights):
    check_copies(built_weights)
    assert not dockerignore_allows(".venv/bin/python")
    assert not dockerignore_allows("layers/model/weights/some-torch-weights.pt")
    assert not dockerignore_allows("functions/infer/__pycache__/app.cpython-312.pyc")


@pytest.fixture(scope="module")
def image_root(tmp_path_factory, built_weights) -> Path:
    return lay_out_image(tmp_path_factory.mktemp("image"), built_weights)


def lay_out_image(root: Path, built_weights: Path, dockerfile: str = DOCKERFILE) -> Path:
    """The image's file system as far as this repository provides it: each COPY carried out."""
    workdir = Path("/")
    for key, args in instructions(dockerfile):
        if key == "WORKDIR":
            workdir = Path(args)
        if key != "COPY":
            continue
        *sources, destination = shlex.split(args)
        target = root / (workdir / destination).relative_to("/")
        for source in sources:
            for match in map(Path, source_matches(source, built_weights)):
                if match.is_dir():
                    shutil.copytree(match, target, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    into_dir = destination.endswith("/")
                    (target if into_dir else target.parent).mkdir(parents=True, exist_ok=True)
                    shutil.copy2(match, target / match.name if into_dir else target)
    return root


def run_in_image(image_root: Path, code: str) -> subprocess.CompletedProcess:
    """Python with the image's /app on the path and this venv's third-party packages, but not its editable installs."""
    site_packages = sysconfig.get_paths()["purelib"]
    env = {"PYTHONPATH": f"{image_root / 'app'}:{site_packages}", "PATH": "/usr/bin:/bin", "HOME": str(image_root),
           "MODEL_DIR": str(image_root / "opt/weights"), "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env,
                          cwd=image_root / "app", timeout=300)


def test_image_layout_bakes_only_the_onnx_export_and_its_provenance(image_root, built_weights):
    baked = sorted(p.name for p in (image_root / "opt/weights").iterdir())
    assert baked == sorted(p.name for p in built_weights.iterdir() if p.suffix in (".onnx", ".json"))
    assert any(name.endswith(".onnx") for name in baked) and not any(name.endswith(".pt") for name in baked)


def test_worker_and_healthcheck_import_from_the_image_layout_without_torch(image_root):
    done = run_in_image(image_root, (
        "import sys, cxr_worker.supervisor, cxr_worker.lifecycle, cxr_core.services.infer, cxr_core.sqs_consumer, cxr_core.bootstrap;"
        "import cxr_worker.healthcheck as h;"
        "from cxr_core.config import settings;"
        "from cxr_model.predictor import load_predictor;"
        "p = load_predictor(settings().model_dir, engine='onnxruntime');"
        "print(cxr_core.__file__); print(p.identity['engine'], p.identity['weights']);"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'torchxrayvision')))"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(str(image_root / "app" / "cxr_core"))
    assert lines[1].startswith("onnxruntime ")
    assert lines[2] == "[]"


def test_image_build_refuses_the_stand_in_unless_real_or_explicitly_provided(image_root):
    """The RUN step that reads the baked ONNX export's metadata, run as the image would (no torch there)."""
    check = [args for key, args in instructions() if key == "RUN" and "cxr_model.deploy_check" in args]
    assert len(check) == 1 and "/opt/weights" in check[0] and "ALLOW_PROVIDED_WEIGHTS" in check[0]
    assert any(key == "ARG" and args == "ALLOW_PROVIDED_WEIGHTS=0" for key, args in instructions())
    order = [key for key, args in instructions() if key == "COPY" and "/opt/weights" in args or args == check[0]]
    assert order == ["COPY", "RUN"]  # checks what was baked, after it was baked
    for allow in ([], ["--allow-provided"]):
        baked = str(image_root / "opt/weights")
        done = run_in_image(image_root, f"import sys; from cxr_model.deploy_check import main; "
                                        f"sys.exit(main([{baked!r}] + {allow!r}))")
        assert done.returncode == 1 and "RANDOM-INIT stand-in" in done.stderr, done.stderr
