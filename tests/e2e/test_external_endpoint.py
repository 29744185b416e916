"""`python -m cxr_local --aws-endpoint URL`: a separately started moto server plays LocalStack; the stack creates
the template's resources there, runs the API and a worker on them, and a second start finds them and the data."""
from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from tests.e2e.conftest import REPO, XRAYS, start_stack, wait_for_terminal_status
from tests.integration.conftest import running_moto

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_resources_are_created_once_and_data_outlives_a_restart(tmp_path):
    with running_moto() as (_, endpoint):
        first = start_stack(tmp_path / "first", "--aws-endpoint", endpoint, "--no-build", workers=1)
        try:
            assert first.moto_endpoint == endpoint and first.info["resources_created"] is True
            assert "moto" not in first.info.get("logs", {})  # no embedded moto was started
            with requests.Session() as http:
                http.headers.update(first.auth_headers)
                with open(XRAYS / "00000001_000.png", "rb") as image:
                    created = http.post(f"{first.url}/v1/jobs", files={"image": image}, timeout=60)
                assert created.status_code in (200, 201), created.text
                job_id = created.json()["id"]
                done, _ = wait_for_terminal_status(http, first.url, job_id)
                assert done["status"] == "COMPLETED"
        finally:
            assert first.stop() == 0, first.log_tail()

        second = start_stack(tmp_path / "second", "--aws-endpoint", endpoint, "--no-build", workers=0)
        try:
            assert second.info["resources_created"] is False
            assert "found the template's" in second.log_path.read_text()
            with requests.Session() as http:
                http.headers.update(second.auth_headers)
                job = http.get(f"{second.url}/v1/jobs/{job_id}", timeout=30)
                assert job.status_code == 200 and job.json()["status"] == "COMPLETED"
                result = http.get(f"{second.url}/v1/jobs/{job_id}/result", timeout=30)
                assert result.status_code == 200 and len(result.json()["output"]) == 18
        finally:
            assert second.stop() == 0, second.log_tail()


def test_real_aws_is_refused_before_anything_starts(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cxr_local", "--aws-endpoint", "https://sqs.us-east-1.amazonaws.com",
                           "--port", "0", "--no-build", "--ready-file", str(tmp_path / "ready.json")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "refusing to create resources on real AWS" in done.stdout + done.stderr
    assert not (tmp_path / "ready.json").exists()
