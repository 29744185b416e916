"""Engines, predictor identity and the build step, on artifacts built once per session."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from cxr_model import LABELS, load_predictor
from cxr_model.specs import DEFAULT_MODEL, SPECS, get_spec
from tests.model_support import MODEL_NAME, SAMPLE_FILES, built_model_dir

ENGINE_TOLERANCE = 1e-4


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return built_model_dir(str(tmp_path_factory.mktemp("model")))


@pytest.fixture(scope="session")
def predictors(model_dir):
    return {engine: load_predictor(model_dir, engine=engine) for engine in ("onnxruntime", "torch")}


@pytest.fixture(scope="session")
def sample_batch(predictors):
    images = [predictors["onnxruntime"].preprocess(path.read_bytes()) for path in SAMPLE_FILES]
    flipped = [image[:, :, ::-1].copy() for image in images]
    return np.stack((images + flipped)[:8])


def _scores(predictions):
    return np.array([[p.output[label] for label in LABELS] for p in predictions])


def test_labels_and_op_threshs_match_torchxrayvision():
    import torchxrayvision as xrv

    from cxr_model.specs import get_spec

    spec, library = get_spec(MODEL_NAME), xrv.models.model_urls[MODEL_NAME]
    assert list(LABELS) == library["labels"] and len(LABELS) == 18
    assert list(spec.op_threshs) == library["op_threshs"]
    assert spec.weights_filename == os.path.basename(library["weights_url"])


def test_torch_engine_is_exactly_the_library_model(model_dir, predictors, sample_batch):
    import torch
    import torchxrayvision as xrv

    model = xrv.models.DenseNet(weights=MODEL_NAME, cache_dir=model_dir)
    with torch.no_grad():
        expected = model(torch.from_numpy(sample_batch)).numpy()
    assert np.array_equal(predictors["torch"].engine.run(sample_batch), expected)
    assert np.array_equal(_scores(predictors["torch"].predict(list(sample_batch))), expected.astype(np.float64))


@pytest.mark.parametrize("batch_size", [1, 8])
def test_onnxruntime_matches_torch_on_samples(predictors, sample_batch, batch_size, record_property):
    batch = list(sample_batch[:batch_size])
    diff = np.abs(_scores(predictors["onnxruntime"].predict(batch)) - _scores(predictors["torch"].predict(batch)))
    record_property("max_abs_diff", float(diff.max()))
    assert diff.max() <= ENGINE_TOLERANCE


@pytest.mark.parametrize("batch_size", [1, 8])
def test_onnxruntime_matches_torch_on_random_inputs(predictors, batch_size):
    rng = np.random.default_rng(batch_size)
    coarse = rng.uniform(-1, 1, size=(batch_size, 8, 8))
    smooth = np.stack([np.kron(c, np.ones((28, 28))) for c in coarse])[:, None] * 1000
    noisy = np.clip(smooth + rng.normal(0, 40, smooth.shape), -1024, 1024).astype(np.float32)
    for batch in (noisy, rng.uniform(-1024, 1024, size=noisy.shape).astype(np.float32)):
        diff = np.abs(predictors["onnxruntime"].engine.run(batch) - predictors["torch"].engine.run(batch))
        assert diff.max() <= ENGINE_TOLERANCE


def test_outputs_are_not_saturated(predictors, sample_batch):
    """The random-init stand-in is conditioned so the equivalence checks compare live numbers, not 0s and 1s."""
    scores = predictors["onnxruntime"].engine.run(sample_batch)
    assert ((scores > 0.01) & (scores < 0.99)).mean() > 0.3


def test_predict_is_list_in_list_out(predictors, sample_batch):
    predictor = predictors["onnxruntime"]
    assert predictor.predict([]) == []
    one, many = predictor.predict([sample_batch[0]]), predictor.predict(list(sample_batch[:3]))
    assert len(one) == 1 and len(many) == 3
    assert list(one[0].output) == list(LABELS)
    assert one[0].top_label == max(one[0].output, key=one[0].output.get)
    assert _scores(one) == pytest.approx(_scores(many[:1]), abs=1e-5)


def test_identity_names_weights_and_engine(model_dir, predictors):
    from cxr_model.artifacts import sha256_file

    with open(os.path.join(model_dir, f"{MODEL_NAME}.weights.json")) as handle:
        provenance = json.load(handle)
    onnx_identity, torch_identity = predictors["onnxruntime"].identity, predictors["torch"].identity
    weights_path = os.path.join(model_dir, provenance["weights_file"])
    assert onnx_identity["weights_sha256"] == torch_identity["weights_sha256"] == sha256_file(weights_path)
    assert (onnx_identity["engine"], torch_identity["engine"]) == ("onnxruntime", "torch")
    assert predictors["onnxruntime"].model_id == predictors["torch"].model_id == \
        f"{MODEL_NAME}@{onnx_identity['weights_sha256'][:16]}/exact"
    assert onnx_identity["weights"] == torch_identity["weights"] == provenance["weights"]
    if provenance["weights"] == "random-init":
        assert "NOT FOR CLINICAL USE" in onnx_identity["warning"] and "NOT FOR CLINICAL USE" in torch_identity["warning"]


def test_random_init_marker_survives_in_onnx_metadata(model_dir):
    import onnx

    with open(os.path.join(model_dir, f"{MODEL_NAME}.weights.json")) as handle:
        provenance = json.load(handle)
    props = {p.key: p.value for p in onnx.load(os.path.join(model_dir, f"{MODEL_NAME}.onnx")).metadata_props}
    assert props["cxr_model.weights"] == provenance["weights"]
    assert props["cxr_model.weights_sha256"] == provenance["sha256"]
    assert provenance["verify_max_abs_diff"] <= ENGINE_TOLERANCE


def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_onnxruntime_path_imports_no_torch(model_dir):
    code = f"""
import sys
from cxr_model import LABELS, ImageError, sniff_format, check_image, load_predictor
p = load_predictor({model_dir!r}, engine="onnxruntime")
data = open({str(SAMPLE_FILES[0])!r}, "rb").read()
check_image(data)
print(p.predict([p.preprocess(data)])[0].top_label)
heavy = [m for m in ("torch", "torchxrayvision", "torchvision", "skimage", "scipy") if m in sys.modules]
assert not heavy, heavy
"""
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in LABELS


def test_build_is_idempotent_and_skips_torch_when_up_to_date(model_dir):
    onnx_path = os.path.join(model_dir, f"{MODEL_NAME}.onnx")
    before = os.stat(onnx_path).st_mtime_ns
    code = f"""
import sys
from cxr_model_build.build import main
assert main(["--model-dir", {model_dir!r}, "--allow-random-init"]) == 0
assert "torch" not in sys.modules
"""
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert os.stat(onnx_path).st_mtime_ns == before


def test_build_refuses_to_invent_weights_without_the_flag(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cxr_model_build.build", "--model-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "--allow-random-init" in result.stderr
    assert not any(tmp_path.iterdir())


def test_threads_setting_reaches_onnxruntime(model_dir):
    predictor = load_predictor(model_dir, engine="onnxruntime", threads=2)
    assert predictor.engine.session.get_session_options().intra_op_num_threads == 2


def test_read_identity_agrees_with_the_loaded_predictors(model_dir, predictors):
    """Submit/poll read the identity without an engine; it must name the same model the worker runs."""
    from cxr_model import read_identity

    for engine, predictor in predictors.items():
        identity = read_identity(model_dir, name=MODEL_NAME, engine=engine, preprocess_mode="exact")
        assert identity["model_id"] == predictor.model_id
        assert {k: v for k, v in identity.items() if k != "model_id"} == predictor.identity


def test_the_densenet_family_matches_torchxrayvision_and_only_the_default_can_be_real():
    import torchxrayvision as xrv

    assert len(SPECS) == 7 and DEFAULT_MODEL == "densenet121-res224-all"
    for name, spec in SPECS.items():
        library = xrv.models.model_urls[name]
        assert list(spec.labels) == library["labels"] and spec.weights_filename == library["weights_url"].split("/")[-1]
        assert all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(spec.op_threshs, library["op_threshs"]))
        assert spec.findings == tuple(label for label in library["labels"] if label)  # never an empty label
        assert (spec.weights_sha256 is not None) == (name == DEFAULT_MODEL)  # no published hash: never "real"
    assert len(get_spec("densenet121-res224-chex").findings) == 11
