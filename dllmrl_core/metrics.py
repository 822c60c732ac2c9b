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


def batch_metrics(scored) -> dict[str, float]:
    """What a scored batch says about the policy (rollout/... and reward/... keys)."""
    out = {"reward/mean": float(scored.rewards.mean()), "reward/correct": float(scored.correct.float().mean()),
           "reward/timeouts": float(scored.timeouts), "rollout/weight_version": float(scored.rollout.weight_version)}
    for name, values in scored.components.items():
        out[f"reward/{name}"] = float(values.mean())
    if scored.branch_rewards is not None and len(scored.branch_rewards):
        out["reward/branch_mean"] = float(scored.branch_rewards.mean())
    return out
