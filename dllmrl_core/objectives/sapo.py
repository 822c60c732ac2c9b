"""SAPO — Step-Aware Policy Optimization (Xie et al., arXiv 2510.01544; docs/methods.md "SAPO").

diffu-GRPO plus a process reward from intermediate denoising states (paper Eq. 4, and Eq. 5's
"up-weighting"):

    R_process,i = acc(x_{t1,i}) − acc(x_{t2})        acc(x) = mean_{n≤N} accuracy(complete_n(x))
    with t2 = T (fully masked), so acc(x_{t2}) is the group's own accuracy;
    Â_i = A_i + λ · 1[A_i > 0 and completion i correct] · max(R_process,i, 0)

Accuracy is the task's evaluation score as a share (1 / 0 for a correct / wrong answer; Sudoku:
the share of empty cells right), never the training reward: the paper's process reward is a
difference of outcome accuracies, and total rewards would count format rewards as progress.
A_i is diffu-GRPO's advantage of the total reward. The process reward is never mean-normalised
(the paper's ablation: normalising pushes samples with R_process = 0 to negative advantages).
The loss is diffu-GRPO's.

Reading of the up-weighting: the paper adds the process reward only to correct responses with a
positive advantage, so that they are reinforced, never penalised. Added with its sign, a negative
R_process (continuations from x_t1 less accurate than the group) can turn such a response's
advantage negative: rewards (3.5, 3.5, 3.5, 1.0) with all three first answers correct give
A_0 = 0.625, and continuations from x_{t1,0} that are all wrong give R_process = 0 − 0.75, so
A_0 − 0.75 = −0.125 (with total rewards, continuations scoring 1.0: 1.0 − 2.875 = −1.875, Â = −1.25).
So the default adds only the positive part (`upweight_only`): Â ≥ A > 0 for every eligible row.
`upweight_only: false` adds R_process with its sign; `process_reward: reward` measures it with
total training rewards (both earlier readings of this file).

Readings of unverified details (the authors' code could not be obtained), each an option:
t1 is uniform over steps 1..S−1 per rollout; continuations append `continuation_extra_masks`
(64) mask tokens after the completion ("append 64 mask tokens"); λ = `process_weight`.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from dllmrl_core.contract.types import ScoredBatch
from dllmrl_core.objectives import diffu_grpo
from dllmrl_core.objectives.common import MemoryShape, PolicyTerm, SpecialTokens, group_advantages, plain_rollout
from dllmrl_core.sampling.branching import sapo_continuations


class Config(diffu_grpo.Config):
    """diffu-GRPO's knobs (same defaults) plus SAPO's process reward."""

    num_continuations: int = Field(3, ge=1, description="N continuations per rollout from x_t1 (SAPO: N ≥ 3)")
    process_weight: float = Field(1.0, ge=0, description="λ, weight of the process reward (SAPO Eq. 5)")
    continuation_extra_masks: int = Field(64, ge=0, description="mask tokens appended for continuations (SAPO)")
    require_correct: bool = Field(True, description="up-weight only completions the task scores as correct")
    process_reward: Literal["accuracy", "reward"] = Field(
        "accuracy", description="R_process from outcome accuracies (SAPO Eq. 4) or from total training rewards")
    upweight_only: bool = Field(
        True, description="add only max(R_process, 0), so an eligible advantage never drops (SAPO's up-weighting)")


OLD_LOGP = "learner"
rollout_options = plain_rollout
recipe = diffu_grpo.recipe  # d1's, with SAPO's defaults (N = 3, λ = 1, 64 extra masks)


def validate(run) -> None:
    """`algorithm.sapo.continuation_extra_masks` is a multiple of `sampler.block_length`, `sampler.steps ≥ 2` and
    `sampler.style: llada`."""
    extra, sampler = run.algorithm.sapo.continuation_extra_masks, run.sampler
    if extra % sampler.block_length:
        raise ValueError(f"algorithm.sapo.continuation_extra_masks ({extra}) must be a multiple of "
                         f"sampler.block_length ({sampler.block_length})")
    if sampler.style == "dream":
        raise ValueError("sampler.style: sapo continues rollouts from visited states, which only LLaDA's loop "
                         "does (style: llada)")
    if sampler.steps < 2:
        raise ValueError("sampler.steps: sapo needs at least 2 denoising steps")


def branch(model, rollout, cfg: Config, sampler, generator):
    """N continuations from x_{t1}, t1 ~ U{1, ..., S−1} per rollout (S ≥ 2: `validate`)."""
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


def process_rewards(scored: ScoredBatch, cfg: Config) -> torch.Tensor:
    """[B] R_process: mean outcome of the continuations from x_{t1} minus the group's mean outcome
    (x_{t2} = x_T), outcome = accuracy (`process_reward: accuracy`) or total reward."""
    main, cont = outcomes(scored, cfg.process_reward)
    branches = scored.rollout.branches
    B = scored.rollout.batch_size
    rows = branches.source_row.cpu()
    from_t1 = torch.zeros(B).index_add_(0, rows, cont.float().cpu()) / torch.bincount(rows, minlength=B).clamp(min=1)
    group_mean = main - group_advantages(main, scored.group_ids)
    return from_t1.to(main.device) - group_mean


def outcomes(scored: ScoredBatch, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """([B], [M]) outcome of each main and each continuation completion."""
    if kind == "reward":
        return scored.rewards, scored.branch_rewards
    if scored.branch_accuracy is None:
        raise ValueError("sapo process_reward=accuracy needs the continuations' accuracies "
                         "(ScoredBatch.branch_accuracy)")
    main = scored.correct.float() if scored.accuracy is None else scored.accuracy.float()
    return main, scored.branch_accuracy


def advantages(scored: ScoredBatch, cfg: Config) -> torch.Tensor:
    base = group_advantages(scored.rewards, scored.group_ids, cfg.scale_rewards)
    eligible = base > 0
    if cfg.require_correct:
        eligible &= scored.correct
    process = process_rewards(scored, cfg)
    if cfg.upweight_only:
        process = process.clamp(min=0)
    return base + cfg.process_weight * eligible.float() * process


def prepare(scored: ScoredBatch, cfg: Config, special: SpecialTokens,
            generator: torch.Generator) -> list[list[PolicyTerm]]:
    seeds = diffu_grpo.mask_seeds(cfg, generator)
    return [[t] for t in diffu_grpo.policy_terms(scored, advantages(scored, cfg), cfg, seeds, special)]
