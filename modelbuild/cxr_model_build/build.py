"""Build step: weights under torchxrayvision's file name, provenance, ONNX export verified against torch.

python -m cxr_model_build.build --model-dir DIR [--name densenet121-res224-all [--name ...]] [--weights-from PATH]
                                [--offline] [--allow-random-init] [--force]
Missing or stand-in weights are fetched (torchxrayvision's cache first, else its URL) and verified before use.
Idempotent: when the weights, provenance and ONNX file agree it returns without importing torch.
"""
from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
from typing import TextIO

from cxr_model.artifacts import PROVIDED, RANDOM_INIT, REAL, ArtifactPaths, read_provenance, sha256_file
from cxr_model.specs import DEFAULT_MODEL, get_spec

from . import sources
from .errors import BuildError
from .export import export_and_verify
from .provenance import classify_weights, write_provenance
from .stand_in import RANDOM_INIT_SEED, create_random_weights

log = logging.getLogger("cxr_model_build")
EXPORT_FORMAT = 2  # 2: a second output, the class activation maps. Bump when the export recipe changes, so stale ONNX files get rebuilt


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _up_to_date(paths: ArtifactPaths, record: dict | None, weights_sha: str) -> bool:
    return (record is not None and record.get("sha256") == weights_sha
            and record.get("export_format") == EXPORT_FORMAT and os.path.isfile(paths.onnx)
            and record.get("onnx_sha256") == sha256_file(paths.onnx) and _onnx_kind(paths) == record.get("weights"))


def _onnx_kind(paths: ArtifactPaths) -> str | None:
    """The weights kind the ONNX export was stamped with (None when unreadable): a stale stamp forces a re-export."""
    try:
        import onnx

        props = {entry.key: entry.value for entry in onnx.load(paths.onnx, load_external_data=False).metadata_props}
    except Exception:  # noqa: BLE001 - missing or damaged: the caller re-exports
        return None
    return props.get("cxr_model.weights")


def _record(kind: str, sha256: str, source: str, **extra) -> dict:
    return {"weights": kind, "sha256": sha256, "created_at": _now(), "source": source, **extra}


def _check_loads(folder: str, paths: ArtifactPaths, source: str) -> None:
    """A file that is not the published one is accepted only if torchxrayvision loads it into the architecture."""
    import torchxrayvision as xrv

    try:
        xrv.models.DenseNet(weights=paths.spec.name, cache_dir=folder)
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle or fit the state dict means refused
        raise BuildError(f"{source} does not load into {paths.spec.name}'s architecture, refused: "
                         f"{type(exc).__name__}: {exc}") from exc


def _warn_provided(sha256: str, source: str) -> None:
    log.warning("UNVERIFIED weights (%s): SHA-256 %s is not torchxrayvision's published file; served as "
                "\"provided\" and flagged in every result", source, sha256)


def _install(paths: ArtifactPaths, staged: sources.Staged) -> dict:
    """Move a staged file into MODEL_DIR once it is known to be the published file or to load."""
    try:
        if staged.kind == RANDOM_INIT:
            raise BuildError(f"{staged.source} is a random-init stand-in (its file carries the marker), not weights")
        if staged.kind == PROVIDED:
            _check_loads(paths.staging, paths, staged.source)
            _warn_provided(staged.sha256, staged.source)
        os.replace(staged.path, paths.weights)
    finally:
        sources.remove_staging(paths, keep_partial=False)
    record = _record(staged.kind, staged.sha256, staged.source)
    write_provenance(paths, record)
    return record


def _stand_in(paths: ArtifactPaths, current: tuple[str, str] | None, record: dict | None, reason: str) -> dict:
    banner = "!" * 78
    log.warning(banner)
    log.warning("real weights unavailable: %s", reason)
    log.warning("using a RANDOM-INITIALISED stand-in (--allow-random-init): scores are meaningless, "
                "NOT FOR CLINICAL USE")
    log.warning(banner)
    if current is not None and current[0] == RANDOM_INIT:
        if record and record.get("sha256") == current[1] and record.get("weights") == RANDOM_INIT:
            return record
        sha256 = current[1]
    else:
        create_random_weights(paths)
        sha256 = sha256_file(paths.weights)
    record = _record(RANDOM_INIT, sha256, "stand-in", seed=RANDOM_INIT_SEED,
                     note="random-initialised stand-in of identical architecture")
    write_provenance(paths, record)
    return record


def ensure_weights(paths: ArtifactPaths, allow_random_init: bool, weights_from: str | None = None,
                   offline: bool = False, out: TextIO = sys.stderr) -> dict:
    """Make sure MODEL_DIR holds weights; return their provenance record. The kind comes from the file's bytes."""
    if weights_from:
        if not os.path.isfile(weights_from):
            raise BuildError(f"--weights-from {weights_from}: no such file")
        return _install(paths, sources.stage_copy(paths, weights_from, f"--weights-from {weights_from}"))
    record = read_provenance(paths)
    current = None
    if os.path.isfile(paths.weights):
        kind, sha256 = classify_weights(paths.weights, paths.spec)
        if kind == PROVIDED and record and record.get("sha256") == sha256 and record.get("weights") == RANDOM_INIT:
            kind = "legacy stand-in"  # made before the marker existed: replaced by the real file or a marked one
        if kind in (REAL, PROVIDED):
            if kind == PROVIDED:
                _warn_provided(sha256, paths.weights)
            if record and record.get("sha256") == sha256 and record.get("weights") == kind:
                return record
            record = _record(kind, sha256, f"found in {paths.model_dir}")
            write_provenance(paths, record)
            return record
        current = (kind, sha256)
    try:
        return _install(paths, sources.published_weights(paths, offline, out))
    except sources.Unavailable as exc:
        reason = str(exc)
    if not allow_random_init:
        raise BuildError(f"no real weights for {paths.spec.name}: {reason}. Put torchxrayvision's file at "
                         f"{paths.weights} (from {paths.spec.weights_url}), name one with --weights-from PATH, "
                         "or pass --allow-random-init for a labelled stand-in.")
    return _stand_in(paths, current, record, reason)


def build(model_dir: str, name: str = "densenet121-res224-all", allow_random_init: bool = False,
          force: bool = False, weights_from: str | None = None, offline: bool | None = None) -> dict:
    """offline=None: as CXR_WEIGHTS_OFFLINE says."""
    spec = get_spec(name)
    paths = ArtifactPaths(os.path.abspath(model_dir), spec)
    os.makedirs(paths.model_dir, exist_ok=True)
    offline = sources.offline_requested() if offline is None else offline
    record = ensure_weights(paths, allow_random_init, weights_from, offline)
    if not force and _up_to_date(paths, record, record["sha256"]):
        log.info("model artifacts up to date in %s", paths.model_dir)
        return record
    report = export_and_verify(paths, record)
    record = {**record, **report, "export_format": EXPORT_FORMAT, "onnx_sha256": sha256_file(paths.onnx),
              "onnx_file": os.path.basename(paths.onnx), "weights_file": os.path.basename(paths.weights)}
    write_provenance(paths, record)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cxr_model_build.build", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--name", action="append", metavar="NAME",
                        help="a model to build (repeatable: every model the deployment serves); default "
                             f"{DEFAULT_MODEL}. Only {DEFAULT_MODEL} has published size and SHA-256: the others "
                             "are served as 'provided' when downloaded, and as labelled stand-ins offline")
    parser.add_argument("--allow-random-init", action="store_true",
                        help="when no real weights can be had, use a labelled random-init stand-in")
    parser.add_argument("--weights-from", metavar="PATH", help="install this weights file (verified; no network)")
    parser.add_argument("--offline", action="store_true", default=None,
                        help=f"never download (also ${sources.OFFLINE_ENV}=1); ${sources.URL_ENV} overrides the URL")
    parser.add_argument("--force", action="store_true", help="re-export and re-verify even when up to date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    names = list(dict.fromkeys(args.name or [DEFAULT_MODEL]))
    if args.weights_from and len(names) > 1:
        parser.error("--weights-from names one file: build one --name with it")
    for name in names:
        try:
            record = build(args.model_dir, name, args.allow_random_init, args.force, args.weights_from, args.offline)
        except (BuildError, ValueError) as exc:
            log.error("%s: %s", name, exc)
            return 1
        log.info("%s: weights=%s sha256=%s onnx max|diff|=%s", name, record["weights"], record["sha256"][:16],
                 record.get("verify_max_abs_diff"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
