"""Cache hits (issue 28): where a hit's time goes, and the seed's client against the project's, on one local stack.

Run: python -m bench cache-hits [--users 20] [--duration 30] [--rounds 2] [--calls 200]
1. The hit path's own calls, one at a time (p50 of --calls, in this process, the submit function's code and clients
   against the stack's moto): multipart parse, SHA-256, authentication (the key's cached lookup), rate limit (a
   lease), cache read, job write, SNS publish, and submit_image (a hit) as a whole.
2. One client, one request at a time, idle stack: POST /v1/jobs of the hit image as the seed's client sends it
   (requests, `files=`: the multipart body encoded per request) and as a prebuilt body (what FastHttpUser sends).
3. The seed's Locust scenario at --users users, after a 10 s round not measured (warm environments and workers),
   rounds alternating the seed's client (HttpUser, BENCH_CLIENT=seed) and FastHttpUser: the cache_hit task's
   p50/p95 (upload -> COMPLETED, one POST for a hit) per client.
Writes bench/results/cache_hits-<UTC>.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time

import requests

from bench.harness import RESULTS, UNLIMITED, StackProcess, fmt_ms, load_average, start_stack, summarize, utc_stamp
from bench.locust_run import HIT_SEED, pool_size, prime_hit, run_locust
from bench.pools import image_pool, multipart_body


def timed(function, calls: int) -> dict:
    function()
    samples = []
    for _ in range(calls):
        began = time.perf_counter()
        function()
        samples.append((time.perf_counter() - began) * 1000)
    return summarize(samples)


def hit_path_calls(stack: StackProcess, image: bytes, calls: int) -> dict[str, dict]:
    """Each call a cache hit makes, timed alone, with the function's own wiring (cxr_core.bootstrap.Runtime)."""
    from cxr_core.bootstrap import Runtime
    from cxr_core.config import read_settings
    from cxr_core.domain import new_job_id, sha256_hex
    from cxr_core.request_body import parse_upload
    from cxr_core.services.notifications import notify
    from cxr_core.services.submit import submit_image

    environment = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CXR_"))},
                   **stack.info["aws_env"], "AWS_ACCESS_KEY_ID": stack.info["aws_access_key_id"],
                   "AWS_SECRET_ACCESS_KEY": stack.info["aws_secret_access_key"],
                   "AWS_DEFAULT_REGION": stack.info["aws_region"], "MODEL_DIR": stack.info["model_dir"],
                   "AUTH_MODE": "api_key", "RATE_LIMIT_PER_MINUTE": UNLIMITED["RateLimitPerMinute"]}
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):  # boto3/pynamodb read these
        os.environ[key] = environment[key]
    rt = Runtime(read_settings(environment))
    body, content_type = multipart_body(image)
    headers = {"x-api-key": stack.info["api_key"]}
    client_id = rt.auth.client(headers, {}).client_id
    upload = parse_upload(content_type, body, rt.settings.max_upload_bytes)
    deps = rt.submit_deps()
    outcome = submit_image(upload, deps, client_id)
    assert not outcome.created and outcome.job.cached, "the image is not a cache hit for this client"
    job = outcome.job
    return {
        "multipart parse": timed(lambda: parse_upload(content_type, body, rt.settings.max_upload_bytes), calls),
        "SHA-256": timed(lambda: sha256_hex(image), calls),
        "auth (cached key)": timed(lambda: rt.auth.client(headers, {}), calls),
        "rate limit": timed(lambda: rt.rate_limiter.hit(client_id), calls),
        "cache read (GetItem)": timed(lambda: rt.jobs.get_cache(job.cache_key), calls),
        "job write (PutItem)": timed(lambda: rt.jobs.put_job(dataclasses.replace(job, job_id=new_job_id())), calls),
        "SNS publish": timed(lambda: notify(rt.events, job), calls),
        "submit_image, a hit (all of the above but parse and auth)": timed(
            lambda: submit_image(upload, deps, client_id), calls),
        "submit_image, a hit, no image check started beside the lookup": timed(
            lambda: submit_image(upload, dataclasses.replace(deps, executor=None), client_id), calls),
        "the image check alone (check_image)": timed(lambda: deps.check_image(image), calls),
    }


def sequential_posts(stack: StackProcess, image: bytes, calls: int) -> dict[str, dict]:
    body, content_type = multipart_body(image)
    url = f"{stack.url}/v1/jobs"
    with requests.Session() as session:
        session.headers.update(stack.auth_headers)
        seed = lambda: session.post(url, files={"image": ("xray.png", image, "image/png")}, timeout=30)  # noqa: E731
        prebuilt = lambda: session.post(url, data=body, headers={"Content-Type": content_type}, timeout=30)  # noqa: E731
        encode = lambda: requests.Request("POST", url, files={"image": ("xray.png", image, "image/png")}).prepare()  # noqa: E731
        assert seed().status_code == prebuilt().status_code == 200
        results = {"POST, requests files= (the seed's client)": timed(seed, calls),
                   "POST, requests, prebuilt body": timed(prebuilt, calls),
                   "requests' multipart encoding alone": timed(encode, calls)}
    from geventhttpclient import HTTPClient, URL

    target = URL(url)
    fast = HTTPClient.from_url(target, concurrency=1)
    headers = {**stack.auth_headers, "Content-Type": content_type}

    def fast_post() -> None:
        response = fast.post(target.request_uri, body=body, headers=headers)
        response.read()
        assert response.status_code == 200, response.status_code

    results["POST, geventhttpclient (FastHttpUser's), prebuilt body"] = timed(fast_post, calls)
    fast.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=int, default=30, help="seconds per Locust round")
    parser.add_argument("--rounds", type=int, default=2, help="Locust rounds per client, alternating (0: none)")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    stamp = utc_stamp()
    out = RESULTS / f"cache_hits-{stamp}"
    hit = image_pool(1, first_seed=HIT_SEED)[0]
    image = hit.read_bytes()
    report: dict = {"when": stamp, "image_bytes": len(image), "load_average_start": load_average()}
    with start_stack(out / "stack", workers=args.workers, params=UNLIMITED) as stack:
        prime_hit(stack, hit)
        report["calls"] = hit_path_calls(stack, image, args.calls)
        report["http"] = sequential_posts(stack, image, args.calls)
        report["load_average_idle_parts"] = load_average()
        rounds = []
        if args.rounds:  # a round not measured first: the function environments and workers warm, for both clients
            pool = image_pool(pool_size(args.users, 10), first_seed=4_900_001)
            run_locust(stack, args.users, 10, pool, hit, out / "warm-up", client="fast")
        for index in range(args.rounds * 2):
            client = ("seed", "fast")[index % 2]
            pool = image_pool(pool_size(args.users, args.duration), first_seed=5_000_001 + index * 100_000)
            raw, cpu, load = run_locust(stack, args.users, args.duration, pool, hit, out / f"{index}-{client}",
                                        client=client)
            rounds.append({"client": client, "load_avg_1m": load, "cpu_share": cpu.cores,
                           "hit": summarize(raw["samples"].get("E2E cache_hit", [])),
                           "hit_failures": raw["failures"].get("E2E cache_hit", 0),
                           "miss": summarize(raw["samples"].get("E2E cache_miss", []))})
        report["locust"] = rounds
    write_report(report, args)
    return 0


def write_report(report: dict, args) -> None:
    from bench.harness import write_json

    print(f"\nHit image {report['image_bytes'] / 1e6:.2f} MB; load average at start {report['load_average_start']}")
    print(f"\n1. The hit path's calls, one at a time (ms, {args.calls} each; this process, the stack's moto)")
    print("| call | p50 | p95 |\n|---|---|---|")
    for name, row in report["calls"].items():
        print(f"| {name} | {fmt_ms(row['p50'])} | {fmt_ms(row['p95'])} |")
    print(f"\n2. One client, one request at a time, idle stack (ms; load average {report['load_average_idle_parts']})")
    print("| request | p50 | p95 |\n|---|---|---|")
    for name, row in report["http"].items():
        print(f"| {name} | {fmt_ms(row['p50'])} | {fmt_ms(row['p95'])} |")
    if not report["locust"]:
        return write_json(RESULTS / f"cache_hits-{report['when']}.json", report)
    print(f"\n3. Locust, {args.users} users, {args.duration} s rounds alternating: cache_hit upload -> COMPLETED (ms)")
    print("| round | client | hit p50 | hit p95 | hits | failures | miss p50 | CPU api / moto / worker / locust | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    for index, row in enumerate(report["locust"]):
        cpu = row["cpu_share"]
        print(f"| {index} | {row['client']} | {fmt_ms(row['hit']['p50'])} | {fmt_ms(row['hit']['p95'])} | "
              f"{row['hit']['n']} | {row['hit_failures']} | {fmt_ms(row['miss']['p50'])} | {cpu['api']:.2f} / "
              f"{cpu['moto']:.2f} / {cpu['worker']:.2f} / {cpu['locust']:.2f} | {row['load_avg_1m'][0]:.1f} |")
    path = write_json(RESULTS / f"cache_hits-{report['when']}.json", report)
    print(f"wrote {path}")
