"""cxr_local.processes.spawn: children in their own session, optionally at a lower CPU priority."""
import os
import subprocess
import sys

from cxr_local.processes import spawn


def _child_report(tmp_path, **kwargs) -> list[int]:
    out = tmp_path / "out.txt"
    with open(out, "wb") as log:
        child = spawn([sys.executable, "-c", "import os; print(os.nice(0), os.getsid(0) == os.getpid())"],
                      env=dict(os.environ), cwd=tmp_path, log=log, **kwargs)
        assert child.wait(timeout=30) == 0
    niceness, own_session = out.read_text().split()
    return [int(niceness), own_session == "True"]


def test_a_child_runs_at_the_stack_priority_by_default(tmp_path):
    assert _child_report(tmp_path) == [os.nice(0), True]


def test_nice_lowers_the_child_priority_only(tmp_path):
    assert _child_report(tmp_path, nice=7) == [min(19, os.nice(0) + 7), True]
    assert os.nice(0) == int(subprocess.check_output([sys.executable, "-c", "import os; print(os.nice(0))"]))
