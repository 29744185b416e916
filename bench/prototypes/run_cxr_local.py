"""Scratch launcher for measuring prototype fixes to code the bench does not own: `python -m cxr_local` with them.

Usage: bench/bench_load.py --launcher bench/prototypes/run_cxr_local.py   (the same for the other benches)
PROTO_FIXES (comma list, default "motofasttx"):
  motofasttx     moto's TransactWriteItems snapshots the touched items, not deep copies of whole tables
  submitoverlap  the submit path's independent AWS calls overlap (site/sitecustomize.py, in every child process)
(The earlier "threadlocal" prototype - powertools' process-global current event - is obsolete: cxr_local now runs
each HTTP function instance in its own process, commit 7790045.)
"""
import os
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
FIXES = set(filter(None, os.environ.get("PROTO_FIXES", "motofasttx").split(",")))

if "submitoverlap" in FIXES:  # the function sandboxes are spawned processes: reach them through PYTHONPATH
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE / "site"), os.environ.get("PYTHONPATH")]))
if "motofasttx" in FIXES:
    from cxr_local import processes

    def start_moto(host, port, *, env, cwd, log):
        return processes.spawn([sys.executable, str(HERE / "moto_fast_tx.py"), "-H", host, "-p", str(port)],
                               env=env, cwd=cwd, log=log)

    processes.start_moto = start_moto

sys.argv[0] = "cxr_local"
runpy.run_module("cxr_local", run_name="__main__", alter_sys=True)
