"""Training metrics to a JSONL file and TensorBoard, one record per optimizer step."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path


class MetricsLog:
    """`<dir>/metrics.jsonl` (one JSON object per line) and TensorBoard event files in `<dir>/tb`."""

    def __init__(self, directory: str | Path, tensorboard: bool = True):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "metrics.jsonl"
        self.file = self.path.open("a")
        self.tensorboard = tensorboard
        self.tb = self._writer(None)

    def _writer(self, purge_step: int | None):
        if not self.tensorboard:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.dir / "tb"), purge_step=purge_step)

    def rewind(self, step: int) -> None:
        """Forget every record after `step`: a run resumed from the checkpoint of `step` logs those
        steps again, and each step is then in the log once (TensorBoard hides the old events too)."""
        self.file.close()
        keep = [line for line in self.path.read_text().splitlines(keepends=True) if record_step(line) <= step]
        tmp = self.path.with_name(".metrics.jsonl.tmp")
        tmp.write_text("".join(keep))
        os.replace(tmp, self.path)
        self.file = self.path.open("a")
        if self.tb is not None:
            self.tb.close()
            self.tb = self._writer(step + 1)

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


def record_step(line: str) -> float:
    """The step of one metrics.jsonl line; inf for a line cut short by a crash (it is dropped)."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf


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
