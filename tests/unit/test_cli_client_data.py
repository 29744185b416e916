"""`cxr jobs`, `cxr delete` and submit-dir's scoped manifest against a scripted HTTP server on loopback."""
from __future__ import annotations

import json

from cxr_cli import exit_codes
from cxr_cli.__main__ import main
from cxr_local.processes import free_port
from tests.unit.test_cli_client import JOB, RESULT, api, cxr  # noqa: F401 - api is a fixture

MODEL = {"name": "densenet121-res224-all", "weights_sha256": "a" * 64, "preprocess": "exact", "weights": "real",
         "engine": "onnxruntime", "model_id": "densenet121-res224-all@aaaa/exact"}
PAGE = {"jobs": [{"id": JOB, "status": "COMPLETED", "created_at": "2026-12-05T08:00:00.000Z",
                  "updated_at": "2026-12-05T08:00:01.000Z", "cached": False}], "next_cursor": None}


def serve_a_folder(api, tmp_path, model=MODEL):
    """A folder of one PNG; the server lists, reports `model`, and answers the upload with a cached result."""
    folder = tmp_path / "studies"
    folder.mkdir(exist_ok=True)
    (folder / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x01" * 32)
    api.script("GET", "/v1/jobs", (200, PAGE))
    api.script("GET", "/v1/ops/health", (200, {"status": "ok", "model": model}))
    api.script("POST", "/v1/jobs", (200, {"id": JOB, "status": "COMPLETED", "cached": True,
                                          "result": {**RESULT, "model": model}}))
    return folder


def uploads(api) -> int:
    return sum(1 for method, path, _, _ in api.requests if (method, path) == ("POST", "/v1/jobs"))


def test_jobs_lists_a_page_and_follows_the_cursor_with_all(api, capsys):
    second = {"jobs": [{**PAGE["jobs"][0], "id": "older-job"}], "next_cursor": None}
    api.script("GET", "/v1/jobs", (200, {**PAGE, "next_cursor": "c1"}), (200, second))
    assert cxr(api, "jobs", "--all", "--json", "--limit", "1", "--status", "COMPLETED") == exit_codes.OK
    listed = json.loads(capsys.readouterr().out)
    assert [job["id"] for job in listed["jobs"]] == [JOB, "older-job"] and listed["next_cursor"] is None
    queries = [path for method, path, _, _ in api.requests if method == "GET"]
    assert queries == ["/v1/jobs?limit=1&status=COMPLETED", "/v1/jobs?limit=1&cursor=c1&status=COMPLETED"]
    assert cxr(api, "jobs", "--limit", "101") == exit_codes.USAGE


def test_delete_erases_each_id_and_an_unknown_one_exits_5(api, capsys):
    api.script("DELETE", f"/v1/jobs/{JOB}", (204, {}), (404, {"error": "no job", "code": "JOB_NOT_FOUND"}))
    assert cxr(api, "delete", JOB) == exit_codes.OK
    assert f"deleted {JOB}" in capsys.readouterr().out
    assert cxr(api, "delete", JOB) == exit_codes.NOT_FOUND  # already gone: documented as 404
    assert "JOB_NOT_FOUND" in capsys.readouterr().err


def test_the_manifest_answers_again_only_for_the_same_server_and_model(api, tmp_path, capsys):
    folder = serve_a_folder(api, tmp_path)
    assert cxr(api, "submit-dir", str(folder), "--no-progress") == exit_codes.OK
    assert cxr(api, "submit-dir", str(folder), "--no-progress", "--json") == exit_codes.OK
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert rows[-1]["from_manifest"] and uploads(api) == 1  # same server, same model: from the manifest
    other_weights = {**MODEL, "weights_sha256": "b" * 64, "weights": "random-init"}
    api.script("GET", "/v1/ops/health", (200, {"status": "ok", "model": other_weights}))
    assert cxr(api, "submit-dir", str(folder), "--no-progress") == exit_codes.OK
    assert uploads(api) == 2  # the weights changed: sent again
    other_preprocess = {**MODEL, "preprocess": "fast"}
    api.script("GET", "/v1/ops/health", (200, {"status": "ok", "model": other_preprocess}))
    assert cxr(api, "submit-dir", str(folder), "--no-progress") == exit_codes.OK
    assert uploads(api) == 3
    scopes = [json.loads(line)["scope"] for line in (folder / ".cxr-manifest.jsonl").read_text().splitlines()]
    assert scopes[0] == {"endpoint": api.url, "model": {"name": MODEL["name"], "weights_sha256": "a" * 64,
                                                        "preprocess": "exact"}}


def test_another_server_does_not_reuse_the_manifest(api, tmp_path):
    folder = serve_a_folder(api, tmp_path)
    assert cxr(api, "submit-dir", str(folder), "--no-progress") == exit_codes.OK
    assert main(["submit-dir", str(folder), "--no-progress", "--endpoint", api.url.replace("127.0.0.1", "localhost")
                 ]) == exit_codes.OK
    assert uploads(api) == 2  # the same machine under another name is another endpoint: sent again


def test_a_wrong_key_fails_the_run_even_when_every_file_is_in_the_manifest(api, tmp_path, capsys):
    folder = serve_a_folder(api, tmp_path)
    assert cxr(api, "submit-dir", str(folder), "--no-progress") == exit_codes.OK
    capsys.readouterr()
    api.script("GET", "/v1/jobs", (401, {"error": "unknown or revoked API key", "code": "UNAUTHORIZED"}))
    assert cxr(api, "submit-dir", str(folder), "--no-progress", "--api-key", "wrong") == exit_codes.API_ERROR
    captured = capsys.readouterr()
    assert "401 UNAUTHORIZED" in captured.err and "no earlier answer was used" in captured.err
    assert captured.out == "" and uploads(api) == 1


def test_an_unreachable_server_fails_the_run_even_when_every_file_is_in_the_manifest(api, tmp_path, capsys):
    folder = serve_a_folder(api, tmp_path)
    assert cxr(api, "submit-dir", str(folder), "--no-progress") == exit_codes.OK
    capsys.readouterr()
    dead = f"http://127.0.0.1:{free_port()}"
    manifest = folder / ".cxr-manifest.jsonl"
    manifest.write_text(manifest.read_text().replace(api.url, dead))  # as if that server had answered before
    assert main(["submit-dir", str(folder), "--no-progress", "--endpoint", dead]) == exit_codes.API_ERROR
    captured = capsys.readouterr()
    assert "cannot reach" in captured.err and captured.out == ""


def test_a_server_that_names_no_model_is_refused(api, tmp_path, capsys):
    folder = serve_a_folder(api, tmp_path, model={"name": "densenet121-res224-all"})
    assert cxr(api, "submit-dir", str(folder), "--no-progress") == exit_codes.API_ERROR
    assert "weights_sha256" in capsys.readouterr().err and uploads(api) == 0
