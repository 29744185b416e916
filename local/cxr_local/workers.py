"""The infer worker supervisor (`python -m cxr_worker`) as a child of the stack, restarted if it dies."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Callable

from . import processes

WORKER_COMMAND = [sys.executable, "-m", "cxr_worker"]


class InferWorkers:
    """The worker supervisor restarts its own processes; this restarts the supervisor itself should it exit."""

    def __init__(self, env: dict[str, str], cwd: Path, open_log: Callable[[], IO | None],
                 say: Callable[[str], None], nice: int = 0) -> None:
        self.env, self.cwd, self.open_log, self.say, self.nice = env, cwd, open_log, say, nice
        self.process: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self.process = self._spawn()
        # restarts are spawned from this thread, which lives as long as the stack (children die with it)
        self._watcher = threading.Thread(target=self._watch, name="infer-worker-watch", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            process = self.process
            if process is not None and process.poll() is not None:
                self.say(f"WARNING: infer worker exited with code {process.returncode}; restarting in 2s")
                if self._stopping.wait(2):
                    return
                self.process = self._spawn()

    def _spawn(self) -> subprocess.Popen:
        return processes.spawn(WORKER_COMMAND, env=self.env, cwd=self.cwd, log=self.open_log(), nice=self.nice)

    def stop(self, grace_s: float = 30) -> None:
        """SIGTERM: each worker finishes the batch in hand and settles its messages; SIGKILL after grace_s."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(5)
        processes.stop(self.process, grace_s=grace_s)
