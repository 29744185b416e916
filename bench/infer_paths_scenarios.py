"""The client side of bench_infer_paths.py: the seed's polling users, a burst, and reading the jobs table back."""
from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from cxr_local.sam_env import stack_credentials

from common import LocalStack


def submit(session: requests.Session, stack: LocalStack, data: bytes, tries: int = 1) -> str:
    for attempt in range(tries):
        answer = session.post(f"{stack.url}/v1/jobs", data=data, headers={"Content-Type": "image/png"}, timeout=60)
        if answer.status_code in (200, 201):  # 200: an earlier try that timed out made the job after all
            return answer.json()["id"]
        time.sleep(1 + attempt)
    raise RuntimeError(f"submit: {answer.status_code} {answer.text}")


def seed_scenario(stack: LocalStack, pool: list[bytes], users: int, duration_s: float) -> dict:
    """The seed's load test, cache misses only: each user uploads, polls every 100 ms, thinks 1-3 s, again."""
    observed, errors, lock, stop_at = [], [], threading.Lock(), time.monotonic() + duration_s
    feed = iter(pool)

    def user(index: int) -> None:
        rng = random.Random(index)
        with requests.Session() as session:
            session.headers.update(auth(stack))
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


def burst_scenario(stack: LocalStack, pool: list[bytes], idle_s: float) -> dict:
    """All images submitted at once (8 connections), wait until every job is final, then idle."""
    with requests.Session() as session, ThreadPoolExecutor(8) as executor:
        session.headers.update(auth(stack))
        jobs = list(executor.map(lambda data: submit(session, stack, data, tries=5), pool))
    wait_final(stack, jobs, timeout_s=600)
    time.sleep(idle_s)
    return {"jobs": jobs, "client_ms": [], "errors": []}


def auth(stack: LocalStack) -> dict:
    return {"x-api-key": stack.info["api_key"]} if stack.info.get("api_key") else {}


def jobs_table(stack: LocalStack) -> dict[str, dict]:
    import boto3

    key, secret = stack_credentials(stack.info)  # the stack's moto refuses any other identity
    client = boto3.client("dynamodb", endpoint_url=stack.info["moto_endpoint"], region_name="us-east-1",
                          aws_access_key_id=key, aws_secret_access_key=secret)
    items, start = [], None
    while True:
        page = client.scan(TableName=stack.info["resources"]["tables"]["JobsTable"],
                           **({"ExclusiveStartKey": start} if start else {}))
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return {item["job_id"]["S"]: {k: next(iter(v.values())) for k, v in item.items()} for item in items}


def wait_final(stack: LocalStack, jobs: list[str], timeout_s: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        table = jobs_table(stack)
        if all(table.get(j, {}).get("status") in ("COMPLETED", "FAILED") for j in jobs):
            return table
        if time.monotonic() > deadline:
            raise RuntimeError("jobs not final in time")
        time.sleep(0.5)
