"""Reference engine: torchxrayvision's DenseNet, model(x) exactly as the library runs it, on the CPU or a CUDA GPU."""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from . import EngineUnavailable

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
REDUCED_PRECISION_BOUND = 0.01  # max |delta p| a reduced precision may move a calibrated score, else it never serves


class PrecisionOutOfBound(ValueError):
    """MODEL_PRECISION moves the scores past REDUCED_PRECISION_BOUND on the check images: refused at load."""


def check_images(count: int = 8, seed: int = 29) -> np.ndarray:
    """Radiograph-like (N,1,224,224) inputs on the [-1024, 1024] scale, deterministic: smooth fields (bicubic from
    7 x 7) plus fine noise, what the stand-in's BatchNorm statistics were set on, so its sigmoids do not saturate."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 1, 7, 7, generator=generator) * 2 - 1
    fields = torch.nn.functional.interpolate(coarse, size=(224, 224), mode="bicubic", align_corners=False)
    noise = torch.randn(count, 1, 224, 224, generator=generator) * 0.05
    return ((fields + noise).clamp(-1, 1) * 1024).float().numpy()


def exact_cuda_math() -> None:
    """fp32 means fp32: TF32 matrix products and convolutions keep only 10 mantissa bits (~1e-3 on the scores)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


def cuda_device(requested: str = "cuda") -> torch.device:
    """The GPU to run on, or EngineUnavailable saying why there is none."""
    if not torch.cuda.is_available():
        built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise EngineUnavailable(f"MODEL_ENGINE=torch-cuda needs an NVIDIA GPU, but torch {torch.__version__} "
                                f"({built}) sees none on this host; use MODEL_ENGINE=onnxruntime (or torch) "
                                f"on CPU hosts, or run the GPU worker image with --gpus all")
    return torch.device(requested)


class TorchEngine:
    name = "torch"

    def __init__(self, model, threads: int | None = None, device: str = "cpu", precision: str = "fp32"):
        if threads is not None:
            torch.set_num_threads(threads)
            try:
                torch.set_num_interop_threads(1)
            except RuntimeError:
                pass  # only settable before the first parallel op in a process
        self.device = cuda_device(device) if device.startswith("cuda") else torch.device(device)
        if self.device.type == "cuda":
            exact_cuda_math()
            self.name = "torch-cuda"
        self.precision = precision
        self.model = model.eval().to(self.device)

    @classmethod
    def load(cls, model_dir: str, name: str, threads: int = 1, device: str = "cpu",
             precision: str = "fp32") -> "TorchEngine":
        if device.startswith("cuda"):
            cuda_device(device)  # fail before unpickling 28 MB of weights
        import torchxrayvision as xrv

        return cls(xrv.models.DenseNet(weights=name, cache_dir=model_dir), threads, device, precision)

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=AUTOCAST_DTYPES[self.precision])

    def run_tensor(self, batch: torch.Tensor) -> torch.Tensor:
        """(N,1,224,224) float32 already on this engine's device -> (N, labels) float32 on the device."""
        with torch.inference_mode(), self._autocast():
            return self.model(batch).float()

    def check_precision(self, batch: np.ndarray | None = None) -> float:
        """max |delta p| of this precision against fp32 on `batch` (default check_images()); PrecisionOutOfBound
        past REDUCED_PRECISION_BOUND. fp32 is the reference itself: 0."""
        if self.precision == "fp32":
            return 0.0
        batch = check_images() if batch is None else batch
        reduced = self.run(batch)
        precision, self.precision = self.precision, "fp32"
        try:
            exact = self.run(batch)
        finally:
            self.precision = precision
        deviation = float(np.abs(reduced - exact).max())
        if deviation > REDUCED_PRECISION_BOUND:
            raise PrecisionOutOfBound(f"MODEL_PRECISION={precision} moves scores by up to {deviation:.3f} on "
                                      f"{self.device.type} (bound {REDUCED_PRECISION_BOUND}); serve fp32")
        return deviation

    def run(self, batch: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        return self.run_tensor(tensor).cpu().numpy()

    def run_with_maps(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """model(x) as the library runs it, and each finding's class activation map from that same pass: the
        classifier applied at every cell of relu(features(x)) (the tensor the library pools), in float64."""
        captured = []
        hook = self.model.features.register_forward_hook(lambda _module, _inputs, output: captured.append(output))
        try:
            scores = self.run(batch)
        finally:
            hook.remove()
        with torch.inference_mode():
            features = torch.relu(captured[0]).double()  # the library rectifies it in place: relu again is a no-op
            weight, bias = self.model.classifier.weight.double(), self.model.classifier.bias.double()
            maps = torch.einsum("nchw,kc->nkhw", features, weight) + bias[None, :, None, None]
        return scores, maps.float().cpu().numpy()
