"""Dollars from measured per-image figures: both infer paths per 1,000 images and per month, with bench/prices.json.

Assumptions are named here once (and in bench/README.md): us-east-1 on-demand, free tiers ignored, uniform traffic
over a 730-hour month, images kept JOB_TTL_DAYS (30) so a month's images are what S3 stores.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

PRICES = Path(__file__).resolve().parent / "prices.json"
HOURS_PER_MONTH = 730
VOLUMES = [1_000, 10_000, 100_000, 1_000_000, 3_000_000, 10_000_000, 30_000_000, 100_000_000]
LAMBDA_IO_S_PER_INVOCATION = 0.03  # S3 GET + DynamoDB claim/complete round trips on AWS, not measured here (assumed)
EC2_TARGET_UTILISATION = 0.7  # the fleet is sized to run its vCPUs at most this busy (headroom for bursts)
EC2_ROOT_VOLUME_GB = 30  # the launch template's gp3 root volume
SQS_POLLS_PER_MINUTE_ESM = 3  # one 20 s long poll per poller
SQS_POLLS_PER_MINUTE_WORKER = 30  # worker/cxr_worker/supervisor.py long-polls 2 s at a time, per process
API_POLLS_PER_IMAGE = 5  # GET /v1/jobs/{id} a client makes before COMPLETED (seed client: every 100 ms, ~0.5 s)


def load_prices(path: Path = PRICES) -> dict:
    return json.loads(path.read_text())


@dataclass(frozen=True)
class Measured:
    """Per-image figures of one infer path, measured on the local emulation (the infer-paths study)."""
    cpu_s_per_image: float  # infer CPU per image (handler or worker processes), without cold-start init
    images_per_batch: float  # records per invocation / per worker batch
    image_mb: float = 0.35  # stored bytes per image
    init_s_per_cold_start: float = 0.0  # Lambda: init + first-invoke model load, per new environment
    cold_starts_per_1000: float = 0.0  # Lambda: new environments per 1,000 images


def common_per_image(prices: dict, m: Measured) -> dict[str, float]:
    """What both paths pay per image: API Gateway, DynamoDB, S3, SQS (messages, not idle polling)."""
    p = prices
    per_batch = 1.0 / max(1.0, m.images_per_batch)
    wru = 1 + 1 + 0.1 + 2 + 2 + 2  # cache claim, job put, rate-limit lease share, claim (transaction), result, cache
    rru = 2 + API_POLLS_PER_IMAGE + 1  # consistent batch_get at claim, polls, the result
    return {
        "api_gateway": (2 + API_POLLS_PER_IMAGE) * p["api_gateway"]["http_api_request_per_million"]["usd"] / 1e6,
        "dynamodb": (wru * p["dynamodb"]["write_request_unit_per_million"]["usd"]
                     + rru * p["dynamodb"]["read_request_unit_per_million"]["usd"]) / 1e6,
        "s3": (p["s3"]["put_per_thousand"]["usd"] + p["s3"]["get_per_thousand"]["usd"]) / 1000
              + m.image_mb / 1024 * p["s3"]["standard_gb_month"]["usd"],
        "sqs": (1 + 2 * per_batch) * p["sqs"]["request_per_million"]["usd"] / 1e6,  # send; receive + delete/batch
    }


def lambda_gb_s_per_image(prices: dict, m: Measured, memory_mb: int) -> float:
    """Billed GB-s per image on AWS, from CPU: one thread gets at most one vCPU, memory_mb/1769 below that."""
    share = min(1.0, memory_mb / prices["lambda"]["mb_per_vcpu"]["value"])
    invoke_s = m.cpu_s_per_image / share + LAMBDA_IO_S_PER_INVOCATION / max(1.0, m.images_per_batch)
    init_s = m.init_s_per_cold_start * m.cold_starts_per_1000 / 1000
    return (invoke_s + init_s) * memory_mb / 1024


def lambda_monthly(prices: dict, m: Measured, volume: float, memory_mb: int, arch: str = "x86") -> dict[str, float]:
    lam = prices["lambda"]
    gb_s_price = lam["x86_gb_second" if arch == "x86" else "arm64_gb_second"]["usd"]
    idle_polls = prices["sqs"]["esm_idle_pollers"]["value"] * SQS_POLLS_PER_MINUTE_ESM * 60 * HOURS_PER_MONTH
    costs = {key: value * volume for key, value in common_per_image(prices, m).items()}
    costs["sqs"] += idle_polls * prices["sqs"]["request_per_million"]["usd"] / 1e6
    costs["compute"] = volume * (lambda_gb_s_per_image(prices, m, memory_mb) * gb_s_price
                                 + lam["request_per_million"]["usd"] / 1e6 / max(1.0, m.images_per_batch))
    return costs


def ec2_instances(prices: dict, m: Measured, volume: float, instance: str, min_size: int = 1) -> int:
    spec = prices["ec2"][instance]
    usable_vcpu_s = HOURS_PER_MONTH * 3600 * spec["vcpus"] * EC2_TARGET_UTILISATION
    return max(min_size, math.ceil(volume * m.cpu_s_per_image / usable_vcpu_s))


def ec2_monthly(prices: dict, m: Measured, volume: float, instance: str, processes: int = 2,
                min_size: int = 1) -> dict[str, float]:
    spec = prices["ec2"][instance]
    count = ec2_instances(prices, m, volume, instance, min_size)
    costs = {key: value * volume for key, value in common_per_image(prices, m).items()}
    idle_polls = count * processes * SQS_POLLS_PER_MINUTE_WORKER * 60 * HOURS_PER_MONTH
    costs["sqs"] += idle_polls * prices["sqs"]["request_per_million"]["usd"] / 1e6
    compute = count * (spec["usd_per_hour"] * HOURS_PER_MONTH
                       + EC2_ROOT_VOLUME_GB * prices["ec2"]["ebs_gp3_gb_month"]["usd"])
    if "baseline_per_vcpu" in spec:  # burstable, unlimited mode: vCPU-hours above the baseline are billed
        used_vcpu_h = volume * m.cpu_s_per_image / 3600
        baseline_vcpu_h = count * spec["vcpus"] * spec["baseline_per_vcpu"] * HOURS_PER_MONTH
        compute += max(0.0, used_vcpu_h - baseline_vcpu_h) * spec["surplus_vcpu_hour_usd"]
    costs["compute"] = compute
    return costs


def instance_usd_per_1000_images(prices: dict, instance: str, images_per_s: float) -> float:
    """Compute only: one instance's on-demand hour spread over the images it finishes in that hour, per 1,000."""
    return prices["ec2"][instance]["usd_per_hour"] / (images_per_s * 3600) * 1000


def crossover(cost_a, cost_b, low: float = 1e3, high: float = 1e9) -> float | None:
    """The smallest monthly volume (log-spaced search) where path a stops being cheaper than path b."""
    volumes = [low * (high / low) ** (i / 400) for i in range(401)]
    previous = None
    for volume in volumes:
        cheaper = cost_a(volume) < cost_b(volume)
        if previous is True and not cheaper:
            return volume
        previous = cheaper
    return None
