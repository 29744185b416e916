"""load_predictor: identity + preprocessing + one batched forward pass per call, for either engine."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .artifacts import RANDOM_INIT, ArtifactPaths, has_stand_in_marker, read_provenance, weights_kind
from .engines import check_engine_settings
from .identity import describe, model_id
from .preprocess import PREPROCESS_MODES, preprocess
from .specs import get_spec


@dataclass(frozen=True)
class Prediction:
    output: dict[str, float]
    top_label: str
    # each reported finding's 7x7 logit map (before sigmoid and op_norm), in output's order; None from an old export
    heatmaps: dict[str, list[list[float]]] | None = None


class ModelArtifactsMissing(RuntimeError):
    """The build step has not been run for this model directory."""


class CpuPipeline:
    """The whole preprocessing on the CPU (in the caller's threads), then one forward pass of the stacked tensors."""

    def __init__(self, engine, preprocess_mode: str):
        self.engine = engine
        self.preprocess_mode = preprocess_mode

    def preprocess(self, data: bytes) -> np.ndarray:
        return preprocess(data, self.preprocess_mode)

    def scores(self, images: list[np.ndarray]) -> np.ndarray:
        return self.engine.run(np.stack(images).astype(np.float32, copy=False))

    def scores_and_maps(self, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """The scores and each finding's class activation map (N, labels, 7, 7) from the same forward pass."""
        return self.engine.run_with_maps(np.stack(images).astype(np.float32, copy=False))

    @staticmethod
    def model_input_pixels(image: np.ndarray) -> bytes:
        """The (1, H, W) model input as 8-bit grey, row by row: [-1024, 1024] mapped onto [0, 255]."""
        scaled = (np.asarray(image, dtype=np.float32)[0] + 1024.0) * (255.0 / 2048.0)
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8).tobytes()


class Predictor:
    """pipeline: where preprocessing ends and the engine begins (CpuPipeline; the GPU's is engines.torch_device)."""

    def __init__(self, engine, labels: tuple[str, ...], identity: dict, preprocess_mode: str, pipeline=None):
        self.engine = engine
        self.labels = labels
        self.identity = identity
        self.model_id = model_id(identity["name"], identity["weights_sha256"], preprocess_mode, identity["precision"])
        self.preprocess_mode = preprocess_mode
        self.pipeline = pipeline or CpuPipeline(engine, preprocess_mode)

    def preprocess(self, data: bytes):
        return self.pipeline.preprocess(data)

    def predict(self, images: list) -> list[Prediction]:
        if not images:
            return []
        if hasattr(self.pipeline, "scores_and_maps"):
            scores, maps = self.pipeline.scores_and_maps(images)
        else:  # the GPU pipeline: scores only, so its results carry no heatmaps
            scores, maps = self.pipeline.scores(images), None
        return [self._prediction(row, None if maps is None else maps[index]) for index, row in enumerate(scores)]

    def _prediction(self, row: np.ndarray, maps: np.ndarray | None) -> Prediction:
        output = {label: float(value) for label, value in zip(self.labels, row) if label}
        heatmaps = None if maps is None else {label: grid.tolist() for label, grid in zip(self.labels, maps) if label}
        return Prediction(output=output, top_label=top_label(output), heatmaps=heatmaps)

    def model_input_pixels(self, image) -> bytes | None:
        """The preprocessed image as 8-bit grey rows, what heatmaps are drawn on; None where preprocessing ends on
        the GPU (the 224 x 224 input exists only there)."""
        pixels = getattr(self.pipeline, "model_input_pixels", None)
        return pixels(image) if pixels else None



def top_label(output: dict[str, float]) -> str:
    """Highest score; a tie goes to the label first in alphabetical order. The CLI and the web page rank the
    same way (clients/README.md), so their first row is always the API's top_label."""
    return min(output.items(), key=lambda item: (-item[1], item[0]))[0]


def load_predictor(model_dir: str, engine: str = "onnxruntime", threads: int = 1,
                   preprocess_mode: str = "exact", name: str = "densenet121-res224-all",
                   precision: str = "fp32") -> Predictor:
    """engine: onnxruntime (the default, CPU), torch (CPU), torch-cuda or onnxruntime-cuda (NVIDIA GPU: raise
    EngineUnavailable where there is none); precision: fp32, or bf16/fp16 (torch engines, opt-in, in the model id)."""
    check_engine_settings(engine, precision)
    if preprocess_mode not in PREPROCESS_MODES:
        raise ValueError(f"unknown preprocess mode {preprocess_mode!r}; expected one of {PREPROCESS_MODES}")
    spec = get_spec(name)
    paths = ArtifactPaths(os.path.abspath(model_dir), spec)
    _limit_blas_threads(threads)
    record = read_provenance(paths) or {}
    if engine.startswith("onnxruntime"):
        if not os.path.isfile(paths.onnx):
            raise ModelArtifactsMissing(f"{paths.onnx} missing: run python -m cxr_model_build.build --model-dir {model_dir}")
        from .engines.onnx_engine import OnnxEngine

        runner = OnnxEngine(paths.onnx, threads, device="cuda" if engine == "onnxruntime-cuda" else "cpu")
        sha256 = runner.metadata["cxr_model.weights_sha256"]
        kind = weights_kind(spec, sha256, runner.metadata.get("cxr_model.weights"),
                            record.get("weights") if record.get("sha256") == sha256 else None)
    else:
        if not os.path.isfile(paths.weights):
            raise ModelArtifactsMissing(f"{paths.weights} missing: run python -m cxr_model_build.build --model-dir {model_dir}")
        from .artifacts import sha256_file
        from .engines.torch_engine import TorchEngine

        runner = TorchEngine.load(paths.model_dir, name, threads, "cuda" if engine == "torch-cuda" else "cpu", precision)
        runner.check_precision()  # a reduced precision past its bound on the scores never serves
        sha256 = sha256_file(paths.weights)
        onnx_marker = _onnx_weights_marker(paths.onnx, sha256)
        kind = weights_kind(spec, sha256, record.get("weights") if record.get("sha256") == sha256 else None,
                            onnx_marker, RANDOM_INIT if has_stand_in_marker(paths.weights) else None)
    identity = describe(name, sha256, kind, engine, preprocess_mode, precision)
    pipeline = None
    if engine == "torch-cuda":  # decode on the CPU, resize and forward batched on the GPU
        from .engines.torch_device import DevicePipeline

        pipeline = DevicePipeline(runner)
    return Predictor(runner, spec.labels, identity, preprocess_mode, pipeline)


def _limit_blas_threads(threads: int) -> None:
    """Preprocessing's matrix products go through OpenBLAS, which otherwise spawns a thread per core and, with one
    worker process per core, thrashes (measured 72 ms -> 600 ms for a 2400 px exact resize on 2 busy cores)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")


def _onnx_weights_marker(onnx_path: str, sha256: str) -> str | None:
    """The random-init flag an ONNX export of these same weights carries, read without building a session."""
    if not os.path.isfile(onnx_path):
        return None
    from .engines.onnx_engine import onnx_metadata

    try:
        props = onnx_metadata(onnx_path)
    except Exception:  # noqa: BLE001 - an unreadable export carries no marker
        return None
    return props.get("cxr_model.weights") if props.get("cxr_model.weights_sha256") == sha256 else None
