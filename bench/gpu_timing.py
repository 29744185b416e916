"""Wall-clock timing on a device: the median of calls with the device's queue drained around each."""
from __future__ import annotations

import statistics
import time


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, runs: int) -> float:
    """Seconds per call, median of `runs` calls, the device's queue drained around each."""
    samples = []
    for _ in range(runs):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)
