"""Training metrics to a JSONL file and TensorBoard, one record per optimizer step."""

from __future__ import annotations

import math
from pathlib import Path

from dllmrl_core.contract.jsontext import dumps


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
        self.file.write(dumps({"step": step, **clean}) + "\n")
        self.file.flush()
        if self.tb is not None:
            for key, value in clean.items():
                self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()


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
