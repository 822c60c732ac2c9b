"""wd1 — weighted policy optimisation (Tang, Dolga, Yoon, Bogunovic, arXiv 2507.08838; the authors' code
xiaohangt/wd1 wd1/trainers/rev_grpo_trainer.py; docs/methods.md "wd1").

Ratio-free: only the current policy's likelihood is approximated (d1's one-step mean-field estimate), and
the objective is a weighted log-likelihood that raises completions by a softmax of their advantages over
the group and lowers them by a softmax of the negated advantages (negative-sample unlearning):

    A_i  = r_i − mean_group(r)
    w⁺_i = exp(A_i) / Σ_{j∈group(i)} exp(A_j)          w⁻_i = exp(−A_i) / Σ_{j∈group(i)} exp(−A_j)
    L_i  = Σ_j log π̂_θ(o_ij | q') m_ij                 q' = prompt masked w.p. p, completion fully masked;
                                                         m = completion up to and including the first EOS
    loss = mean over groups of Σ_{i∈group} −(w⁺_i − w⁻_i) L_i        (`negatives: false`: w⁺ only, wd1's PSR trainer)

No π_old and no reference: the learner scores neither (PolicyTerm.ratio False). Each of the μ
iterations masks the prompt with its own seed; later iterations reuse the batch uncorrected, as wd1's.
PolicyTerm.weights hold w⁺ − w⁻ (an idle shard's 0 zeroes its rows).

Departures from wd1's code: its softmax runs over each device micro-batch, which its recipe makes one
group (6 rows, G = 6); here over each group, whatever the layout. Mask seeds are drawn from [0, 2³¹−1) by
the learner's seeded generator (wd1: [0, 4096)); scoring passes the prompt attention mask (wd1's passes
none), as for d1 (diffu_grpo.py).
"""

from __future__ import annotations

import torch
from pydantic import Field

from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.likelihood import mean_field_query
from dllmrl_core.objectives import diffu_grpo
from dllmrl_core.objectives.common import (LossOutput, MemoryShape, PolicyTerm, SpecialTokens, group_advantages,
                                           loss_stats, no_branches, no_rules, plain_rollout)
from dllmrl_core.contract.types import ScoredBatch


class Config(ConfigModel):
    """wd1's run scripts (run/wll_NP_<task>.sh, trainer wll_d1_neg) over its train.yaml."""

    num_iterations: int = Field(12, ge=1, description="μ inner iterations per batch (wd1: 12; Sudoku 8)")
    p_mask_prompt: float = Field(0.15, ge=0, le=1, description="prompt masking probability (wd1: 0.15)")
    random_masking: bool = Field(True, description="fresh mask seed per iteration (wd1); False = seed 42 always")
    negatives: bool = Field(True, description="lower completions by softmax(−A) too (wd1, wll_d1_neg); false = "
                                              "positive weights only (wll_d1_pos_only)")


OLD_LOGP = "none"
ITERATIONS = {"gsm8k": 12, "math500": 12, "countdown": 12, "sudoku": 8}  # NUM_ITER of run/wll_NP_<task>.sh
rollout_options = plain_rollout
branch = no_branches
validate = no_rules


def recipe(task: str) -> dict:
    """wd1's: d1's train.yaml on 4 GPUs × 6 × 2 accumulation steps = 8 prompts × G 6 per step, its μ."""
    return {"algorithm": {"num_iterations": ITERATIONS[task]}, "train": {"prompts_per_step": 8}}


def num_iterations(cfg: Config) -> int:
    return cfg.num_iterations


def needs_ref(cfg: Config) -> bool:
    return False


def memory_shape(cfg: Config, sampler, rows: int) -> MemoryShape:
    """One mean-field term per step: every row scores its completion (at most L positions)."""
    return MemoryShape(terms=((rows, sampler.gen_length),))


def group_softmax(x: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """[B] exp(x_i) / Σ_{j ∈ group(i)} exp(x_j)."""
    _, inv = group_ids.unique(return_inverse=True)
    top = torch.zeros(int(inv.max()) + 1, device=x.device).scatter_reduce(0, inv, x, "amax", include_self=False)
    e = torch.exp(x - top[inv])
    return e / torch.zeros_like(top).index_add_(0, inv, e)[inv]


def weights(advantages: torch.Tensor, group_ids: torch.Tensor, negatives: bool) -> torch.Tensor:
    """[B] w⁺ − w⁻ (or w⁺)."""
    positive = group_softmax(advantages, group_ids)
    return positive - group_softmax(-advantages, group_ids) if negatives else positive


def prepare(scored: ScoredBatch, cfg: Config, special: SpecialTokens,
            generator: torch.Generator) -> list[list[PolicyTerm]]:
    advantages = group_advantages(scored.rewards, scored.group_ids)
    w = weights(advantages, scored.group_ids, cfg.negatives)
    groups = float(scored.group_ids.unique().numel())
    iterations = []
    for seed in diffu_grpo.mask_seeds(cfg, generator):
        query = mean_field_query(scored.rollout, p_mask_prompt=cfg.p_mask_prompt, seed=seed, eos_id=special.eos_id)
        iterations.append([PolicyTerm(kind="policy", query=query, advantages=advantages, weights=w, normalizer=groups,
                                      ratio=False)])
    return iterations


def loss(term: PolicyTerm, logp: torch.Tensor, entropy: torch.Tensor, cfg: Config) -> LossOutput:
    mask = term.query.target_mask.float()
    out = -(term.weights * (logp * mask).sum(1)).sum() / term.normalizer
    ones = torch.ones_like(logp)
    return LossOutput(out, loss_stats(mask, ones, torch.zeros_like(mask, dtype=torch.bool), 0 * ones, entropy))
