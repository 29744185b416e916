"""GPU engine selection, precision and error paths, run on the CPU (CI has no GPU)."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from cxr_model import load_predictor, read_identity
from cxr_model.engines.torch_device import DevicePipeline
from cxr_model.engines import EngineUnavailable
from cxr_model.engines import torch_engine
from cxr_model.engines.onnx_engine import CUDA_PROVIDER, OnnxEngine
from cxr_model.engines.torch_engine import REDUCED_PRECISION_BOUND, PrecisionOutOfBound, TorchEngine, check_images
from cxr_model.errors import ImageError
from tests.model_support import SAMPLE_FILES, built_model_dir

NO_GPU = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return built_model_dir(str(tmp_path_factory.mktemp("model")))


@pytest.fixture(scope="module")
def cpu_torch(model_dir):
    return load_predictor(model_dir, engine="torch")


def _scores(predictor, datas):
    return np.array([list(p.output.values()) for p in predictor.predict([predictor.preprocess(d) for d in datas])])


@pytest.mark.skipif(not NO_GPU, reason="this host has a GPU")
def test_torch_cuda_without_a_gpu_is_a_clear_error_before_loading_weights(model_dir, monkeypatch):
    import torchxrayvision as xrv

    monkeypatch.setattr(xrv.models, "DenseNet", lambda *a, **k: pytest.fail("weights loaded before the check"))
    with pytest.raises(EngineUnavailable, match=r"MODEL_ENGINE=torch-cuda needs an NVIDIA GPU.*MODEL_ENGINE=onnxruntime"):
        load_predictor(model_dir, engine="torch-cuda")


@pytest.mark.skipif(CUDA_PROVIDER in ort.get_available_providers(), reason="onnxruntime-gpu is installed")
def test_onnxruntime_cuda_without_the_provider_is_a_clear_error(model_dir):
    with pytest.raises(EngineUnavailable, match=r"onnxruntime-gpu \(CUDAExecutionProvider\)"):
        load_predictor(model_dir, engine="onnxruntime-cuda")


def test_onnxruntime_cuda_refuses_the_silent_cpu_fallback(model_dir, monkeypatch):
    """A provider that is listed but cannot start: onnxruntime would run on the CPU with a warning; we refuse."""
    from cxr_model.engines import onnx_engine

    if CUDA_PROVIDER in ort.get_available_providers():
        pytest.skip("a real CUDA provider is installed")
    monkeypatch.setattr(onnx_engine.ort, "get_available_providers", lambda: [CUDA_PROVIDER, "CPUExecutionProvider"])
    with pytest.raises(EngineUnavailable, match="could not start CUDAExecutionProvider"):
        OnnxEngine(f"{model_dir}/densenet121-res224-all.onnx", 1, device="cuda")


@pytest.mark.parametrize("engine, precision, message", [
    ("tensorrt", "fp32", "unknown engine"),
    ("torch", "int4", "unknown precision"),
    ("onnxruntime", "bf16", "needs a torch engine"),
    ("onnxruntime-cuda", "fp16", "needs a torch engine"),
])
def test_unknown_engines_and_precisions_are_refused(model_dir, engine, precision, message):
    with pytest.raises(ValueError, match=message):
        load_predictor(model_dir, engine=engine, precision=precision)


def test_torch_cuda_selects_the_device_pipeline_and_matches_the_cpu_engine(model_dir, cpu_torch, monkeypatch):
    """The torch-cuda wiring end to end with the device swapped for the CPU: decode on the host, batched exact
    resize and forward on the engine's device, scores equal to the CPU pipeline."""
    monkeypatch.setattr(torch_engine, "cuda_device", lambda requested="cuda": torch.device("cpu"))
    predictor = load_predictor(model_dir, engine="torch-cuda")
    assert isinstance(predictor.pipeline, DevicePipeline) and predictor.pipeline.engine is predictor.engine
    assert predictor.identity["engine"] == "torch-cuda" and predictor.identity["precision"] == "fp32"
    assert predictor.model_id == cpu_torch.model_id  # fp32 on any engine: one cache key
    datas = [path.read_bytes() for path in SAMPLE_FILES]
    assert np.abs(_scores(predictor, datas) - _scores(cpu_torch, datas)).max() <= 1e-4
    with pytest.raises(ImageError):
        predictor.preprocess(b"\x89PNG\r\n\x1a\n not a png")


def test_cuda_engines_keep_fp32_exact():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        torch_engine.exact_cuda_math()
        assert torch.backends.cuda.matmul.allow_tf32 is False and torch.backends.cudnn.allow_tf32 is False
        assert torch.get_float32_matmul_precision() == "highest"
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:2]
        torch.set_float32_matmul_precision(saved[2])


def test_reduced_precision_is_named_in_the_identity_and_the_cache_key(model_dir, cpu_torch, monkeypatch):
    monkeypatch.setattr(TorchEngine, "check_precision", lambda self, batch=None: 0.0)
    predictor = load_predictor(model_dir, engine="torch", precision="bf16")
    assert predictor.identity["precision"] == "bf16"
    assert predictor.model_id == cpu_torch.model_id + "/bf16"
    assert read_identity(model_dir, engine="torch", precision="bf16")["model_id"] == predictor.model_id
    assert read_identity(model_dir)["model_id"] == cpu_torch.model_id and cpu_torch.model_id.endswith("/exact")


def test_bf16_on_cpu_is_held_to_the_bound_on_the_scores(model_dir, cpu_torch, record_property):
    """bf16 (autocast) against fp32 on the samples: measured, and served only where it stays within 0.01."""
    engine = TorchEngine(cpu_torch.engine.model, precision="bf16")
    samples = np.stack([cpu_torch.preprocess(path.read_bytes()) for path in SAMPLE_FILES])
    exact = cpu_torch.engine.run(samples)
    deviation = float(np.abs(engine.run(samples) - exact).max())
    record_property("bf16_max_abs_delta_p", deviation)
    assert deviation > 0  # it really ran in bf16
    if deviation <= REDUCED_PRECISION_BOUND:
        assert engine.check_precision(samples) == deviation
    else:
        with pytest.raises(PrecisionOutOfBound, match="MODEL_PRECISION=bf16 moves scores"):
            engine.check_precision(samples)
        with pytest.raises(PrecisionOutOfBound):
            load_predictor(model_dir, engine="torch", precision="bf16")


def test_the_precision_check_images_look_like_network_inputs():
    images = check_images()
    assert images.shape == (8, 1, 224, 224) and images.dtype == np.float32
    assert images.min() >= -1024 and images.max() <= 1024 and images.std() > 100


@pytest.mark.parametrize("env, precision, decode_threads", [
    ({"MODEL_ENGINE": "torch-cuda"}, "fp32", 8), ({"MODEL_ENGINE": "torch-cuda", "INFER_BATCH_SIZE": "3"}, "fp32", 3),
    ({"MODEL_PRECISION": "fp16", "INFER_BATCH_SIZE": "64", "DECODE_THREADS": "4"}, "fp16", 4),
])
def test_precision_and_decode_threads_come_from_the_one_config_module(monkeypatch, env, precision, decode_threads):
    from cxr_core.config import settings
    from tests.unit.template_support import raw_template

    assert raw_template()["Parameters"]["ModelPrecision"]["Default"] == "fp32"
    for name in ("MODEL_PRECISION", "INFER_BATCH_SIZE", "DECODE_THREADS", "MODEL_ENGINE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    try:
        assert (settings().model_precision, settings().decode_threads) == (precision, decode_threads)
    finally:
        settings.cache_clear()


def test_the_infer_service_runs_a_batch_through_the_device_pipeline(model_dir, cpu_torch, monkeypatch):
    """A batch of real uploads through process_batch with the torch-cuda predictor (device swapped for the CPU):
    decoding in the executor's threads, one batched resize + forward pass, each job COMPLETED with the CPU's scores."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    from cxr_core.domain import JobStatus, Upload
    from cxr_core.services.infer import InboundMessage, InferDeps, process_batch
    from cxr_core.services.submit import SubmitDeps, submit_image
    from cxr_model import check_image
    from cxr_model.privacy import deidentify_dicom
    from tests.fakes import InMemoryImageStore, InMemoryJobStore, InMemoryQueue

    monkeypatch.setattr(torch_engine, "cuda_device", lambda requested="cuda": torch.device("cpu"))
    predictor = load_predictor(model_dir, engine="torch-cuda")
    jobs, images, queue = InMemoryJobStore(), InMemoryImageStore(), InMemoryQueue()
    submit = SubmitDeps(jobs=jobs, images=images, queue=queue, model_id=predictor.model_id, check_image=check_image,
                        deidentify_dicom=deidentify_dicom)
    datas = [path.read_bytes() for path in SAMPLE_FILES]
    for data in datas:
        submit_image(Upload(data), submit)
    messages = [InboundMessage(f"m{i}", json.dumps(m.to_dict())) for i, m in enumerate(queue.messages)]
    report = process_batch(messages, InferDeps(jobs=jobs, images=images, predictor=predictor,
                                               executor=ThreadPoolExecutor(4), max_receive_count=3, lease_seconds=60))
    assert sorted(report.succeeded) == sorted(m.message_id for m in messages) and report.batch_size == len(datas)
    expected = {tuple(p.output.values()) for p in cpu_torch.predict([cpu_torch.preprocess(d) for d in datas])}
    for job_id in report.completed_jobs:
        job = jobs.get_job(job_id)
        assert job.status is JobStatus.COMPLETED and job.result["model"]["engine"] == "torch-cuda"
        assert min(max(abs(a - b) for a, b in zip(job.result["output"].values(), scores)) for scores in expected) <= 1e-4
