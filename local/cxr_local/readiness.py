"""The stack's readiness wait: GET /v1/ops/health once, GET /v1/ops/ready until it answers."""
from __future__ import annotations

import time
import urllib.error
import urllib.request

READY_TIMEOUT_S = 60.0


def get_status(url: str, headers: dict[str, str]) -> int:
    return _get(url, headers)[0]


def _get(url: str, headers: dict[str, str]) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except OSError as error:
        return 0, str(error)


def wait_ready(url: str, headers: dict[str, str], timeout_s: float = READY_TIMEOUT_S) -> int:
    """Until GET /v1/ops/ready says the tables, bucket, queues and model answer; a stack that never gets there
    does not start. 401/403 (an auth mode the stack holds no operator credential for) cannot be checked here."""
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = _get(url, headers)
        if status in (200, 401, 403):
            return status
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {timeout_s:.0f}s: GET /v1/ops/ready answered {status} {body[:2000]}")
        time.sleep(0.2)
