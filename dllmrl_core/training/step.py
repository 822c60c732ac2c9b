"""One learner step: policy terms → log-probs → objective loss → backward → clip → AdamW step.

Knows nothing of Ray. Forwards run under the predictor's dtype policy (bf16 autocast on GPU,
`MaskPredictor.autocast`), the same as the sampler's. Under DDP the policy's module is DDP-wrapped and gradients are averaged
over ranks; terms carry global normalizers, so the caller scales by the world size
(`loss_scale`) to turn that average back into the full-batch sum.

A step whose gradient is not finite (a NaN or inf loss, an overflow) changes nothing: the update is
skipped, so the adapter and AdamW's moments keep their last good values, and `StepMetrics.skipped`
counts it. The gradient norm is taken after DDP's all-reduce, so every rank skips the same steps.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from dllmrl_core.contract.types import ScoredBatch
from dllmrl_core.likelihood import LogpQuery, token_logp
from dllmrl_core.models.predictor import MaskPredictor
from dllmrl_core.objectives.common import LossOutput, LossStats, PolicyTerm

LossFn = Callable[[PolicyTerm, torch.Tensor, torch.Tensor], LossOutput]


@dataclass(frozen=True)
class BatchStats:
    """The batch a step learns from, computed from the whole batch before DDP shards it (the same on
    every rank).

    completion_len_mean / _max:  tokens per main completion up to and including its first EOS
                                 (d1's token set, `RolloutBatch.completion_mask`)
    completion_tokens:           their sum
    zero_adv_share:              share of main rollouts in groups whose rewards are all equal: their
                                 group-relative advantage is 0, so they carry no policy gradient
    """

    completion_len_mean: float
    completion_len_max: float
    completion_tokens: float
    zero_adv_share: float


def batch_stats(scored: ScoredBatch, eos_id: int | None) -> BatchStats:
    lengths = scored.rollout.completion_mask(eos_id).sum(1).float()
    _, group = scored.group_ids.unique(return_inverse=True)
    rewards = scored.rewards.float()
    top = torch.full((int(group.max()) + 1,), -torch.inf, device=rewards.device).scatter_reduce(0, group, rewards,
                                                                                                   "amax")
    low = torch.full_like(top, torch.inf).scatter_reduce(0, group, rewards, "amin")
    flat = (top == low)[group]
    return BatchStats(completion_len_mean=float(lengths.mean()), completion_len_max=float(lengths.max()),
                      completion_tokens=float(lengths.sum()), zero_adv_share=float(flat.float().mean()))


@dataclass(frozen=True)
class StepMetrics:
    """What one optimizer step did (named for the logs by `dllmrl_core.drive.metrics.StepRecord`).

    kl is the mean k3 estimate against the reference policy, 0 when the method has none (`has_ref`);
    clip_frac, ratio_* and entropy are means over the elements the loss was computed on (tokens, or
    rows for a per-row ratio); `batch` describes the batch being learned from (set by the Learner).
    """

    loss: float
    kl: float
    clip_frac: float
    ratio_mean: float
    ratio_max: float
    grad_norm: float
    entropy: float
    adv_mean: float
    adv_std: float
    adv_abs_max: float
    lr: float
    tokens: float
    skipped: float = 0.0  # 1 when the gradient was not finite and the update was skipped
    has_ref: bool = False
    batch: BatchStats | None = None


def unwrap(model: nn.Module) -> nn.Module:
    """The PeftModel under a DDP wrapper (or the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@contextlib.contextmanager
def adapters_disabled(policy: MaskPredictor):
    """The reference policy: the base model with the LoRA adapter switched off (as in d1)."""
    with unwrap(policy.model).disable_adapter():
        yield


def chunks(n: int, size: int | None, unit: int = 1) -> list[slice]:
    """Slices of at most `size` rows (all if None) that hold whole units of `unit` rows, at least one."""
    step = max((size or n) // unit, 1) * unit
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


@torch.no_grad()
def score_query(policy: MaskPredictor, query: LogpQuery, micro_rows: int | None = None) -> torch.Tensor:
    """[N, L] log-probs of a query without gradient, in row chunks."""
    return torch.cat([token_logp(policy, query.rows(part)).logp for part in chunks(len(query), micro_rows)])


def freeze_old_and_ref(policy: MaskPredictor, iterations: list[list[PolicyTerm]], needs_ref: bool,
                       micro_rows: int | None = None) -> None:
    """Before the first update on a batch: old log-probs where the objective left them to the model
    (none for a ratio-free term), and reference log-probs when the objective has a KL term. Eval mode
    (no dropout), so ρ ≡ 1 at the first step."""
    was_training = policy.model.training
    policy.model.eval()
    try:
        for term in (t for terms in iterations for t in terms):
            if term.old_logp is None and term.ratio:
                term.old_logp = score_query(policy, term.query, micro_rows)
            if needs_ref and term.ref_logp is None:
                with adapters_disabled(policy):
                    term.ref_logp = score_query(policy, term.query, micro_rows)
    finally:
        policy.model.train(was_training)


def train_step(policy: MaskPredictor, optimizer: torch.optim.Optimizer, scheduler, terms: list[PolicyTerm],
               loss_fn: LossFn, *, max_grad_norm: float, micro_rows: int | None = None,
               loss_scale: float = 1.0) -> StepMetrics:
    """Accumulate the gradient of Σ_terms loss over row chunks, clip it, take one optimizer step."""
    model = policy.model
    model.train()
    optimizer.zero_grad(set_to_none=True)
    work = [(term, part) for term in terms for part in chunks(len(term), micro_rows, term.unit)]
    total, stats = 0.0, LossStats()
    for i, (term, part) in enumerate(work):
        sliced = term.rows(part)
        sync = i == len(work) - 1 or not isinstance(model, nn.parallel.DistributedDataParallel)
        with contextlib.nullcontext() if sync else model.no_sync():
            scored = token_logp(policy, sliced.query)
            out = loss_fn(sliced, scored.logp, scored.entropy)
            (out.loss * loss_scale).backward()
        total += float(out.loss.detach())
        stats = stats + out.stats
    params = [p for p in model.parameters() if p.requires_grad]
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm))
    skipped = not math.isfinite(grad_norm)
    if skipped:  # a NaN/inf gradient would poison the adapter and AdamW's moments for good
        optimizer.zero_grad(set_to_none=True)
    else:
        optimizer.step()
    scheduler.step()  # the schedule follows the step count, taken or skipped
    adv = torch.cat([t.advantages.detach().float().cpu() for t in terms])
    n = max(stats.count, 1.0)
    return StepMetrics(loss=total, kl=stats.kl_sum / n, clip_frac=stats.clipped / n, ratio_mean=stats.ratio_sum / n,
                       ratio_max=stats.ratio_max, grad_norm=grad_norm, entropy=stats.entropy_sum / n,
                       adv_mean=float(adv.mean()), adv_std=float(adv.std()) if len(adv) > 1 else 0.0,
                       adv_abs_max=float(adv.abs().max()), lr=float(optimizer.param_groups[0]["lr"]),
                       tokens=stats.count, skipped=float(skipped),
                       has_ref=any(t.ref_logp is not None for t in terms))
