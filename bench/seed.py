"""The seed platform's figures (seed/performance-analysis.ko.md; EC2 t3.large, Django + Redis + 2 torch workers)
and the targets the issues set against them."""
from __future__ import annotations

SEED_LOAD = {  # users -> scenario -> ms
    10: {"cache_miss": {"p50": 1100.0, "p95": 2800.0}, "cache_hit": {"p50": 68.0, "p95": 230.0}},
    20: {"cache_miss": {"p50": 6000.0, "p95": 9700.0}, "cache_hit": {"p50": 110.0, "p95": 370.0}},
}
SEED_SUBMIT_P50_MS = 92.0
SEED_CEILING_JOBS_PER_S = 7.0
SEED_SINGLE_MS = {"p50": 277.0, "p95": 304.0, "p99": 318.0, "mean": 280.0}  # torch eager fp32, one image
SEED_BATCH_MS = {1: 272.0, 2: 521.0, 4: 1018.0, 8: 2073.0}  # per batch
TARGETS = {"miss_p50_ms_20": 300.0, "miss_p95_ms_20": 800.0, "hit_p50_ms_20": 20.0, "submit_p50_ms": 15.0,
           "saturation_ratio": 0.85}
