"""The seed's Locust scenario: upload an X-ray, poll GET /v1/jobs/{id} every 100 ms until COMPLETED.

cache_miss (a distinct image each time) : cache_hit (the same image again) = 7 : 3, 1-3 s between tasks.
Each finished task fires an "E2E" event (name cache_miss / cache_hit) with the time from upload to COMPLETED.

Standalone, from the repository root: BENCH_POOL_DIR=<folder of PNGs> BENCH_HIT_IMAGE=<png> python -m locust \
    -f bench/locustfile.py --headless -u 20 -r 20 -t 45s --host http://127.0.0.1:8080   (`python -m bench load`
    does all of this for you)
BENCH_API_KEY: sent as x-api-key. BENCH_SAMPLES_OUT=<file.json>: also write every raw sample there when the run stops.
BENCH_WAIT_SECONDS=N (issue 18): instead of polling every 100 ms, long-poll GET /v1/jobs/{id}?wait=N (no pause).
BENCH_CLIENT: `fast` (default) sends prebuilt multipart bodies through Locust's FastHttpUser (geventhttpclient);
`seed` is the seed platform's client as its locustfile is described (issue 28): Locust's HttpUser (requests), the
image handed to requests as `files=`, so requests encodes the multipart body on every upload, inside the timing.
"""
from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from pathlib import Path

import gevent
from locust import HttpUser, between, events
from locust.contrib.fasthttp import FastHttpUser

from bench.capacity import WAIT_RANGE_S
from bench.pools import multipart_body

POLL_SECONDS = 0.1
WAIT_SECONDS = float(os.environ.get("BENCH_WAIT_SECONDS") or 0)  # 0: the seed's polling
TASK_TIMEOUT_SECONDS = 120
CONTENT_TYPE = multipart_body(b"")[1]
CLIENT = os.environ.get("BENCH_CLIENT", "fast")


class _Bodies:
    """Images read before the run starts (as multipart bodies for the fast client, raw for the seed's), handed
    out once each (a miss must never repeat an image)."""

    def __init__(self) -> None:
        self.misses: list[bytes] = []
        self.hit: bytes = b""
        self.next = 0

    def load(self) -> None:
        folder = Path(os.environ["BENCH_POOL_DIR"])
        limit = int(os.environ.get("BENCH_POOL_LIMIT", "0")) or None
        prepare = (lambda data: data) if CLIENT == "seed" else (lambda data: multipart_body(data)[0])
        self.misses = [prepare(p.read_bytes()) for p in sorted(folder.glob("*.png"))[:limit]]
        self.hit = prepare(Path(os.environ["BENCH_HIT_IMAGE"]).read_bytes())

    def take_miss(self) -> bytes | None:
        if self.next >= len(self.misses):
            return None
        self.next += 1  # gevent: users share one OS thread, no lock needed
        return self.misses[self.next - 1]


BODIES = _Bodies()
SAMPLES: dict[str, list[float]] = defaultdict(list)
FAILURES: dict[str, int] = defaultdict(int)


@events.init.add_listener
def _load_pool(**_kwargs) -> None:
    BODIES.load()


@events.request.add_listener
def _record(request_type, name, response_time, exception=None, **_kwargs) -> None:
    key = f"{request_type} {name}"
    if exception is None:
        SAMPLES[key].append(response_time)
    else:
        FAILURES[key] += 1


@events.quitting.add_listener
def _dump(**_kwargs) -> None:
    out = os.environ.get("BENCH_SAMPLES_OUT")
    if out:
        Path(out).write_text(json.dumps({"samples": SAMPLES, "failures": FAILURES,
                                         "misses_used": BODIES.next, "pool": len(BODIES.misses)}))


class _Scenario:
    """The seed's tasks, whichever HTTP client runs them."""
    wait_time = between(*WAIT_RANGE_S)

    def on_start(self) -> None:
        self.headers = {"x-api-key": os.environ["BENCH_API_KEY"]} if os.environ.get("BENCH_API_KEY") else {}

    def _post_image(self, scenario: str, body: bytes):
        return self.client.post("/v1/jobs", data=body, headers={**self.headers, "Content-Type": CONTENT_TYPE},
                                name=f"/v1/jobs [{scenario}]", catch_response=True)

    def _e2e(self, scenario: str, body: bytes) -> None:
        began = time.perf_counter()
        start_time = time.time()
        failure = None
        with self._post_image(scenario, body) as response:
            if response.status_code not in (200, 201):
                response.failure(f"submit answered {response.status_code}: {response.text[:200]}")
                failure = RuntimeError(f"submit {response.status_code}")
            else:
                job = response.json()
        if failure is None and job.get("status") != "COMPLETED":
            failure = self._poll(job["id"], began)
        self.environment.events.request.fire(
            request_type="E2E", name=scenario, start_time=start_time, context={}, response=None,
            response_time=(time.perf_counter() - began) * 1000, response_length=0, exception=failure)

    def _poll(self, job_id: str, began: float) -> Exception | None:
        while time.perf_counter() - began < TASK_TIMEOUT_SECONDS:
            if WAIT_SECONDS:
                url, name = f"/v1/jobs/{job_id}?wait={WAIT_SECONDS:g}", "/v1/jobs/{id}?wait"
            else:
                gevent.sleep(POLL_SECONDS)
                url, name = f"/v1/jobs/{job_id}", "/v1/jobs/{id}"
            with self.client.get(url, name=name, headers=self.headers, catch_response=True) as response:
                if response.status_code != 200:
                    response.failure(f"poll answered {response.status_code}")
                    return RuntimeError(f"poll {response.status_code}")
                status = response.json().get("status")
            if status == "COMPLETED":
                return None
            if status == "FAILED":
                return RuntimeError(f"job {job_id} FAILED")
        return TimeoutError(f"job {job_id} not COMPLETED within {TASK_TIMEOUT_SECONDS}s")

    def cache_miss(self) -> None:
        body = BODIES.take_miss()
        if body is None:
            self.environment.events.request.fire(
                request_type="E2E", name="cache_miss", start_time=time.time(), context={}, response=None,
                response_time=0, response_length=0, exception=RuntimeError("image pool exhausted"))
            return
        self._e2e("cache_miss", body)

    def cache_hit(self) -> None:
        self._e2e("cache_hit", BODIES.hit)


TASKS = {_Scenario.cache_miss: 7, _Scenario.cache_hit: 3}  # the seed's 7:3


class RadiologyClient(_Scenario, FastHttpUser):
    abstract = CLIENT != "fast"
    tasks = TASKS


class SeedClient(_Scenario, HttpUser):
    abstract = CLIENT != "seed"
    tasks = TASKS

    def _post_image(self, scenario: str, body: bytes):
        return self.client.post("/v1/jobs", files={"image": ("xray.png", body, "image/png")}, headers=self.headers,
                                name=f"/v1/jobs [{scenario}]", catch_response=True)
