"""Training metrics to a JSONL file and TensorBoard, one record per optimizer step."""

from __future__ import annotations

import json
import math
from pathlib import Path


class MetricsLog:
    """`<dir>/metrics.jsonl` (one JSON object per line) and TensorBoard event files in `<dir>/tb`."""

    def __init__(self, directory: str | Path, tensorboard: bool = True):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.file = (self.dir / "metrics.jsonl").open("a")
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.dir / "tb"))

    def log(self, step: int, values: dict[str, float]) -> None:
        clean = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        self.file.write(json.dumps({"step": step, **clean}) + "\n")
        self.file.flush()
        if self.tb is not None:
            for key, value in clean.items():
                self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()


def zero_adv_share(main: list, group_size: int) -> float:
    """The share of groups (G consecutive rows) whose rewards are all equal: their group-relative
    advantages are zero, so they teach the policy nothing."""
    groups = [main[i:i + group_size] for i in range(0, len(main), group_size)]
    flat = sum(max(v.reward for v in g) - min(v.reward for v in g) <= 1e-9 for g in groups if g)
    return flat / len(groups) if groups else 0.0


def batch_metrics(main: list, branch: list, weight_version: int) -> dict[str, float]:
    """What a batch's verdicts say about the policy (reward/... and rollout/... keys)."""
    n = max(len(main), 1)
    out = {"reward/mean": sum(v.reward for v in main) / n, "reward/correct": sum(v.correct for v in main) / n,
           "reward/well_formed": sum(v.well_formed for v in main) / n,
           "reward/timeouts": float(sum(v.timed_out for v in main + branch)),
           "reward/crashes": float(sum(v.crashed for v in main + branch)),
           "rollout/weight_version": float(weight_version)}
    for name in sorted({k for v in main for k in v.components}):
        out[f"reward/{name}"] = sum(v.components.get(name, 0.0) for v in main) / n
    if branch:
        out["reward/branch_mean"] = sum(v.reward for v in branch) / len(branch)
    return out
