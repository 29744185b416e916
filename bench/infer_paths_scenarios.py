"""The client side of the infer-paths study: the seed's polling users, a burst, and reading the jobs table back."""
from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.harness import StackProcess, wait_until


def submit(session: requests.Session, stack: StackProcess, data: bytes, tries: int = 1) -> str:
    for attempt in range(tries):
        answer = session.post(f"{stack.url}/v1/jobs", data=data, headers={"Content-Type": "image/png"}, timeout=60)
        if answer.status_code in (200, 201):  # 200: an earlier try that timed out made the job after all
            return answer.json()["id"]
        time.sleep(1 + attempt)
    raise RuntimeError(f"submit: {answer.status_code} {answer.text}")


def seed_scenario(stack: StackProcess, pool: list[bytes], users: int, duration_s: float) -> dict:
    """The seed's load test, cache misses only: each user uploads, polls every 100 ms, thinks 1-3 s, again."""
    observed, errors, lock, stop_at = [], [], threading.Lock(), time.monotonic() + duration_s
    feed = iter(pool)

    def user(index: int) -> None:
        rng = random.Random(index)
        with requests.Session() as session:
            session.headers.update(stack.auth_headers)
            while time.monotonic() < stop_at:
                with lock:
                    data = next(feed)
                began = time.monotonic()
                try:
                    job_id = submit(session, stack, data)
                    while session.get(f"{stack.url}/v1/jobs/{job_id}", timeout=30).json()["status"] not in (
                            "COMPLETED", "FAILED"):
                        time.sleep(0.1)
                except (RuntimeError, requests.RequestException, ValueError, KeyError) as error:
                    with lock:  # an overloaded machine: counted and reported, the user goes on
                        errors.append(repr(error)[:200])
                    time.sleep(1)
                    continue
                with lock:
                    observed.append((job_id, (time.monotonic() - began) * 1000))
                time.sleep(rng.uniform(1, 3))

    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"jobs": [job_id for job_id, _ in observed], "client_ms": [ms for _, ms in observed], "errors": errors}


def burst_scenario(stack: StackProcess, pool: list[bytes], idle_s: float) -> dict:
    """All images submitted at once (8 connections), wait until every job is final, then idle."""
    with requests.Session() as session, ThreadPoolExecutor(8) as executor:
        session.headers.update(stack.auth_headers)
        jobs = list(executor.map(lambda data: submit(session, stack, data, tries=5), pool))
    wait_final(stack, jobs, timeout_s=600)
    time.sleep(idle_s)
    return {"jobs": jobs, "client_ms": [], "errors": []}


def jobs_table(stack: StackProcess) -> dict[str, dict]:
    client = stack.aws("dynamodb")  # signed as the stack's identity: its moto refuses any other
    items, start = [], None
    while True:
        page = client.scan(TableName=stack.info["resources"]["tables"]["JobsTable"],
                           **({"ExclusiveStartKey": start} if start else {}))
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return {item["job_id"]["S"]: {k: next(iter(v.values())) for k, v in item.items()} for item in items}


def wait_final(stack: StackProcess, jobs: list[str], timeout_s: float) -> dict[str, dict]:
    def final() -> dict[str, dict] | None:
        table = jobs_table(stack)
        return table if all(table.get(j, {}).get("status") in ("COMPLETED", "FAILED") for j in jobs) else None

    return wait_until(final, timeout_s, interval_s=0.5, what="jobs final")
