"""Issue 8: the `cxr` command line against the running local stack, over real HTTP, as a script would call it."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import uuid

import pytest

from .clients_samples import unique_copy
from .conftest import COMPLETION_SLA_S

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROW = re.compile(r"^\s*(\d+)\s+(\S.*?)\s+(\d\.\d{3})\s+(positive|negative)\b")
LABEL_COUNT = 18


@pytest.fixture(scope="module")
def cli(local_stack):
    """Run `python -m cxr_cli ARGS` the way a script would: endpoint and key from the environment."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CXR_")}
    env.update(CXR_ENDPOINT=local_stack.base_url, PYTHONIOENCODING="utf-8")
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
    result = http.get(f"{local_stack.base_url}/v1/jobs/{job_id}/result", headers=headers, timeout=10).json()
    expected = sorted(result["output"].items(), key=lambda item: (-item[1], item[0]))
    assert [label for _, label, *_ in rows] == [label for label, _ in expected]
    assert rows[0][1] == result["top_label"]
    assert [score for *_, score, _ in rows] == [round(score, 3) for _, score in expected]
    assert f"top label: {result['top_label']}" in run.stdout


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

    run = cli("submit-dir", str(folder), "--timeout", str(COMPLETION_SLA_S))
    assert run.returncode == 0, (run.stdout, run.stderr)
    assert re.search(r"\[#+\] 3/3 done", run.stderr), run.stderr  # the progress bar, on stderr only
    lines = run.stdout.splitlines()
    assert lines[0].split()[:3] == ["file", "status", "top"] and set(lines[1]) <= {"-", " "}
    body = {line.split()[0]: line for line in lines[2:2 + len(names)]}
    assert sorted(body) == sorted(names) and all("COMPLETED" in line for line in body.values()), run.stdout
    assert "notes.txt" not in run.stdout and "WARNING: random-init" in run.stdout
    job_ids = {name: line.split()[-1] for name, line in body.items()}
    assert len(set(job_ids.values())) == len(names), f"different images uploaded at once share a job: {job_ids}"

    again = cli("submit-dir", str(folder), "--json", "--no-progress")
    assert again.returncode == 0 and again.stderr == "", again.stderr
    records = [json.loads(line) for line in again.stdout.splitlines()]
    assert sorted(r["file"] for r in records) == sorted(names)
    assert all(r["cached"] and len(r["result"]["output"]) == LABEL_COUNT for r in records), records


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
