"""Issue 8: the `cxr` command line against the running local stack, over real HTTP, as a script would call it."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid

import pytest

from cxr_local.waiting import wait_until

from .clients_samples import clinical_size_dicom, unique_copy
from .conftest import COMPLETION_SLA_S

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROW = re.compile(r"^\s*(\d+)\s+(\S.*?)\s+(\d\.\d{3})\s+(positive|negative)\b")
LABEL_COUNT = 18


@pytest.fixture(scope="module")
def cli(local_stack):
    """Run `python -m cxr_cli ARGS` the way a script would: endpoint and key from the environment."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CXR_")}
    env.update(CXR_ENDPOINT=local_stack.url, PYTHONIOENCODING="utf-8")
    if local_stack.info.get("api_key"):  # the stack registers an operator key when the template wants auth
        env["CXR_API_KEY"] = local_stack.info["api_key"]

    def run(*args: str, timeout: float = COMPLETION_SLA_S * 3) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cxr_cli", *args], capture_output=True, text=True,
                              encoding="utf-8", env=env, timeout=timeout)
    return run


def table_rows(stdout: str) -> list[tuple[int, str, float, str]]:
    return [(int(m[1]), m[2], float(m[3]), m[4]) for m in map(ROW.match, stdout.splitlines()) if m]


def test_submit_wait_prints_the_sorted_scores_with_decisions_and_the_warning(cli, local_stack, http, tmp_path):
    image = unique_copy("00000001_000.png", tmp_path)
    run = cli("submit", str(image), "--wait", "--timeout", str(COMPLETION_SLA_S))
    assert run.returncode == 0, (run.returncode, run.stdout, run.stderr)

    job_id = re.search(r"job ([0-9a-f-]{36}) COMPLETED", run.stdout)[1]
    assert "(cached)" not in run.stdout.splitlines()[0]  # a byte-unique copy: the worker really ran
    assert "WARNING: random-init weights: NOT FOR CLINICAL USE" in run.stdout
    rows = table_rows(run.stdout)
    assert [rank for rank, *_ in rows] == list(range(1, LABEL_COUNT + 1)), run.stdout
    assert all(decision == ("positive" if score >= 0.5 else "negative") for _, _, score, decision in rows)

    headers = {"x-api-key": local_stack.info["api_key"]} if local_stack.info.get("api_key") else {}
    result = http.get(f"{local_stack.url}/v1/jobs/{job_id}/result", headers=headers, timeout=10).json()
    expected = sorted(result["output"].items(), key=lambda item: (-item[1], item[0]))
    assert [label for _, label, *_ in rows] == [label for label, _ in expected]
    assert rows[0][1] == result["top_label"]
    assert [score for *_, score, _ in rows] == [round(score, 3) for _, score in expected]
    assert f"top label: {result['top_label']}" in run.stdout
    assert result["model"]["intended_use"] in run.stdout  # the service's one wording of intended use


def test_heatmap_saves_a_png_overlay_and_json_prints_the_grid(cli, tmp_path):
    from PIL import Image

    record = json.loads(cli("submit", str(unique_copy("00027426_000.png", tmp_path)), "--wait", "--json").stdout)
    out = tmp_path / "heat.png"
    run = cli("heatmap", record["id"], "-o", str(out))
    assert run.returncode == 0, (run.stdout, run.stderr)
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (224, 224) and image.mode == "RGB"
    other = min(record["result"]["output"], key=record["result"]["output"].get)  # the lowest-scored finding
    grid = json.loads(cli("heatmap", record["id"], "--label", other, "--json").stdout)
    assert grid["label"] == other and len(grid["grid"]) == 7 and all(len(row) == 7 for row in grid["grid"])
    unknown = cli("heatmap", record["id"], "--label", "Dragons", "-o", str(tmp_path / "x.png"))
    assert unknown.returncode != 0 and "400" in unknown.stderr and record["result"]["top_label"] in unknown.stderr
    assert not (tmp_path / "x.png").exists()
    assert cli("heatmap", record["id"]).returncode == 2  # neither -o nor --json: a usage error


def test_json_output_parses_and_status_result_agree(cli, tmp_path):
    image = unique_copy("16747_3_1.jpg", tmp_path)
    run = cli("submit", str(image), "--wait", "--json")
    assert run.returncode == 0, (run.stdout, run.stderr)
    record = json.loads(run.stdout)
    assert record["status"] == "COMPLETED" and record["cached"] is False and record["exit_code"] == 0
    assert len(record["result"]["output"]) == LABEL_COUNT and record["result"]["model"]["weights"] == "random-init"

    status = cli("status", record["id"], "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["status"] == "COMPLETED"
    result = cli("result", record["id"], "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == record["result"]
    human = cli("status", record["id"])
    assert human.returncode == 0 and re.search(r"^status:\s+COMPLETED$", human.stdout, re.M), human.stdout

    again = cli("submit", str(image), "--json")  # no --wait needed: a cache hit carries its result
    assert again.returncode == 0, again.stderr
    hit = json.loads(again.stdout)
    assert hit["cached"] is True and hit["result"]["output"] == record["result"]["output"]


def test_unknown_job_id_exits_5(cli):
    unknown = str(uuid.uuid4())
    for command in ("status", "result"):
        run = cli(command, unknown)
        assert run.returncode == 5, (command, run.returncode, run.stdout, run.stderr)
        assert "JOB_NOT_FOUND" in run.stderr and run.stdout == ""


def test_submit_dir_shows_progress_then_a_summary_and_json_on_the_second_run(cli, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    names = ["00000001_000.png", "16747_3_1.jpg", "siim_pneumothorax_sample.dcm"]
    for name in names:
        unique_copy(name, folder)
    (folder / "notes.txt").write_text("not an image; submit-dir skips it")
    (folder / "empty.png").write_bytes(b"")  # a bad file fails only itself

    run = cli("submit-dir", str(folder), "--timeout", str(COMPLETION_SLA_S))
    assert run.returncode == 2, (run.stdout, run.stderr)  # the empty file's local error, the largest code
    assert re.search(r"\[#+\] 4/4 done, 1 failed", run.stderr), run.stderr  # the progress bar, on stderr only
    assert "skipped notes.txt: not a PNG, JPEG or DICOM file" in run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split()[:3] == ["file", "status", "top"] and set(lines[1]) <= {"-", " "}
    body = {line.split()[0]: line for line in lines[2:7]}
    assert sorted(body) == sorted([*names, "notes.txt", "empty.png"]), run.stdout
    assert all("COMPLETED" in body[name] for name in names) and "SKIPPED" in body["notes.txt"]
    assert "ERROR" in body["empty.png"] and "WARNING: random-init" in run.stdout
    assert re.search(r"completed\s+cached\s+failed\s+skipped\n\s+3\s+0\s+1\s+1", run.stdout), run.stdout
    job_ids = {name: body[name].split()[-1] for name in names}
    assert len(set(job_ids.values())) == len(names), f"different images uploaded at once share a job: {job_ids}"

    (folder / "empty.png").unlink()
    again = cli("submit-dir", str(folder), "--json", "--no-progress", "--manifest", str(tmp_path / "other.jsonl"))
    assert again.returncode == 0 and again.stderr == "", again.stderr
    records = [json.loads(line) for line in again.stdout.splitlines()]
    assert sorted(r["file"] for r in records) == sorted([*names, "notes.txt"])
    images = [r for r in records if r["file"] != "notes.txt"]
    assert all(r["cached"] and len(r["result"]["output"]) == LABEL_COUNT for r in images), records


def test_submit_dir_resumes_after_an_interrupt_and_writes_csv(cli, local_stack, tmp_path):
    """Ctrl-C part-way; the rerun uploads only what the manifest does not hold as COMPLETED."""
    folder = tmp_path / "study"
    (folder / "series").mkdir(parents=True)
    names = ["00000001_000.png", "00027426_000.png", "16747_3_1.jpg"] * 3  # enough that Ctrl-C lands part-way
    for index, name in enumerate(names):
        unique_copy(name, folder, f"{index}_{name}")
    unique_copy("siim_pneumothorax_sample.dcm", folder / "series", "IM0001")  # DICOM without an extension
    unique_copy("siim_pneumothorax_sample.dcm", folder, "DICOMDIR")
    sr = folder / "series" / "SR0001"  # a DICOM object without pixel data (e.g. a structured report)
    sr.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x04\x001.2\x00")
    env = {key: value for key, value in os.environ.items() if not key.startswith("CXR_")}
    env.update(CXR_ENDPOINT=local_stack.url, CXR_API_KEY=local_stack.info.get("api_key") or "")
    manifest = folder / ".cxr-manifest.jsonl"
    first = subprocess.Popen([sys.executable, "-m", "cxr_cli", "submit-dir", str(folder), "-r", "--concurrency", "1",
                              "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             # a shell running the suite in the background ignores SIGINT, and children inherit that
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_until(lambda: manifest.exists() and manifest.read_text().count("\n") >= 1, COMPLETION_SLA_S,
               what="the first file in the manifest")
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=30)
    assert first.returncode == 130 and "resume" in err, (first.returncode, out, err)
    done_before = {json.loads(line)["file"] for line in manifest.read_text().splitlines()}
    assert 1 <= len(done_before) < len(names) + 1, done_before

    rerun = cli("submit-dir", str(folder), "-r", "--format", "csv", "--timeout", str(COMPLETION_SLA_S))
    assert rerun.returncode == 0, (rerun.stdout, rerun.stderr)
    rows = list(csv.DictReader(io.StringIO(rerun.stdout)))
    by_file = {row["file"]: row for row in rows}
    assert sorted(by_file) == sorted([*(f"{i}_{n}" for i, n in enumerate(names)), "series/IM0001", "DICOMDIR",
                                      "series/SR0001"])
    assert by_file["DICOMDIR"]["status"] == by_file["series/SR0001"]["status"] == "SKIPPED"
    scored = [row for row in rows if row["status"] == "COMPLETED"]
    assert len(scored) == len(names) + 1 and all(row["model_weights"] == "random-init" for row in scored)
    labels = [name for name in rows[0] if name not in ("file", "status", "cached", "job_id", "sha256", "error",
                                                        "top_label") and not name.startswith("model_")]
    assert len(labels) == LABEL_COUNT and all(float(row[label]) >= 0 for row in scored for label in labels)
    assert "skipped DICOMDIR: DICOM without pixel data" in rerun.stderr
    summary = re.search(r"completed\s+cached\s+failed\s+skipped\n\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", rerun.stderr)
    completed, cached, failed, skipped = map(int, summary.groups())  # a job in flight at Ctrl-C may come back cached
    assert (completed + cached, failed, skipped) == (len(names) + 1, 0, 2), rerun.stderr
    assert f"({len(done_before)} answered from the manifest" in rerun.stderr
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(lines) == len(names) + 1 == len({line["sha256"] for line in lines}), "a file was uploaded twice"


def test_a_clinical_size_dicom_takes_the_presigned_path_unasked(cli, tmp_path):
    big = clinical_size_dicom(tmp_path)  # 15 MB: over API Gateway's 10 MB and Lambda's 6 MB
    run = cli("submit", str(big), "--wait", "--json", "--timeout", str(COMPLETION_SLA_S))
    assert run.returncode == 0, (run.stdout, run.stderr)
    record = json.loads(run.stdout)
    assert record["status"] == "COMPLETED" and len(record["result"]["output"]) == LABEL_COUNT
    assert re.search(r"upload: \[#+\] 15\.0 MB/15\.0 MB uploaded", run.stderr), run.stderr


def test_local_file_and_api_errors_have_their_exit_codes(cli, tmp_path):
    missing = cli("submit", str(tmp_path / "absent.png"))
    assert missing.returncode == 2 and "no such file" in missing.stderr

    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("hello")
    assert cli("submit", str(not_an_image)).returncode == 2

    disguised = tmp_path / "fake.png"  # the extension vouches for it, so the server decides from the bytes: 415
    disguised.write_text("hello")
    rejected = cli("submit", str(disguised))
    assert rejected.returncode == 3 and "415 UNSUPPORTED_MEDIA_TYPE" in rejected.stderr, rejected.stderr

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    unreachable = cli("status", str(uuid.uuid4()), "--endpoint", f"http://127.0.0.1:{port}")
    assert unreachable.returncode == 3 and "cannot reach" in unreachable.stderr

    usage = cli("submit")
    assert usage.returncode == 2 and "usage:" in usage.stderr
