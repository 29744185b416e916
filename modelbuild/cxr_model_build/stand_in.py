"""The random-initialised stand-in: identical architecture and file format, marked as such inside the file."""
from __future__ import annotations

import os

from cxr_model.artifacts import RANDOM_INIT, STAND_IN_MARKER, ArtifactPaths

RANDOM_INIT_SEED = 0


def create_random_weights(paths: ArtifactPaths) -> None:
    """Stand-in of identical architecture and file format: a whole pickled xrv DenseNet, as the real file is."""
    import torch
    import torchxrayvision as xrv

    torch.manual_seed(RANDOM_INIT_SEED)
    model = xrv.models.DenseNet(weights=None, num_classes=len(paths.spec.labels))
    _condition_random_model(model, paths.spec.op_threshs)
    # pickled with the module; the model's name makes each stand-in of the family a file (and a hash) of its own
    setattr(model, STAND_IN_MARKER, f"{RANDOM_INIT} seed={RANDOM_INIT_SEED} model={paths.spec.name}")
    os.makedirs(paths.model_dir, exist_ok=True)
    tmp = paths.weights + ".tmp"
    torch.save(model, tmp)
    os.replace(tmp, paths.weights)


def _synthetic_radiographs(count: int, seed: int):
    """Smooth fields plus noise on the [-1024, 1024] scale: enough to set BatchNorm statistics."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 1, 7, 7, generator=generator) * 2 - 1
    fields = torch.nn.functional.interpolate(coarse, size=(224, 224), mode="bicubic", align_corners=False)
    noise = torch.randn(count, 1, 224, 224, generator=generator) * 0.05
    return ((fields + noise).clamp(-1, 1) * 1024).float()


def _condition_random_model(model, op_threshs) -> None:
    """Give the random network realistic BatchNorm statistics and a classifier centred on the operating points.

    Untouched, a kaiming-initialised DenseNet fed [-1024, 1024] inputs saturates every sigmoid to 0 or 1, which
    would make the ONNX-vs-torch check vacuous. The weights stay random; only their scale is made sane.
    """
    import torch

    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batches
    with torch.no_grad():
        for seed in range(4):
            model.features(_synthetic_radiographs(8, seed))
        model.eval()
        features = model.features2(_synthetic_radiographs(32, 99))
        logits = model.classifier(features)
        scale = 1.5 / logits.std(0).clamp_min(1e-6)
        model.classifier.weight.mul_(scale[:, None])
        # a finding the model was not trained for has no operating point (NaN): centre it on 0.5 instead
        target = torch.logit(torch.tensor(op_threshs, dtype=torch.float32).nan_to_num(0.5))
        model.classifier.bias.copy_(target - scale * (logits.mean(0) - model.classifier.bias))
