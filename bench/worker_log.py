"""What the infer workers' log says: completions with their times, batch sizes, a live completion count."""
from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

_COMPLETED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ \S+ INFO job (\S+) completed")
_COMPLETED_LINE = re.compile(rb" INFO job \S+ completed(?: \(delivery \d+\))?\n")


def completions(worker_log: Path) -> list[tuple[float, str]]:
    """(epoch seconds, job id) of every `job ... completed` line the infer workers logged."""
    found = []
    if not worker_log.exists():
        return found
    with open(worker_log, errors="replace") as handle:
        for line in handle:
            match = _COMPLETED.match(line)
            if match:
                stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
                found.append((stamp.timestamp(), match.group(2)))  # the worker logs local time
    return found


def batch_sizes(worker_log: Path) -> list[int]:
    """BatchSize of every non-empty batch, from the workers' EMF lines."""
    sizes = []
    if worker_log.exists():
        for line in worker_log.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"BatchSize"' in line:
                try:
                    size = int(json.loads(line)["BatchSize"][0])
                except (ValueError, KeyError, IndexError, TypeError):
                    continue
                if size:
                    sizes.append(size)
    return sizes


class CompletionTail:
    """Counts `job ... completed` lines in the worker log as they appear (no load on the stack)."""

    def __init__(self, worker_log: Path) -> None:
        self.path, self.offset, self.count = worker_log, 0, 0

    def poll(self) -> int:
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        complete = chunk.rfind(b"\n") + 1
        self.offset += complete
        self.count += len(_COMPLETED_LINE.findall(chunk[:complete]))
        return self.count
