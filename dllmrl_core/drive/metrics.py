"""One typed record per optimizer step, and the log it goes to.

`StepRecord` is the one place the names of the training metrics are made: both drivers (the
single-process loop and the Ray Controller) build one per step and `DriverCore.record_step` logs
`record.as_dict()`. Names by area:

    reward/   mean, correct, well_formed, timeouts, crashes, <component>..., branch_mean (with branches)
    rollout/  weight_version, staleness (steps the learner is ahead of the weights that sampled the
              batch), completion_len_mean, completion_len_max, tokens_per_s (completion tokens per
              second of sampling, on the steps that sampled), zero_adv_share
    learner/  loss, kl (only for methods with a reference policy), clip_frac, ratio_mean, ratio_max,
              grad_norm, entropy, adv_mean, adv_std, adv_abs_max, lr, tokens
    time/     rollout_s, reward_s, learn_s, sync_s, step_s (see `PhaseTimes`)

`MetricsLog` writes each record (and each evaluation's eval/... values) to the backends of the
`logging` config section (dllmrl_core/drive/backends.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from dllmrl_core.contract.verdict import Verdict
from dllmrl_core.drive.backends import LoggingConfig, open_backends
from dllmrl_core.training.step import StepMetrics


@dataclass(frozen=True)
class PhaseTimes:
    """Seconds of one optimizer step's phases; 0 for a phase the step did not run (the μ − 1 steps
    that reuse a batch sample and score nothing).

    rollout: sampling the batch (Ray: from the batch's admission to its last chunk, which may overlap
             learning on the previous batch when train.max_staleness = 1)
    reward:  verifying it (Ray: the part after the last chunk was generated, which sampling did not hide)
    learn:   the learner's prepare (old / reference log-probs) and optimizer step
    sync:    publishing the new weights to the samplers (0 in the single-process loop, whose sampler is
             the learner, and under placement colocated)
    """

    rollout: float = 0.0
    reward: float = 0.0
    learn: float = 0.0
    sync: float = 0.0

    @property
    def total(self) -> float:
        return self.rollout + self.reward + self.learn + self.sync


@dataclass(frozen=True)
class RewardStats:
    """What a batch's verdicts (main rows, then branches) say about the policy."""

    mean: float
    correct: float
    well_formed: float
    timeouts: int
    crashes: int
    components: dict[str, float] = field(default_factory=dict)
    branch_mean: float | None = None

    @classmethod
    def of(cls, main: list[Verdict], branch: list[Verdict]) -> RewardStats:
        n = max(len(main), 1)
        names = sorted({k for v in main for k in v.components})
        return cls(mean=sum(v.reward for v in main) / n, correct=sum(v.correct for v in main) / n,
                   well_formed=sum(v.well_formed for v in main) / n, timeouts=sum(v.timed_out for v in main + branch),
                   crashes=sum(v.crashed for v in main + branch),
                   components={k: sum(v.components.get(k, 0.0) for v in main) / n for k in names},
                   branch_mean=sum(v.reward for v in branch) / len(branch) if branch else None)


@dataclass(frozen=True)
class StepRecord:
    """Everything logged about one optimizer step."""

    reward: RewardStats
    learner: StepMetrics
    times: PhaseTimes
    weight_version: int
    staleness: int

    def as_dict(self) -> dict[str, float]:
        r, m, t = self.reward, self.learner, self.times
        out = {"reward/mean": r.mean, "reward/correct": r.correct, "reward/well_formed": r.well_formed,
               "reward/timeouts": float(r.timeouts), "reward/crashes": float(r.crashes),
               **{f"reward/{k}": v for k, v in r.components.items()},
               "rollout/weight_version": float(self.weight_version), "rollout/staleness": float(self.staleness)}
        if r.branch_mean is not None:
            out["reward/branch_mean"] = r.branch_mean
        if m.batch is not None:
            b = m.batch
            out.update({"rollout/completion_len_mean": b.completion_len_mean,
                        "rollout/completion_len_max": b.completion_len_max,
                        "rollout/zero_adv_share": b.zero_adv_share})
            if t.rollout > 0:
                out["rollout/tokens_per_s"] = b.completion_tokens / t.rollout
        skip = {"has_ref", "batch"} | (set() if m.has_ref else {"kl"})
        out.update({f"learner/{f.name}": float(getattr(m, f.name)) for f in fields(m) if f.name not in skip})
        out.update({"time/rollout_s": t.rollout, "time/reward_s": t.reward, "time/learn_s": t.learn,
                    "time/sync_s": t.sync, "time/step_s": t.total})
        return out


class MetricsLog:
    """The run's metrics on every backend of its `logging` section, one record per step."""

    def __init__(self, directory: str | Path, cfg: LoggingConfig = LoggingConfig(), run_config: dict | None = None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.backends = open_backends(cfg, self.dir, run_config or {})

    def rewind(self, step: int) -> None:
        """Forget every record after `step`: a run resumed from the checkpoint of `step` logs those
        steps again, and each step is then in the log once (jsonl and TensorBoard; see drive/backends.py
        for W&B and MLflow)."""
        for backend in self.backends:
            backend.rewind(step)

    def log(self, step: int, values: dict[str, float]) -> None:
        clean = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        for backend in self.backends:
            backend.log(step, clean)

    def close(self) -> None:
        for backend in self.backends:
            backend.close()
