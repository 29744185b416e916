"""Where real weights come from: a named file, torchxrayvision's cache, the published URL; staged, then verified."""
from __future__ import annotations

import logging
import os
import shutil
import sys
from dataclasses import dataclass
from typing import TextIO

from cxr_model.artifacts import REAL, ArtifactPaths, sha256_file

from .fetch import FetchError, download
from .provenance import classify_weights, is_published

log = logging.getLogger("cxr_model_build")
URL_ENV = "CXR_WEIGHTS_URL"  # build only: fetch from here instead of torchxrayvision's URL (tests: a loopback server)
OFFLINE_ENV = "CXR_WEIGHTS_OFFLINE"  # build only: 1 = never touch the network (the test suite sets it)
# xrv.utils.get_cache_dir(), spelled out so the build looks there without importing torch (a test keeps them equal)
XRV_CACHE_DIR = os.path.join("~", ".torchxrayvision", "models_data")


class Unavailable(RuntimeError):
    """No verified copy of the published weights could be had now."""


@dataclass(frozen=True)
class Staged:
    path: str
    kind: str
    sha256: str
    source: str


def offline_requested() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def stage_copy(paths: ArtifactPaths, source: str, label: str) -> Staged:
    """A copy of a local file under the staging folder, classified by its bytes (no network)."""
    os.makedirs(paths.staging, exist_ok=True)
    staged = os.path.join(paths.staging, paths.spec.weights_filename)
    shutil.copyfile(source, staged + ".copy")
    os.replace(staged + ".copy", staged)
    kind, sha256 = classify_weights(staged, paths.spec)
    return Staged(staged, kind, sha256, label)


def published_weights(paths: ArtifactPaths, offline: bool, out: TextIO = sys.stderr) -> Staged:
    """The published file from torchxrayvision's cache, else downloaded; verified by size and SHA-256."""
    spec = paths.spec
    cached = os.path.join(os.path.expanduser(XRV_CACHE_DIR), spec.weights_filename)
    if os.path.isfile(cached):
        if is_published(spec, os.path.getsize(cached), sha256_file(cached)):
            log.info("using torchxrayvision's cached copy %s (size and SHA-256 verified)", cached)
            return stage_copy(paths, cached, f"torchxrayvision cache {cached}")
        log.warning("ignoring %s: not the published file (size or SHA-256 differs)", cached)
    if offline:
        raise Unavailable(f"offline ({OFFLINE_ENV} or --offline): no download attempted")
    url = os.environ.get(URL_ENV) or spec.weights_url
    os.makedirs(paths.staging, exist_ok=True)
    part = os.path.join(paths.staging, spec.weights_filename + ".part")
    log.info("fetching %s weights (%.1f MB) from %s", spec.name, (spec.weights_size or 0) / 1e6, url)
    try:
        download(url, part, spec.weights_size, out)
    except FetchError as exc:
        remove_staging(paths, keep_partial=True)
        raise Unavailable(str(exc)) from exc
    size, sha256 = os.path.getsize(part), sha256_file(part)
    if not is_published(spec, size, sha256):
        remove_staging(paths, keep_partial=False)
        raise Unavailable(f"the downloaded file is not the published one ({size} bytes, SHA-256 {sha256}; expected "
                          f"{spec.weights_size} bytes, SHA-256 {spec.weights_sha256}): deleted")
    log.info("verified: %d bytes, SHA-256 %s (torchxrayvision's published file)", size, sha256)
    staged = part[:-len(".part")]
    os.replace(part, staged)
    return Staged(staged, REAL, sha256, f"downloaded from {url}")


def remove_staging(paths: ArtifactPaths, keep_partial: bool) -> None:
    """Drop staged files; an interrupted download's .part stays when asked, for the next attempt to resume."""
    if not os.path.isdir(paths.staging):
        return
    for name in os.listdir(paths.staging):
        if not (keep_partial and name.endswith(".part")):
            os.remove(os.path.join(paths.staging, name))
    if not os.listdir(paths.staging):
        os.rmdir(paths.staging)
