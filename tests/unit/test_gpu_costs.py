"""docs/deploy.md's GPU cost table is what bench/prices.json and bench/costs.py give, and says it is hypothetical."""
from __future__ import annotations

import re

import pytest

from bench.costs import instance_usd_per_1000_images, load_prices

from .template_support import REPO, raw

DEPLOY = (REPO / "docs" / "deploy.md").read_text()
SECTION = DEPLOY.split("### Cost per 1,000 images, GPU instances against the CPU paths", 1)[1].split("\n## ", 1)[0]


def _rows() -> dict[str, list[str]]:
    rows = {}
    for line in SECTION.splitlines():
        match = re.match(r"\| `([\w.]+)` \([^)]*\) \| \$([\d.]+)/h \| (.+) \|$", line)
        if match:
            rows[match.group(1)] = [match.group(2)] + [cell.strip() for cell in match.group(3).split("|")]
    return rows


def test_every_gpu_instance_type_the_template_allows_is_priced_with_a_source():
    prices = load_prices()["ec2"]
    allowed = raw()["Parameters"]["WorkerInstanceType"]["AllowedValues"]
    for instance in (value for value in allowed if value.startswith("g")):
        assert prices[instance]["usd_per_hour"] > 0 and "aws.amazon.com" in prices[instance]["source"], instance
        assert "not measured" in prices[instance]["note"], instance
        assert instance in _rows(), instance


@pytest.mark.parametrize("instance", ["c7i.large", "g4dn.xlarge", "g4dn.2xlarge", "g5.xlarge", "g6.xlarge"])
def test_the_table_is_computed_from_the_prices(instance):
    prices = load_prices()
    price, *cells, ratio = _rows()[instance]
    assert float(price) == prices["ec2"][instance]["usd_per_hour"]
    for rate, cell in zip((25, 50, 100, 200, 400), cells):
        assert cell == f"${instance_usd_per_1000_images(prices, instance, rate):.4f}", (instance, rate)
    assert ratio == f"{prices['ec2'][instance]['usd_per_hour'] / prices['ec2']['c7i.large']['usd_per_hour']:.1f}x"


def test_the_section_says_no_gpu_throughput_was_measured():
    assert "hypothetical rates, not measurements" in SECTION
    assert "No GPU throughput was measured" in DEPLOY
