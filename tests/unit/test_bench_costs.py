"""bench/costs.py and bench/prices.json: every price has its source, Lambda CPU follows memory, EC2 steps, crossover."""
from __future__ import annotations

import pytest

from bench import costs

PRICES = costs.load_prices()
M = costs.Measured(cpu_s_per_image=0.1, images_per_batch=4)


def _figures(node, trail=()):
    for key, value in node.items():
        if isinstance(value, dict) and ("usd" in value or "value" in value or "usd_per_hour" in value):
            yield trail + (key,), value
        elif isinstance(value, dict):
            yield from _figures(value, trail + (key,))


def test_every_price_names_its_source_and_date():
    figures = list(_figures(PRICES))
    assert len(figures) >= 12
    for trail, figure in figures:
        assert str(figure.get("source", "")).startswith("http"), trail
        assert figure.get("as_of"), trail


def test_lambda_cpu_share_follows_memory_up_to_one_vcpu():
    at_1769 = costs.lambda_gb_s_per_image(PRICES, M, 1769)
    at_2048 = costs.lambda_gb_s_per_image(PRICES, M, 2048)
    at_1024 = costs.lambda_gb_s_per_image(PRICES, M, 1024)
    assert at_2048 / at_1769 == pytest.approx(2048 / 1769)  # same duration: one thread gets one vCPU at most
    # below 1769 MB the CPU share shrinks with memory, so the compute part of GB-s stays the same
    io = costs.LAMBDA_IO_S_PER_INVOCATION / M.images_per_batch
    assert at_1024 - io * 1024 / 1024 == pytest.approx(at_1769 - io * 1769 / 1024)


def test_ec2_fleet_has_a_floor_and_steps_with_volume():
    assert costs.ec2_instances(PRICES, M, 1_000, "c7i.large") == 1
    capacity = costs.HOURS_PER_MONTH * 3600 * 2 * costs.EC2_TARGET_UTILISATION / M.cpu_s_per_image
    assert costs.ec2_instances(PRICES, M, capacity * 2.5, "c7i.large") == 3
    quiet = sum(costs.ec2_monthly(PRICES, M, 1_000, "c7i.large").values())
    assert quiet > 0.08925 * costs.HOURS_PER_MONTH  # one instance all month, whatever the volume


def test_burstable_instance_pays_for_cpu_above_its_baseline():
    low = costs.ec2_monthly(PRICES, M, 1_000, "t3.large")["compute"]
    high = costs.ec2_monthly(PRICES, M, 20_000_000, "t3.large")["compute"]
    assert costs.ec2_instances(PRICES, M, 20_000_000, "t3.large") == 1
    assert high > low  # 20 M x 0.1 CPU-s = 556 vCPU-h, above 2 vCPU x 30% x 730 h = 438: surplus is billed


def test_crossover_lies_where_the_cheaper_path_changes():
    lam = lambda v: sum(costs.lambda_monthly(PRICES, M, v, 2048).values())  # noqa: E731
    ec2 = lambda v: sum(costs.ec2_monthly(PRICES, M, v, "c7i.large").values())  # noqa: E731
    volume = costs.crossover(lam, ec2)
    assert volume is not None and lam(volume * 0.9) < ec2(volume * 0.9) and lam(volume * 1.1) >= ec2(volume * 1.1)
