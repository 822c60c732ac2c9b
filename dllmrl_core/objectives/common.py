"""Pieces every objective shares: the term contract, group advantages, clipped surrogate, k3 KL.

Shape legend: N query rows, L completion length, B rollouts, G group size.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from dllmrl_core.likelihood.query import LogpQuery
from dllmrl_core.models.tokens import SpecialTokens  # noqa: F401 - part of what every objective imports from here


@dataclass
class RolloutOptions:
    """What an objective asks the sampler to record (see dllmrl_core.sampling.generate)."""

    record_support: bool = False
    record_greedy_fills: bool = False
    keep_logits_steps: torch.Tensor | None = None  # [B] step per row, -1 = none


@dataclass(frozen=True)
class MemoryShape:
    """What a method's batch costs in memory beyond plain sampling (read by the memory planner).

    terms:              (rows, scored positions per row) of each term of one optimizer step
    continuations:      extra rows the sampler denoises from intermediate states (SAPO), per rollout
    extra_masks:        mask tokens those continuations append
    kept_positions:     positions per rollout whose fp32 logits the sampler keeps until branching (DiSPO)
    completion_logits:  every step needs the logits of the whole completion, not only the block (EGSPO)
    unit:               rows one sample needs in the same micro-batch (PolicyTerm.unit; the largest of the terms')
    """

    terms: tuple[tuple[int, int], ...]
    continuations: int = 0
    extra_masks: int = 0
    kept_positions: int = 0
    completion_logits: bool = False
    unit: int = 1


def revealed_per_step(sampler) -> int:
    """The most tokens one step of the fixed schedule commits (a step query's targets)."""
    return -(-sampler.block_length // sampler.steps_per_block)


def plain_rollout(cfg, steps: int, batch_size: int, generator: torch.Generator) -> RolloutOptions:
    """`rollout_options` of methods that need nothing beyond the standard records."""
    return RolloutOptions()


def no_branches(model, rollout, cfg, sampler, generator) -> None:
    """`branch` of methods without rollout-time branching."""
    return None


def no_rules(run) -> None:
    """No rules beyond the method's own section."""


@dataclass
class PolicyTerm:
    """One batch of log-prob queries plus everything its loss needs except the current log-probs.

    kind:        which part of the objective this is ("policy"; DiSPO: "base" / "step")
    query:       LogpQuery with N rows
    advantages:  [N] fp32, one advantage per row (broadcast over its targeted tokens)
    weights:     [N] fp32 per-row multipliers (importance weights), ones otherwise
    normalizer:  global divisor of the summed losses: the same on every shard and micro-batch, so
                 per-chunk losses add up to the full-batch loss
    old_logp:    [N, L] fp32 behaviour log-probs; None = the learner takes them from the model
                 before the first update of this batch
    ref_logp:    [N, L] fp32 reference log-probs (adapters disabled), filled when β > 0
    unit:        rows per sample: a loss that needs several rows at once (the masked copies of one
                 completion behind a sequence likelihood) lays them out consecutively; micro-batches
                 and data-parallel shards hold whole units. Advantages and weights repeat over a unit.
    ratio:       False for a ratio-free term: there is no π_old, and the learner scores none
    """

    kind: str
    query: LogpQuery
    advantages: torch.Tensor
    normalizer: float
    weights: torch.Tensor | None = None
    old_logp: torch.Tensor | None = None
    ref_logp: torch.Tensor | None = None
    unit: int = 1
    ratio: bool = True

    def __post_init__(self) -> None:
        if self.weights is None:
            self.weights = torch.ones_like(self.advantages)
        if self.advantages.shape != (len(self.query),) or self.weights.shape != self.advantages.shape:
            raise ValueError(f"PolicyTerm({self.kind}): advantages {tuple(self.advantages.shape)} / weights "
                             f"{tuple(self.weights.shape)} must be [{len(self.query)}]")
        if len(self.query) % self.unit:
            raise ValueError(f"PolicyTerm({self.kind}): {len(self.query)} rows are not whole units of {self.unit}")

    def __len__(self) -> int:
        return len(self.query)

    def rows(self, idx: torch.Tensor | slice) -> PolicyTerm:
        """The same term restricted to some rows (whole units); the normalizer stays global."""
        sliced = {f.name: getattr(self, f.name)[idx] for f in fields(self)
                  if isinstance(getattr(self, f.name), torch.Tensor)}
        return replace(self, query=self.query.rows(idx), **sliced)


@dataclass
class LossStats:
    """Sums over the elements a loss was computed on (add them across chunks and ranks)."""

    count: float = 0.0        # tokens (per-token losses) or rows (per-row ratios)
    clipped: float = 0.0      # elements where the clip was active
    ratio_sum: float = 0.0
    ratio_max: float = 0.0
    kl_sum: float = 0.0
    entropy_sum: float = 0.0

    def __add__(self, other: LossStats) -> LossStats:
        return LossStats(self.count + other.count, self.clipped + other.clipped, self.ratio_sum + other.ratio_sum,
                         max(self.ratio_max, other.ratio_max), self.kl_sum + other.kl_sum,
                         self.entropy_sum + other.entropy_sum)


@dataclass
class LossOutput:
    loss: torch.Tensor  # scalar, this chunk's share of the global loss
    stats: LossStats


def group_advantages(rewards: torch.Tensor, group_ids: torch.Tensor, scale_std: bool = False,
                     eps: float = 1e-4) -> torch.Tensor:
    """A_i = r_i − mean_{j ∈ group(i)} r_j, optionally divided by the group's (unbiased) std + eps
    (d1's diffu-GRPO, arXiv 2504.12216: no std scaling; TRL's scale_rewards=True divides)."""
    _, inv = group_ids.unique(return_inverse=True)
    n = torch.zeros(int(inv.max()) + 1, device=rewards.device).index_add_(0, inv, torch.ones_like(rewards))
    mean = torch.zeros_like(n).index_add_(0, inv, rewards) / n
    adv = rewards - mean[inv]
    if scale_std:
        var = torch.zeros_like(n).index_add_(0, inv, adv ** 2) / (n - 1).clamp(min=1)
        adv = adv / (var.sqrt()[inv] + eps)
    return adv


def clipped_surrogate(logratio: torch.Tensor, adv: torch.Tensor, eps_low: float,
                      eps_high: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO's −min(ρA, clip(ρ, 1−ε_low, 1+ε_high)A) elementwise; also returns ρ and where the clip bit."""
    ratio = torch.exp(logratio)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * adv
    return -torch.minimum(unclipped, clipped), ratio, clipped < unclipped


def k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimator of KL(π_θ ‖ π_ref): exp(Δ) − Δ − 1 with Δ = log π_ref − log π_θ."""
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1


def token_pg_loss(term: PolicyTerm, logp: torch.Tensor, entropy: torch.Tensor, *, eps_low: float, eps_high: float,
                  beta: float, kl_times_ratio: bool = False) -> LossOutput:
    """Per-token clipped policy gradient (+ β·k3), Σ over targeted tokens / term.normalizer.

    kl_times_ratio: multiply each token's KL by its ratio ρ (AGRPO's importance correction).
    """
    mask = term.query.target_mask.float()
    pg, ratio, was_clipped = clipped_surrogate(logp - term.old_logp, term.advantages[:, None], eps_low, eps_high)
    kl = torch.zeros_like(pg)
    if beta > 0:
        kl = k3(logp, term.ref_logp) * (ratio if kl_times_ratio else 1.0)
    per_token = (pg + beta * kl) * term.weights[:, None]
    loss = (per_token * mask).sum() / term.normalizer
    return LossOutput(loss, loss_stats(mask, ratio, was_clipped, kl, entropy))


def row_pg_loss(term: PolicyTerm, logp: torch.Tensor, entropy: torch.Tensor, *, eps_low: float, eps_high: float,
                beta: float, reduce: str = "sum") -> LossOutput:
    """Clipped policy gradient with ONE ratio per row, from the row's summed (or mean) log-probs
    over its targeted tokens (EGSPO's step-level ratio, DiSPO's state-level ratio)."""
    mask = term.query.target_mask.float()
    count = mask.sum(1).clamp(min=1)
    scale = count if reduce == "mean" else torch.ones_like(count)

    def agg(x: torch.Tensor) -> torch.Tensor:
        return (x * mask).sum(1) / scale

    pg, ratio, was_clipped = clipped_surrogate(agg(logp) - agg(term.old_logp), term.advantages, eps_low, eps_high)
    kl = k3(agg(logp), agg(term.ref_logp)) if beta > 0 else torch.zeros_like(pg)
    loss = ((pg + beta * kl) * term.weights).sum() / term.normalizer
    rows = torch.ones_like(pg)
    stats = loss_stats(rows, ratio, was_clipped, kl, agg(entropy) / (count / scale))
    return LossOutput(loss, stats)


def loss_stats(mask: torch.Tensor, ratio: torch.Tensor, clipped: torch.Tensor, kl: torch.Tensor,
               entropy: torch.Tensor) -> LossStats:
    """Sums over the elements where `mask` > 0 (tokens, or rows with a ones mask)."""
    with torch.no_grad():
        on = mask > 0
        return LossStats(count=float(on.sum()), clipped=float(clipped[on].sum()), ratio_sum=float(ratio[on].sum()),
                         ratio_max=float(ratio[on].max()) if bool(on.any()) else 0.0, kl_sum=float(kl[on].sum()),
                         entropy_sum=float(entropy[on].sum()))


def stratified_uniforms(n: int, generator: torch.Generator, low_discrepancy: bool) -> torch.Tensor:
    """[n] uniforms in [0, 1); low_discrepancy: one per stratum (randperm(n) + U) / n (arXiv 2409.02908 App. G.2)."""
    u = torch.rand(n, generator=generator)
    if not low_discrepancy:
        return u
    return (torch.randperm(n, generator=generator).float() + u) / n
