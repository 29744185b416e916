"""py-spy samples of running processes, and what they say: the functions with the most samples."""
from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.harness import REPO

PY_SPY = Path(sys.executable).with_name("py-spy")
_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def record(targets: list[tuple[str, int]], seconds: float, out: Path, rate: int = 67) -> list[subprocess.Popen]:
    """Start py-spy on each (name, pid) for `seconds`, collapsed stacks to out/<name>.txt; wait() the result.
    --gil (only the thread holding the GIL) for all but the infer workers: py-spy's idle detection counts threads
    blocked in socket reads as busy in this container; workers spend most of their time in ONNX, outside the GIL."""
    out.mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen([str(PY_SPY), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate",
                              str(rate), "--format", "raw", "--nonblocking", "--threads",
                              *([] if name.startswith("worker") else ["--gil"]), "--output", str(out / f"{name}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for name, pid in targets]


def frame_name(frame: str) -> str:
    """'submit_image (cxr_core/services/submit.py:71)' -> 'submit_image (cxr_core/services/submit.py)'."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match.group("file")
    for marker in ("site-packages/", "python3.11/", f"{REPO}/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match.group('func')} ({path})"


def aggregate(collapsed: Path) -> tuple[int, Counter, Counter]:
    """Total samples, inclusive samples per function (once per stack), self samples per function."""
    total, inclusive, own = 0, Counter(), Counter()
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        frames = [frame_name(f) for f in stack.split(";")[1:]]  # the first entry names the thread
        total += samples
        for name in set(frames):
            inclusive[name] += samples
        if frames:
            own[frames[-1]] += samples
    return total, inclusive, own


def print_top(out: Path, names: list[str], top: int = 25) -> None:
    for name in names:
        collapsed = out / f"{name}.txt"
        if not collapsed.exists():
            print(f"\n{name}: no samples (py-spy could not attach)")
            continue
        total, inclusive, own = aggregate(collapsed)
        print(f"\n== {name}: {total} on-CPU samples; inclusive (share of samples) ==")
        for func, count in inclusive.most_common(top):
            print(f"  {100 * count / max(total, 1):5.1f}%  {func}")
        print("  -- self --")
        for func, count in own.most_common(12):
            print(f"  {100 * count / max(total, 1):5.1f}%  {func}")
