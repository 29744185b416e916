"""The `cxr` console script the project installs, run as a process."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def test_the_cxr_console_script_is_installed_with_the_project():
    script = shutil.which("cxr", path=str(Path(sys.executable).parent))
    assert script, "no `cxr` next to the interpreter: run `pip install -e .` (pyproject's [project.scripts])"
    run = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "exit codes:" in run.stdout
