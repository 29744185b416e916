"""infra/build_layers.py's pruning: runtime-provided SDK distributions and test/tooling folders leave the layer."""
from __future__ import annotations

import ctypes
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.unit.template_support import REPO

sys.path.insert(0, str(REPO / "infra"))
import build_layers  # noqa: E402


def make_distribution(site, name: str, files: dict[str, str]) -> None:
    dist_info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    for relative, text in files.items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_text(text)
    record = [f"{relative},," for relative in files] + [f"{dist_info.name}/METADATA,,", f"{dist_info.name}/RECORD,,"]
    (dist_info / "RECORD").write_text("\n".join(record) + "\n")


def test_runtime_provided_distributions_are_removed_file_by_file(tmp_path):
    make_distribution(tmp_path, "botocore", {"botocore/__init__.py": "", "botocore/data/s3.json": "{}"})
    make_distribution(tmp_path, "python-dateutil", {"dateutil/__init__.py": ""})
    make_distribution(tmp_path, "pynamodb", {"pynamodb/__init__.py": ""})
    dropped = build_layers.drop_distributions(tmp_path, build_layers.RUNTIME_PROVIDED)
    assert sorted(dropped) == ["botocore", "python-dateutil"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pynamodb", "pynamodb-1.0.dist-info"]


def test_prune_drops_tests_tooling_scripts_and_local_bytecode(tmp_path):
    keep = ["numpy/core.py", "onnxruntime/capi/session.py", "pydicom/data/urls.json"]
    drop = ["numpy/tests/test_x.py", "numpy/_core/tests/t.py", "onnxruntime/transformers/opt.py",
            "onnxruntime/quantization/q.py", "onnxruntime/tools/t.py", "bin/f2py", "numpy/__pycache__/a.pyc"]
    for relative in keep + drop:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("x")
    build_layers.prune(tmp_path)
    assert all((tmp_path / relative).exists() for relative in keep)
    assert not any((tmp_path / relative).exists() for relative in drop)


def test_weights_copy_takes_the_onnx_export_and_provenance_only(tmp_path):
    source = tmp_path / "weights"
    source.mkdir()
    for name in ("m.onnx", "m.weights.json", "torch-weights.pt"):
        (source / name).write_text("x")
    copied = build_layers.copy_weights(source, tmp_path / "layer" / "weights", allow_missing=False)
    assert copied == ["m.onnx", "m.weights.json"]


def test_layers_match_the_template_and_target_the_lambda_runtime():
    assert build_layers.LAMBDA_PYTHON == "3.12"
    assert set(build_layers.LAYERS) == {"core", "model"}
    assert {"boto3", "botocore"} <= build_layers.RUNTIME_PROVIDED
    assert not build_layers.LAYERS["model"].drop_distributions


@pytest.fixture(scope="module")
def stamped_export(tmp_path_factory):
    """The tests' stand-in ONNX export re-stamped as if built from weights whose SHA-256 is FAKE_SHA."""
    import onnx

    from tests.model_support import MODEL_NAME, built_model_dir

    folder = tmp_path_factory.mktemp("stamped")
    proto = onnx.load(str(Path(built_model_dir()) / f"{MODEL_NAME}.onnx"))
    for entry in proto.metadata_props:
        if entry.key == "cxr_model.weights_sha256":
            entry.value = FAKE_SHA
        if entry.key == "cxr_model.weights":
            entry.value = "real"
    onnx.save(proto, str(folder / f"{MODEL_NAME}.onnx"))
    return folder


FAKE_SHA = "ab" * 32


def test_model_layer_refuses_the_stand_in_before_building_and_removes_a_stale_layer(tmp_path, monkeypatch):
    from tests.model_support import built_model_dir

    stale = tmp_path / "model" / "weights"
    stale.mkdir(parents=True)
    (stale / "old.onnx").write_text("an older layer that sam build would otherwise zip")
    spec = replace(build_layers.LAYERS["model"], weights_dir=built_model_dir())
    monkeypatch.setitem(build_layers.LAYERS, "model", spec)
    monkeypatch.setattr(build_layers, "pip_install_for_lambda", lambda *a: pytest.fail("checked after installing"))
    with pytest.raises(SystemExit, match="RANDOM-INIT stand-in"):
        build_layers.build_layer("model", tmp_path)
    assert not (tmp_path / "model").exists()
    with pytest.raises(SystemExit, match="RANDOM-INIT stand-in"):
        build_layers.check_weights(Path(built_model_dir()), allow_missing=True, allow_provided=True)


def test_weights_other_than_the_published_file_need_the_explicit_flag(stamped_export, monkeypatch):
    from cxr_model import specs

    # stamped "real" by a build, but its SHA-256 is not the published one: provided, refused without the flag
    with pytest.raises(SystemExit, match="--allow-provided"):
        build_layers.check_weights(stamped_export, allow_missing=False, allow_provided=False)
    assert build_layers.check_weights(stamped_export, allow_missing=False, allow_provided=True) == "provided"
    name = "densenet121-res224-all"
    monkeypatch.setitem(specs.SPECS, name, replace(specs.SPECS[name], weights_sha256=FAKE_SHA))
    assert build_layers.check_weights(stamped_export, allow_missing=False, allow_provided=False) == "real"


@pytest.mark.skipif(shutil.which("strip") is None, reason="binutils' strip is not installed")
def test_strip_debug_info_keeps_a_library_loadable(tmp_path):
    import jpeg_ls  # its _CharLS extension ships with DWARF debug info

    source = next(Path(jpeg_ls.__file__).resolve().parents[1].glob("_CharLS*.so"))
    library = tmp_path / source.name
    shutil.copy2(source, library)
    assert build_layers.strip_debug_info(tmp_path) > 0
    assert library.stat().st_size < source.stat().st_size
    ctypes.CDLL(str(library))  # still a loadable shared object


def test_every_exported_model_is_checked_not_only_the_default(stamped_export, tmp_path):
    """A second model's stand-in export beside an allowed default still refuses the layer (and the image)."""
    from tests.model_support import built_model_dir

    second = Path(built_model_dir()) / "densenet121-res224-chex.onnx"
    if not second.exists():
        pytest.skip("`make test-model` builds the second model (TEST_MODELS)")
    folder = tmp_path / "weights"
    shutil.copytree(stamped_export, folder)
    assert build_layers.check_weights(folder, allow_missing=False, allow_provided=True) == "provided"
    shutil.copy(second, folder / second.name)
    with pytest.raises(SystemExit, match="RANDOM-INIT stand-in"):
        build_layers.check_weights(folder, allow_missing=False, allow_provided=True)
