"""The build's weights: download from a loopback server, verification, resume, reuse, offline fallback, kinds."""
from __future__ import annotations

import hashlib
import io
import logging
import shutil
import socket
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from cxr_model import specs
from cxr_model.artifacts import ArtifactPaths, weights_kind
from cxr_model_build import fetch, sources
from cxr_model_build.build import BuildError, ensure_weights
from cxr_model_build.provenance import classify_weights
from tests.model_support import MODEL_NAME, built_model_dir

PAYLOAD = np.random.default_rng(15).bytes(300_000)  # stands for the published file: the spec is patched to it


class WeightsHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        server = self.server
        server.ranges.append(self.headers.get("Range"))
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        body = server.payload[start:]
        announced = len(body)
        if server.mode == "truncated":
            body = body[:-1000]
            announced = len(body)
        elif server.mode == "drop":
            body = body[: len(body) // 2]  # announces the whole file, then the connection breaks
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}")
        self.send_header("Content-Length", str(announced))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), WeightsHandler)
    httpd.payload, httpd.mode, httpd.ranges = PAYLOAD, "ok", []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv(sources.URL_ENV, f"http://127.0.0.1:{httpd.server_address[1]}/weights.pt")
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def paths(tmp_path, monkeypatch):
    """A fresh MODEL_DIR whose spec says PAYLOAD is the published file (the real constants stay untouched)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # an empty torchxrayvision cache
    spec = replace(specs.SPECS[MODEL_NAME], weights_size=len(PAYLOAD),
                   weights_sha256=hashlib.sha256(PAYLOAD).hexdigest())
    monkeypatch.setitem(specs.SPECS, MODEL_NAME, spec)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    return ArtifactPaths(str(model_dir), spec)


def stand_in() -> Path:
    return Path(built_model_dir()) / specs.SPECS[MODEL_NAME].weights_filename


def test_download_from_a_local_server_shows_progress_and_installs_the_verified_file(server, paths):
    out = io.StringIO()
    record = ensure_weights(paths, allow_random_init=False, out=out)
    assert record["weights"] == "real" and record["source"].startswith("downloaded from http://127.0.0.1:")
    assert Path(paths.weights).read_bytes() == PAYLOAD
    assert sorted(p.name for p in Path(paths.model_dir).iterdir()) == sorted(
        [Path(paths.weights).name, Path(paths.provenance).name])  # the staging folder is gone
    progress = out.getvalue().splitlines()
    assert len(progress) >= 5 and "100%" in progress[-1] and "0.3/0.3 MB" in progress[-1]


def test_a_download_with_another_hash_is_refused_and_deleted(server, paths):
    server.payload = PAYLOAD[:100] + bytes([PAYLOAD[100] ^ 1]) + PAYLOAD[101:]
    with pytest.raises(BuildError, match="not the published one.*deleted"):
        ensure_weights(paths, allow_random_init=False, out=io.StringIO())
    assert not any(Path(paths.model_dir).iterdir())


def test_a_truncated_download_is_refused_and_cleaned_up(server, paths):
    server.mode = "truncated"
    with pytest.raises(BuildError, match="announces 299000 bytes"):
        ensure_weights(paths, allow_random_init=False, out=io.StringIO())
    assert not any(Path(paths.model_dir).iterdir())


def test_an_interrupted_download_resumes_with_a_range_request(server, paths):
    server.mode = "drop"
    with pytest.raises(BuildError, match="interrupted.*resume"):
        ensure_weights(paths, allow_random_init=False, out=io.StringIO())
    part = Path(paths.staging) / (Path(paths.weights).name + ".part")
    kept = part.stat().st_size  # what had arrived, up to the last whole chunk read
    assert 0 < kept <= len(PAYLOAD) // 2 and not Path(paths.weights).exists()
    server.mode = "ok"
    assert ensure_weights(paths, allow_random_init=False, out=io.StringIO())["weights"] == "real"
    assert server.ranges == [None, f"bytes={kept}-"]
    assert Path(paths.weights).read_bytes() == PAYLOAD and not Path(paths.staging).exists()


def test_torchxrayvision_cache_is_reused_without_the_network(paths, tmp_path):
    import torchxrayvision as xrv

    assert Path(sources.XRV_CACHE_DIR).expanduser() == Path(xrv.utils.get_cache_dir())
    assert specs.DENSENET121_RES224_ALL.weights_url == xrv.models.model_urls[MODEL_NAME]["weights_url"]
    cached = tmp_path / "home" / ".torchxrayvision" / "models_data" / Path(paths.weights).name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(PAYLOAD)
    record = ensure_weights(paths, allow_random_init=False, offline=True)
    assert record["weights"] == "real" and record["source"] == f"torchxrayvision cache {cached}"
    assert Path(paths.weights).read_bytes() == PAYLOAD


def test_offline_falls_back_to_the_stand_in_only_where_allowed(paths, caplog):
    with pytest.raises(BuildError, match="offline.*--weights-from PATH.*--allow-random-init"):
        ensure_weights(paths, allow_random_init=False, offline=True)
    assert not any(Path(paths.model_dir).iterdir())
    shutil.copy(stand_in(), paths.weights)  # no sidecar: the file itself says what it is
    with pytest.raises(BuildError, match="no real weights"):
        ensure_weights(paths, allow_random_init=False, offline=True)
    with caplog.at_level(logging.WARNING, logger="cxr_model_build"):
        record = ensure_weights(paths, allow_random_init=True, offline=True)
    assert record["weights"] == "random-init" and "RANDOM-INITIALISED stand-in" in caplog.text


def test_an_unanswering_host_fails_the_fetch_within_the_deadline(paths, monkeypatch, caplog):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # connects, never answers: what a black-holed route or a hung proxy looks like
    monkeypatch.setenv(sources.URL_ENV, f"http://127.0.0.1:{silent.getsockname()[1]}/weights.pt")
    monkeypatch.setattr(fetch, "START_DEADLINE_S", 0.5)
    shutil.copy(stand_in(), paths.weights)
    try:
        with caplog.at_level(logging.WARNING, logger="cxr_model_build"):
            record = ensure_weights(paths, allow_random_init=True, out=io.StringIO())
    finally:
        silent.close()
    assert record["weights"] == "random-init" and "no answer from" in caplog.text
    assert classify_weights(paths.weights, paths.spec)[0] == "random-init"


def test_weights_from_a_path_real_stand_in_broken_or_provided(paths, tmp_path, caplog):
    import torch
    import torchxrayvision as xrv

    published = tmp_path / "published.pt"
    published.write_bytes(PAYLOAD)
    assert ensure_weights(paths, False, weights_from=str(published), offline=True)["weights"] == "real"
    with pytest.raises(BuildError, match="random-init stand-in"):
        ensure_weights(paths, False, weights_from=str(stand_in()), offline=True)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a pickled module")
    with pytest.raises(BuildError, match="does not load into densenet121-res224-all's architecture"):
        ensure_weights(paths, False, weights_from=str(broken), offline=True)
    assert Path(paths.weights).read_bytes() == PAYLOAD and not Path(paths.staging).exists()
    fine_tuned = tmp_path / "fine_tuned.pt"
    torch.save(xrv.models.DenseNet(weights=None, num_classes=18), fine_tuned)
    with caplog.at_level(logging.WARNING, logger="cxr_model_build"):
        record = ensure_weights(paths, False, weights_from=str(fine_tuned), offline=True)
    assert record["weights"] == "provided" and "UNVERIFIED" in caplog.text
    assert ensure_weights(paths, False, offline=True)["weights"] == "provided"  # kept on the next build


def test_the_served_kind_is_real_only_for_the_published_hash():
    spec = specs.DENSENET121_RES224_ALL
    assert weights_kind(spec, spec.weights_sha256, "real") == "real"
    assert weights_kind(spec, spec.weights_sha256, None) == "real"
    assert weights_kind(spec, "ab" * 32, "real") == "provided"  # a sidecar or stamp cannot make a file real
    assert weights_kind(spec, spec.weights_sha256, "real", "random-init") == "random-init"
    assert (spec.weights_size, spec.weights_sha256) == (
        28_382_008, "56524913dd16a906422e8d8b66a7a5c46be1d82eb7ac012d8103776f1aa68899")


def test_the_health_identity_flags_weights_a_record_calls_real_but_are_not_published(tmp_path):
    from cxr_model import read_identity

    (tmp_path / f"{MODEL_NAME}.weights.json").write_text('{"weights": "real", "sha256": "%s"}' % ("ab" * 32))
    identity = read_identity(str(tmp_path), name=MODEL_NAME)
    assert identity["weights"] == "provided" and identity["weights_sha256"] == "ab" * 32
    assert "unverified weights" in identity["warning"]
    shutil.copy(stand_in(), tmp_path)  # the stand-in's own marker wins over whatever the record says
    assert read_identity(str(tmp_path), name=MODEL_NAME)["weights"] == "random-init"
