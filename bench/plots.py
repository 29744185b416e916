"""PNG plots of the bench results: end-to-end latency against users, throughput against batch size, cost against
monthly volume."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen

from bench.seed import SEED_LOAD  # noqa: E402


def plot_load(levels: list[dict], out: Path) -> Path:
    """p50 and p95 end-to-end latency (log scale) of cache_miss and cache_hit per user level, seed beside ours."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    users = [lv["users"] for lv in levels]
    styles = {"cache_miss": "tab:red", "cache_hit": "tab:blue"}
    for scenario, color in styles.items():
        for stat, line in (("p50", "-"), ("p95", ":")):
            values = [lv["e2e"][scenario][stat] for lv in levels]
            ax.plot(users, values, line, marker="o", color=color, label=f"{scenario} {stat} (this stack)")
            seed_users = sorted(SEED_LOAD)
            ax.plot(seed_users, [SEED_LOAD[u][scenario][stat] for u in seed_users], line, marker="x", color=color,
                    alpha=0.35, label=f"{scenario} {stat} (seed, t3.large)")
    ax.set_yscale("log")
    ax.set_xlabel("concurrent users (Locust, 1-3 s wait, miss:hit 7:3)")
    ax.set_ylabel("upload -> COMPLETED, ms (log)")
    ax.set_xticks(sorted(set(users) | set(SEED_LOAD)))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("End-to-end latency vs users (2 shared cores here; seed: EC2 t3.large)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_saturation(rows: list[dict], out: Path) -> Path:
    """Jobs/s of the full stack per batch size (one line per batching window) against the engine alone."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    windows = sorted({row["window_s"] for row in rows})
    for window in windows:
        picked = sorted((row for row in rows if row["window_s"] == window), key=lambda row: row["batch_size"])
        ax.plot([r["batch_size"] for r in picked], [r["stack_jobs_per_s"] for r in picked], marker="o",
                label=f"full stack, window {window:g} s")
    engine = {}
    for row in rows:
        engine.setdefault(row["batch_size"], []).append(row["engine_jobs_per_s"])
    sizes = sorted(engine)
    ax.plot(sizes, [sum(engine[s]) / len(engine[s]) for s in sizes], "k--", marker="s",
            label="engine alone (preprocess + ONNX, same processes)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("INFER_BATCH_SIZE")
    ax.set_ylabel("jobs / s (sustained)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Saturated throughput vs batch size (2 shared cores)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_costs(choices: dict, crossings: dict, reference: str, out: Path) -> Path:
    """Monthly cost and cost per 1,000 images of each infer-path option against monthly images (log axes), with
    the volumes where `reference` stops being the cheaper one marked."""
    import numpy as np

    volumes = np.logspace(3, 8, 200)
    fig, (total, unit) = plt.subplots(1, 2, figsize=(12, 4.8))
    for name, cost in choices.items():
        style = "--" if "not measured" in name else "-"
        monthly = np.array([cost(v) for v in volumes])
        total.plot(volumes, monthly, style, label=name)
        unit.plot(volumes, monthly / volumes * 1000, style, label=name)
    for index, (other, volume) in enumerate(item for item in crossings.items() if item[1]):
        for ax in (total, unit):
            ax.axvline(volume, color="grey", linestyle=":", linewidth=1)
        unit.annotate(f"{reference} = {other.split(' fleet')[0]}\nat {volume / 1e6:.1f} M images/month",
                      (volume, choices[reference](volume) / volume * 1000), textcoords="offset points",
                      xytext=(-230, 40 + 30 * index), fontsize=7, arrowprops={"arrowstyle": "->", "color": "grey"})
    for ax, label in ((total, "USD per month"), (unit, "USD per 1,000 images")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("images per month (uniform traffic)")
        ax.set_ylabel(label + " (infer path + SQS/DynamoDB/S3/API Gateway)", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    total.legend(fontsize=7)
    fig.suptitle("Infer path cost vs volume: us-east-1 on-demand prices (bench/prices.json), CPU per image measured "
                 "on the local emulation", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
