"""Build step: weights under torchxrayvision's file name, provenance, ONNX export verified against torch.

python -m cxr_model.build --model-dir DIR [--name densenet121-res224-all] [--allow-random-init] [--force]
Idempotent: when the weights, provenance and ONNX file agree it returns without importing torch.
"""
from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys

from .artifacts import RANDOM_INIT, REAL, ArtifactPaths, read_provenance, sha256_file, write_provenance
from .specs import get_spec

log = logging.getLogger("cxr_model.build")
EXPORT_FORMAT = 1  # bump when the export recipe changes, so stale ONNX files get rebuilt
RANDOM_INIT_SEED = 0


class BuildError(RuntimeError):
    pass


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _up_to_date(paths: ArtifactPaths, record: dict | None, weights_sha: str) -> bool:
    return (record is not None and record.get("sha256") == weights_sha
            and record.get("export_format") == EXPORT_FORMAT and os.path.isfile(paths.onnx)
            and record.get("onnx_sha256") == sha256_file(paths.onnx))


def _create_random_weights(paths: ArtifactPaths) -> None:
    """Stand-in of identical architecture and file format: a whole pickled xrv DenseNet, as the real file is."""
    import torch
    import torchxrayvision as xrv

    torch.manual_seed(RANDOM_INIT_SEED)
    model = xrv.models.DenseNet(weights=None, num_classes=len(paths.spec.labels))
    _condition_random_model(model, paths.spec.op_threshs)
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
        target = torch.logit(torch.tensor(op_threshs, dtype=torch.float32))
        model.classifier.bias.copy_(target - scale * (logits.mean(0) - model.classifier.bias))


def ensure_weights(paths: ArtifactPaths, allow_random_init: bool) -> dict:
    """Make sure the weights file exists; return its provenance record (created or refreshed)."""
    record = read_provenance(paths)
    if not os.path.isfile(paths.weights):
        if not allow_random_init:
            raise BuildError(f"weights file missing: {paths.weights}. Put the real file there "
                             f"({paths.spec.weights_url}) or pass --allow-random-init for a labelled stand-in.")
        log.warning("no weights file and no network: creating RANDOM-INITIALISED stand-in weights (not for clinical use)")
        _create_random_weights(paths)
        record = {"weights": RANDOM_INIT, "sha256": sha256_file(paths.weights), "created_at": _now(),
                  "seed": RANDOM_INIT_SEED, "note": "random-initialised stand-in of identical architecture"}
        write_provenance(paths, record)
        return record
    weights_sha = sha256_file(paths.weights)
    if record is None or record.get("sha256") != weights_sha:
        # A file we did not create (or one that replaced our stand-in): provided weights, i.e. real.
        record = {"weights": REAL, "sha256": weights_sha, "created_at": _now(), "note": "provided weights file"}
        write_provenance(paths, record)
    return record


def build(model_dir: str, name: str = "densenet121-res224-all", allow_random_init: bool = False,
          force: bool = False) -> dict:
    spec = get_spec(name)
    paths = ArtifactPaths(os.path.abspath(model_dir), spec)
    record = ensure_weights(paths, allow_random_init)
    if not force and _up_to_date(paths, record, record["sha256"]):
        log.info("model artifacts up to date in %s", paths.model_dir)
        return record
    from .export import export_and_verify

    report = export_and_verify(paths, record)
    record = {**record, **report, "export_format": EXPORT_FORMAT, "onnx_sha256": sha256_file(paths.onnx),
              "onnx_file": os.path.basename(paths.onnx), "weights_file": os.path.basename(paths.weights)}
    write_provenance(paths, record)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cxr_model.build", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--name", default="densenet121-res224-all")
    parser.add_argument("--allow-random-init", action="store_true")
    parser.add_argument("--force", action="store_true", help="re-export and re-verify even when up to date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        record = build(args.model_dir, args.name, args.allow_random_init, args.force)
    except BuildError as exc:
        log.error("%s", exc)
        return 1
    log.info("weights=%s sha256=%s onnx max|diff|=%s", record["weights"], record["sha256"][:16],
             record.get("verify_max_abs_diff"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
