"""Issue 25 item 7 against a stack with no workers (jobs stay QUEUED): a burst of long polls from one client is
capped per client (429 + Retry-After) and no long poll is answered later than its wait plus a small margin."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.images import perturbed_png

from .conftest import start_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
WAIT_S, MARGIN_S, BURST = 20, 3.0, 30  # the longest wait: time for the 8 waiting environments to start


@pytest.fixture(scope="module")
def idle_stack(tmp_path_factory):
    stack = start_stack(tmp_path_factory.mktemp("idle"), workers=0)
    yield stack
    assert stack.stop() == 0


def test_a_burst_of_long_polls_is_capped_per_client_and_none_waits_past_its_wait(idle_stack):
    headers = {"Content-Type": "image/png", **idle_stack.auth_headers}
    job = requests.post(f"{idle_stack.url}/v1/jobs", data=perturbed_png(2504), headers=headers, timeout=60)
    assert job.status_code == 201, job.text
    url = f"{idle_stack.url}/v1/jobs/{job.json()['id']}?wait={WAIT_S}"

    def poll(_):
        began = time.monotonic()
        response = requests.get(url, headers=idle_stack.auth_headers, timeout=60)
        return response.status_code, response.headers.get("Retry-After"), time.monotonic() - began

    with ThreadPoolExecutor(BURST) as pool:
        answers = list(pool.map(poll, range(BURST)))
    statuses = [status for status, _, _ in answers]
    # past the client's 4 waiting polls the function answers 429; polls that found no environment within their
    # wait were answered with the job's state (200) at once, never late
    assert set(statuses) <= {200, 429} and statuses.count(429) >= 1, answers
    assert all(retry and int(retry) >= 1 for status, retry, _ in answers if status == 429)
    assert max(elapsed for _, _, elapsed in answers) < WAIT_S + MARGIN_S, answers
