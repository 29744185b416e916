"""What keeps a GPU fed (issue 29): the CPU's decode cost per clinical-size input, the cores that cost asks of one
GPU at its rate, and the exact resize's own rate on the device."""
from __future__ import annotations

import statistics

from bench.gpu_timing import timed


def decode_costs(datas: dict[str, bytes], runs: int) -> dict[str, dict[str, float]]:
    """Single-thread CPU ms per clinical-size input: decode + crop (all the CPU does when the resize runs on the
    GPU), and the whole exact preprocessing (the CPU path)."""
    from threadpoolctl import threadpool_limits

    from cxr_model.preprocess import crop, decode_pixels, preprocess

    costs = {}
    with threadpool_limits(limits=1):
        for name, data in datas.items():
            decode = timed(lambda: crop(decode_pixels(data)).pixels.sum(), cpu(), runs)  # sum: touch every pixel
            whole = timed(lambda: preprocess(data), cpu(), runs)
            costs[name] = {"decode_crop_ms": decode * 1000, "preprocess_ms": whole * 1000}
    return costs


def cpu():
    import torch

    return torch.device("cpu")


def device_resize_rate(datas: dict[str, bytes], device, batch: int, runs: int) -> dict[str, float]:
    """images/s of the exact resize on the device for `batch` decoded crops of each clinical input (host->device
    copy of the integer pixels included): what the GPU spends besides the forward pass."""
    from cxr_model.engines.torch_device import resize_batch
    from cxr_model.preprocess import crop, decode_pixels

    rates = {}
    for name, data in datas.items():
        items = [crop(decode_pixels(data))] * batch
        resize_batch(items, device)
        rates[name] = batch / timed(lambda: resize_batch(items, device), device, runs)
    return rates


def cores_per_device(rate: float, costs: dict[str, dict[str, float]]) -> dict[str, float]:
    """CPU cores that keep `rate` images/s fed, at the clinical mix's mean single-thread cost per image."""
    decode = statistics.mean(cost["decode_crop_ms"] for cost in costs.values()) / 1000
    whole = statistics.mean(cost["preprocess_ms"] for cost in costs.values()) / 1000
    return {"resize_on_device": rate * decode, "resize_on_cpu": rate * whole,
            "mean_decode_crop_ms": decode * 1000, "mean_preprocess_ms": whole * 1000}


def decode_thread_scaling(datas: dict[str, bytes], threads: int) -> dict[str, float]:
    """Wall time to decode + crop every input `threads` times, in one thread and in `threads` threads of one process:
    whether the decoders release the GIL, i.e. whether DECODE_THREADS alone can use the cores or the worker needs
    one process per vCPU (WORKER_PROCESSES)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    from cxr_model.preprocess import crop, decode_pixels

    work = [data for data in datas.values() for _ in range(threads)]

    def decode(data: bytes) -> float:
        return float(crop(decode_pixels(data)).pixels.sum())

    with threadpool_limits(limits=1):
        start = time.perf_counter()
        [decode(data) for data in work]
        serial = time.perf_counter() - start
        with ThreadPoolExecutor(threads) as pool:
            start = time.perf_counter()
            list(pool.map(decode, work))
            threaded = time.perf_counter() - start
    return {"threads": threads, "serial_s": serial, "threaded_s": threaded, "speedup": serial / threaded}
