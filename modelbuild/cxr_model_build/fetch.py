"""HTTP(S) download of a weights file: bounded start, a progress bar, and a .part file that the next attempt resumes."""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

START_DEADLINE_S = 10.0  # name resolution + connect + TLS + redirects + response headers, all together
READ_TIMEOUT_S = 30.0  # longest silence once the body flows
CHUNK_BYTES = 1 << 16


class FetchError(RuntimeError):
    """The file could not be fetched now; a partial .part file may be left for the next attempt to resume."""


def _start(url: str, headers: dict[str, str], deadline_s: float):
    """requests.get(stream=True) under one deadline. Socket timeouts do not bound getaddrinfo, which waits for
    every configured resolver in turn (30 s and more) on a machine whose DNS server is unreachable."""
    import requests

    box: dict = {}

    def attempt() -> None:
        try:
            box["response"] = requests.get(url, headers=headers, stream=True, timeout=(deadline_s, READ_TIMEOUT_S))
        except Exception as exc:  # noqa: BLE001 - reported to the caller below
            box["error"] = exc

    thread = threading.Thread(target=attempt, name="weights-fetch", daemon=True)
    thread.start()
    thread.join(deadline_s)
    if thread.is_alive():
        raise FetchError(f"no answer from {url} within {deadline_s:.0f} s (offline, or no route to the host?)")
    if "error" in box:
        error = box["error"]
        # requests wraps urllib3's MaxRetryError, whose .reason says what failed (DNS, refused, timeout)
        reason = getattr(error.args[0], "reason", error) if error.args else error
        raise FetchError(f"cannot reach {url}: {reason}")
    return box["response"]


class Progress:
    """One redrawn line on a terminal; a line per 10 % elsewhere (logs, CI), so neither floods."""

    def __init__(self, total: int | None, done: int, out: TextIO):
        self.total, self.done, self.out = total, done, out
        self.started, self.start_bytes, self.drawn = time.monotonic(), done, -1.0
        self.tty = hasattr(out, "isatty") and out.isatty()

    def update(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.tty and now - self.drawn >= 0.1:
            self.drawn = now
            self.out.write("\r" + self.line())
        elif not self.tty and self.total and int(10 * self.done / self.total) > int(10 * (self.done - count) / self.total):
            self.out.write(self.line() + "\n")
        self.out.flush()

    def finish(self) -> None:
        if self.tty:
            self.out.write("\r" + self.line() + "\n")
            self.out.flush()

    def line(self) -> str:
        rate = (self.done - self.start_bytes) / max(time.monotonic() - self.started, 1e-3) / 1e6
        if not self.total:
            return f"  {self.done / 1e6:6.1f} MB  {rate:5.1f} MB/s"
        filled = int(30 * min(self.done / self.total, 1.0))
        return (f"  [{'#' * filled}{'.' * (30 - filled)}] {100 * self.done / self.total:3.0f}%  "
                f"{self.done / 1e6:.1f}/{self.total / 1e6:.1f} MB  {rate:5.1f} MB/s")


def download(url: str, part: str, expected_size: int | None = None, out: TextIO = sys.stderr,
             deadline_s: float | None = None) -> None:
    """Append the rest of `url` to `part` (a Range request resumes an earlier attempt's bytes).

    A server that announces another size than expected gets the part file deleted; a transfer that breaks off
    keeps it, so running the build again resumes. The caller verifies the finished file's hash.
    """
    import requests

    offset = os.path.getsize(part) if os.path.exists(part) else 0
    if expected_size is not None and offset >= expected_size:
        if offset == expected_size:
            return  # an earlier attempt finished; the caller's verification decides
        os.remove(part)
        offset = 0
    response = _start(url, {"Range": f"bytes={offset}-"} if offset else {},
                      START_DEADLINE_S if deadline_s is None else deadline_s)
    with response:
        if response.status_code == 416:  # the part file does not fit what the server has: start over once
            os.remove(part)
            return download(url, part, expected_size, out, deadline_s)
        if response.status_code >= 400:
            raise FetchError(f"{url} answered HTTP {response.status_code}")
        if response.status_code != 206:
            offset = 0  # no resume from this server: it sends the whole file
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length else expected_size
        if expected_size is not None and total != expected_size:
            if os.path.exists(part):
                os.remove(part)
            raise FetchError(f"{url} announces {total} bytes, the published file has {expected_size}: refused")
        progress = Progress(total, offset, out)
        with open(part, "ab" if offset else "wb") as handle:
            try:
                for chunk in response.iter_content(CHUNK_BYTES):
                    handle.write(chunk)
                    progress.update(len(chunk))
            except requests.RequestException as exc:
                progress.finish()
                raise FetchError(f"download interrupted after {progress.done} of {total} bytes ({exc}); "
                                 "run the build again to resume") from exc
        progress.finish()
