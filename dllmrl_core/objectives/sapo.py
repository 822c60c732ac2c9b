"""SAPO — Step-Aware Policy Optimization (Xie et al., arXiv 2510.01544), algorithms.md §3.

diffu-GRPO plus a process reward from intermediate denoising states:

    R_process,i = mean_{n≤N} r(complete_n(x_{t1,i})) − mean_{n≤N} r(complete_n(x_{t2}))
    with t2 = T (fully masked), so the second term is the group's own mean reward;
    Â_i = A_i + λ · 1[A_i > 0 and completion i correct] · R_process,i      (paper Eq. 5, "up-weighting")

The process reward is never mean-normalised (the paper's ablation: normalising pushes samples
with R_process = 0 to negative advantages). The loss is diffu-GRPO's.

Readings of unverified details (the authors' code could not be obtained), each an option:
t1 is uniform over steps 1..S−1 per rollout; continuations append `continuation_extra_masks`
(64) mask tokens after the completion ("append 64 mask tokens"); λ = `process_weight`.
"""

from __future__ import annotations

import torch
from pydantic import Field

from dllmrl_core.objectives import diffu_grpo
from dllmrl_core.objectives.common import MemoryShape, PolicyTerm, SpecialTokens, group_advantages, plain_rollout
from dllmrl_core.sampling.branching import sapo_continuations
from dllmrl_core.types import ScoredBatch


class Config(diffu_grpo.Config):
    """diffu-GRPO's knobs (same defaults) plus SAPO's process reward."""

    num_continuations: int = Field(3, ge=1, description="N continuations per rollout from x_t1 (SAPO: N ≥ 3)")
    process_weight: float = Field(1.0, ge=0, description="λ, weight of the process reward (SAPO Eq. 5)")
    continuation_extra_masks: int = Field(64, ge=0, description="mask tokens appended for continuations (SAPO)")
    require_correct: bool = Field(True, description="up-weight only completions the task scores as correct")


rollout_options = plain_rollout


def branch(model, rollout, cfg: Config, sampler, generator):
    """N continuations from x_{t1}, t1 ~ U{1, ..., S−1} per rollout."""
    if rollout.steps < 2:
        raise ValueError("sapo needs at least 2 denoising steps (sampler.steps)")
    t1 = torch.randint(1, rollout.steps, (rollout.batch_size,), generator=generator, device=generator.device)
    return sapo_continuations(model, rollout, t1, cfg.num_continuations, sampler,
                              extra_masks=cfg.continuation_extra_masks, generator=generator)


num_iterations = diffu_grpo.num_iterations
needs_ref = diffu_grpo.needs_ref
loss = diffu_grpo.loss


def memory_shape(cfg: Config, sampler, rows: int) -> MemoryShape:
    """diffu-GRPO's term; the sampler also denoises N continuations per rollout."""
    return MemoryShape(terms=((rows, sampler.gen_length),), continuations=cfg.num_continuations,
                       extra_masks=cfg.continuation_extra_masks)


def process_rewards(scored: ScoredBatch) -> torch.Tensor:
    """[B] mean continuation reward from x_{t1} minus the group's mean reward (x_{t2} = x_T)."""
    branches = scored.rollout.branches
    B = scored.rollout.batch_size
    cont = torch.zeros(B).index_add_(0, branches.source_row.cpu(), scored.branch_rewards.cpu())
    cont = cont / torch.bincount(branches.source_row.cpu(), minlength=B).clamp(min=1)
    group_mean = scored.rewards - group_advantages(scored.rewards, scored.group_ids)
    return cont.to(scored.rewards.device) - group_mean


def advantages(scored: ScoredBatch, cfg: Config) -> torch.Tensor:
    base = group_advantages(scored.rewards, scored.group_ids, cfg.scale_rewards)
    eligible = base > 0
    if cfg.require_correct:
        eligible &= scored.correct
    return base + cfg.process_weight * eligible.float() * process_rewards(scored)


def prepare(scored: ScoredBatch, cfg: Config, special: SpecialTokens,
            generator: torch.Generator) -> list[list[PolicyTerm]]:
    seeds = diffu_grpo.mask_seeds(cfg, generator)
    return [[t] for t in diffu_grpo.policy_terms(scored, advantages(scored, cfg), cfg, seeds, special)]
