"""The reward / accuracy curve of a run, from its metrics.jsonl."""

from __future__ import annotations

import json
from pathlib import Path


def plot_run(metrics_jsonl: str | Path, out_png: str | Path, title: str = "") -> Path:
    """Training reward and correct share per step (left axis) and held-out accuracy (points)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in Path(metrics_jsonl).read_text().splitlines() if line.strip()]
    train = [r for r in records if "reward/mean" in r]
    evals = [r for r in records if "eval/accuracy" in r]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot([r["step"] for r in train], [r["reward/mean"] for r in train], label="train reward", lw=1)
        ax.plot([r["step"] for r in train], [r["reward/correct"] for r in train], label="train correct", lw=1)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("reward / share")
    if evals:
        acc = ax.twinx()
        acc.errorbar([r["step"] for r in evals], [r["eval/accuracy"] for r in evals],
                     yerr=[r.get("eval/ci95", 0) for r in evals], fmt="o-", color="k", label="held-out accuracy")
        acc.set_ylabel("held-out accuracy (%)")
        acc.legend(loc="lower right")
    ax.legend(loc="upper left")
    ax.set_title(title)
    fig.tight_layout()
    out = Path(out_png)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
