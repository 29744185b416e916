"""GET /v1/jobs/{id}?wait=N over real HTTP on the local stack: it answers when the job is final, or after N s."""
from __future__ import annotations

import time
import uuid

import pytest

from tests.images import perturbed_png

from .conftest import assert_json_error

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _submit(http, base_url) -> str:
    image = perturbed_png(int(time.time() * 1000) % 10**9)
    created = http.post(f"{base_url}/v1/jobs", data=image, headers={"Content-Type": "image/png"}, timeout=30)
    assert created.status_code == 201, created.text
    return created.json()["id"]


def test_a_long_poll_answers_as_soon_as_the_job_is_final(http, base_url):
    job_id = _submit(http, base_url)
    started = time.monotonic()
    response = http.get(f"{base_url}/v1/jobs/{job_id}", params={"wait": 20}, timeout=30)
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and response.json()["status"] == "COMPLETED", response.text
    assert elapsed < 15, f"the long poll held on for {elapsed:.1f}s after the job finished"
    again = time.monotonic()
    assert http.get(f"{base_url}/v1/jobs/{job_id}", params={"wait": 20}, timeout=30).json()["status"] == "COMPLETED"
    assert time.monotonic() - again < 2  # final already: no wait at all


def test_a_short_wait_answers_with_the_current_state(http, base_url):
    job_id = _submit(http, base_url)
    started = time.monotonic()
    body = http.get(f"{base_url}/v1/jobs/{job_id}", params={"wait": 0.3}, timeout=30).json()
    assert body["status"] in ("QUEUED", "IN_PROGRESS", "COMPLETED") and time.monotonic() - started < 3
    plain = http.get(f"{base_url}/v1/jobs/{job_id}", timeout=30)  # the seed's clients: no wait, as before
    assert plain.status_code == 200 and set(plain.json()) >= {"id", "status", "created_at", "updated_at"}


@pytest.mark.parametrize("wait", ["0", "21", "abc", "-3"])
def test_an_invalid_wait_is_a_400_json_error(http, base_url, wait):
    job_id = str(uuid.uuid4())  # the parameter is checked before the job is looked up
    assert_json_error(http.get(f"{base_url}/v1/jobs/{job_id}", params={"wait": wait}, timeout=30), 400, "BAD_REQUEST")
