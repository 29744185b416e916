"""Child processes of the local stack (moto server, model build, infer workers): start, wait for, stop."""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if the stack process dies, even by SIGKILL (Linux only)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def spawn(args: list[str], *, env: dict[str, str], cwd: Path, log: IO | None = None, nice: int = 0) -> subprocess.Popen:
    """Start a child in its own process group (so a terminal Ctrl-C reaches only the stack, which stops it in order),
    `nice` steps below the stack's CPU priority."""
    linux = sys.platform.startswith("linux")

    def prepare() -> None:
        if linux:
            _die_with_parent()
        if nice:
            os.nice(nice)

    return subprocess.Popen(args, env=env, cwd=str(cwd), stdout=log, stderr=subprocess.STDOUT if log else None,
                            start_new_session=True, preexec_fn=prepare if (linux or nice) else None)


def start_moto(host: str, port: int, *, env: dict[str, str], cwd: Path, log: IO | None) -> subprocess.Popen:
    return spawn([sys.executable, "-m", "cxr_local.moto_server", "-H", host, "-p", str(port)], env=env, cwd=cwd,
                 log=log)


def start_janitor(paths: list[Path], *, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """cxr_local.janitor: removes `paths` should this process die without stopping (parent-death signal)."""
    return spawn([sys.executable, "-m", "cxr_local.janitor", str(os.getpid()), *map(str, paths)], env=env, cwd=cwd)


def exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"


def wait_for_http(url: str, process: subprocess.Popen, timeout_s: float) -> None:
    """Poll url until it answers (any status), the process dies, or timeout_s passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[2] if len(process.args) > 2 else process.args} exited with "
                               f"code {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout_s:.0f}s") from None
            time.sleep(0.05)


def stop(process: subprocess.Popen | None, grace_s: float) -> int | None:
    """SIGTERM the child, wait up to grace_s, then SIGKILL it and the process group it may lead."""
    if process is None:
        return None
    if process.poll() is None:
        try:
            process.send_signal(signal.SIGTERM)
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()  # also when it was not started in a session of its own
    try:
        os.killpg(process.pid, signal.SIGKILL)  # leftovers of the group the child leads (its own children)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        return process.wait(5)
    except subprocess.TimeoutExpired:
        return None
