"""The infer-paths study's tables: measured figures per scenario and path, then dollars and the cost plot."""
from __future__ import annotations

from pathlib import Path

from bench import costs
from bench.harness import fmt_ms

LAMBDA_MEMORY_MB = 2048  # the template's InferMemorySize
COLD_START_SHARE = 0.01  # AWS: cold starts in under 1% of invocations of production workloads (prices.json)


def measured(rows: list[dict], path: str) -> costs.Measured:
    """Per-image figures for the cost model, from the seed scenario (steady traffic) of this run."""
    row = next(r for r in rows if r["scenario"] == "seed" and r["path"] == path)
    per_batch = 1.0
    if path == "lambda":
        stats = row["lambda"]
        per_batch = stats["records"] / max(1, stats["invocations"])
        cold_cpu = cold_start_cpu(rows)
        steady = row["infer_cpu_s"] / row["completed"]  # measured after the warm-up: no cold start in it
        return costs.Measured(cpu_s_per_image=steady, images_per_batch=per_batch, init_s_per_cold_start=cold_cpu,
                              cold_starts_per_1000=1000 / per_batch * COLD_START_SHARE)
    return costs.Measured(cpu_s_per_image=row["infer_cpu_s"] / row["completed"], images_per_batch=per_batch)


def cold_start_cpu(rows: list[dict]) -> float:
    """CPU of one cold start (process start, imports, model load): what an EC2 worker process spent before work."""
    values = [r["cold_start_cpu_s"] for r in rows if r.get("cold_start_cpu_s")]
    return sum(values) / len(values) if values else 0.0


def options(prices: dict, rows: list[dict]) -> dict:
    lam, ec2 = measured(rows, "lambda"), measured(rows, "ec2")
    return {
        f"Lambda x86 {LAMBDA_MEMORY_MB} MB":
            lambda v: sum(costs.lambda_monthly(prices, lam, v, LAMBDA_MEMORY_MB).values()),
        "Lambda x86 1769 MB": lambda v: sum(costs.lambda_monthly(prices, lam, v, 1769).values()),
        f"Lambda arm64 {LAMBDA_MEMORY_MB} MB (priced, not measured)":
            lambda v: sum(costs.lambda_monthly(prices, lam, v, LAMBDA_MEMORY_MB, arch="arm64").values()),
        "EC2 c7i.large fleet (min 1)": lambda v: sum(costs.ec2_monthly(prices, ec2, v, "c7i.large").values()),
        "EC2 t3.large fleet (min 1, unlimited)": lambda v: sum(costs.ec2_monthly(prices, ec2, v, "t3.large").values()),
    }


def print_report(rows: list[dict], out: Path) -> None:
    print("\nMeasured on the local emulation (2 shared cores; moto for AWS; Lambda = emulated event source mapping)")
    print("| scenario | path | images | e2e p50 / p95 ms | e2e p50 / p95 ms, 2nd half | client p50 / p95 ms | span s "
          "| cold starts (init s) | infer CPU-s / 1000 img | Lambda GB-s / 1000 img (local wall) "
          "| records / invocation | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r.get("warm_up_e2e_ms"):
            print(f"| warm-up of {r['scenario']} | {r['path']} | {r['warm_up_e2e_ms']['n']} at once | "
                  f"{fmt_ms(r['warm_up_e2e_ms']['p50'])} / {fmt_ms(r['warm_up_e2e_ms']['p95'])} | | | | | | | | |")
        lam = r.get("lambda") or {}
        cold = (f"{lam['cold_starts']} ({', '.join(f'{s:.1f}' for s in lam['init_s'])})" if lam
                else f"{r.get('worker_processes', 0)} before the run (boot)")
        gb_s = f"{lam['gb_s_total'] / max(1, lam['records']) * 1000:,.0f}" if lam else "-"  # warm-up included
        per_inv = f"{lam['records'] / max(1, lam['invocations']):.1f}" if lam else "-"
        errors = f" ({r['client_errors']} client errors)" if r.get("client_errors") else ""
        print(f"| {r['scenario']}{errors} | {r['path']} | {r['completed']}/{r['images']} | "
              f"{fmt_ms(r['e2e_ms']['p50'])} / {fmt_ms(r['e2e_ms']['p95'])} | "
              f"{fmt_ms(r['e2e_second_half_ms']['p50'])} / {fmt_ms(r['e2e_second_half_ms']['p95'])} | "
              f"{fmt_ms(r['client_ms']['p50'])} / {fmt_ms(r['client_ms']['p95'])} | "
              f"{r['span_s']:.1f} | {cold} | {r['infer_cpu_s'] / r['completed'] * 1000:,.0f} | {gb_s} | {per_inv} | "
              f"{r['load_before'][0]:.2f} -> {r['load_after'][0]:.2f} |")
    prices = costs.load_prices()
    lam, ec2 = measured(rows, "lambda"), measured(rows, "ec2")
    print(f"\nCost model inputs (seed scenario): Lambda {lam.cpu_s_per_image * 1000:.0f} CPU-ms/image steady, "
          f"{lam.images_per_batch:.1f} images/invocation, cold start {lam.init_s_per_cold_start:.1f} CPU-s; "
          f"EC2 worker {ec2.cpu_s_per_image * 1000:.0f} CPU-ms/image; projected Lambda "
          f"{costs.lambda_gb_s_per_image(prices, lam, LAMBDA_MEMORY_MB) * 1000:.0f} GB-s / 1000 images at "
          f"{LAMBDA_MEMORY_MB} MB, {costs.lambda_gb_s_per_image(prices, lam, 1769) * 1000:.0f} at 1769 MB")
    choices = options(prices, rows)
    print("\n| monthly images | " + " | ".join(choices) + " |")
    print("|---|" + "---|" * len(choices))
    for volume in costs.VOLUMES:
        cells = [f"${fn(volume):,.2f} (${fn(volume) / volume * 1000:.3f}/1k)" for fn in choices.values()]
        print(f"| {volume:,} | " + " | ".join(cells) + " |")
    names = list(choices)
    crossings = {other: costs.crossover(choices[names[0]], choices[other]) for other in names[3:]}
    for other, volume in crossings.items():
        print(f"crossover {names[0]} vs {other}: " + (f"{volume:,.0f} images/month" if volume else "none"))
    from bench.plots import plot_costs
    print(f"plot: {plot_costs(choices, crossings, names[0], out.with_suffix('.png'))}")
