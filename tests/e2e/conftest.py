"""A whole local stack (`python -m cxr_local`) on free ports for the session, and helpers to drive it over HTTP."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests

from cxr_local.launcher import StackProcess, launch_stack
from cxr_local.waiting import wait_until
from tests.model_support import built_model_dir

REPO = Path(__file__).resolve().parents[2]
XRAYS = Path(os.environ.get("CXR_XRAYS_DIR", REPO.parent / "shared" / "data" / "xrays"))
COMPLETION_SLA_S = float(os.environ.get("CXR_E2E_SLA_S", "60"))  # upload -> COMPLETED, incl. a worker's model load
POLL_INTERVAL_S = 0.1  # what a seed-platform client does


def start_stack(tmp_dir: Path, *extra_args: str, workers: int = 1, new_session: bool = False) -> StackProcess:
    """`python -m cxr_local` on free ports, serving the tests' model artifacts; ready and healthy when returned.
    new_session: in a process group of its own (that a test may signal as a whole)."""
    return launch_stack(tmp_dir, "--model-dir", built_model_dir(), *extra_args, workers=workers,
                        new_session=new_session)


def _stack_fixture(tmp_path_factory):
    stack = start_stack(tmp_path_factory.mktemp("cxr_local"), workers=int(os.environ.get("CXR_E2E_WORKERS", "1")))
    yield stack
    code = stack.stop()
    assert code == 0, f"local stack exited with {code}:\n{stack.log_tail()}"


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory) -> StackProcess:
    """One stack shared by the e2e session: do not assume an empty cache or idle workers on it."""
    yield from _stack_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def fresh_stack(tmp_path_factory) -> StackProcess:
    """A stack of the module's own, for tests whose expectations need an empty cache.

    A module opts in by overriding local_stack with it (see test_e2e_core.py), so `http` and every other
    fixture built on local_stack use it too."""
    yield from _stack_fixture(tmp_path_factory)


@pytest.fixture
def base_url(local_stack) -> str:
    return local_stack.url


@pytest.fixture
def http(local_stack):
    """A client of the local stack, authenticated with the operator key it registered."""
    with requests.Session() as session:
        session.headers.update(local_stack.auth_headers)
        yield session


def wait_for_terminal_status(http: requests.Session, base_url: str, job_id: str,
                             sla_s: float = COMPLETION_SLA_S) -> tuple[dict, float]:
    """Poll GET /v1/jobs/{id} every 100 ms until COMPLETED or FAILED; fail the test past sla_s."""
    started, seen, last = time.monotonic(), [], {}

    def final() -> dict | None:
        response = http.get(f"{base_url}/v1/jobs/{job_id}", timeout=10)
        assert response.status_code == 200, (response.status_code, response.text)
        last.update(response.json())
        if not seen or seen[-1] != last["status"]:
            seen.append(last["status"])
        return dict(last) if last["status"] in ("COMPLETED", "FAILED") else None

    body = wait_until(final, sla_s, interval_s=POLL_INTERVAL_S,
                      what=lambda: f"job {job_id} done; statuses seen: {seen}; last: {last}")
    return body, time.monotonic() - started


def assert_json_error(response: requests.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("code"), str) and body["code"].isupper(), body
    if code is not None:
        assert body["code"] == code, body
    return body
