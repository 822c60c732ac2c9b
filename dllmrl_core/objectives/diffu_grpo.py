"""diffu-GRPO (d1: Zhao et al. 2025, arXiv 2504.12216; docs/methods.md "diffu-GRPO (d1)").

    A_i   = r_i − mean_{group(i)} r                                   (no std scaling in d1)
    ρ_ij  = exp(log π̂_θ(o_ij|q') − log π̂_old(o_ij|q'))              (one-step mean-field estimate,
                                                                       q' = prompt masked w.p. p)
    L_ij  = −min(ρ_ij A_i, clip(ρ_ij, 1−ε, 1+ε) A_i) + β·k3(π_ref ‖ π_θ)
    loss  = Σ_ij L_ij m_ij / Σ_ij m_ij       m = completion up to and including the first EOS

Each generated batch serves μ inner iterations (optimizer steps); iteration k masks the prompt
with its own seed, shared by its old, reference and current log-probs. Old log-probs of every
iteration are taken before the first update, so the first step has ρ ≡ 1.

Departures from d1's code: the token mean is over the whole batch (d1: per device); μ = 1 with
β > 0 works (d1 raises a NameError there); the reference is the base with adapters disabled, as in
d1, but never 4-bit here unless the user loads it so.
"""

from __future__ import annotations

import torch
from pydantic import Field

from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.contract.types import ScoredBatch
from dllmrl_core.likelihood import mean_field_query
from dllmrl_core.objectives.common import (LossOutput, MemoryShape, PolicyTerm, SpecialTokens, group_advantages,
                                           no_branches, no_rules, plain_rollout, token_pg_loss)


class Config(ConfigModel):
    """d1's published recipe (slurm_scripts/train.yaml + sbatch overrides)."""

    beta: float = Field(0.04, ge=0, description="KL coefficient β to the reference (d1)")
    epsilon: float = Field(0.5, gt=0, description="clip range ε (d1 recipe 0.5; its config default 0.2)")
    num_iterations: int = Field(12, ge=1, description="μ inner iterations per batch (d1: 12 GSM8K/MATH, 8 Countdown/Sudoku)")
    p_mask_prompt: float = Field(0.15, ge=0, le=1, description="prompt masking probability (d1 recipe 0.15)")
    random_masking: bool = Field(True, description="fresh mask seed per iteration (d1); False = seed 42 always")
    scale_rewards: bool = Field(False, description="divide advantages by the group std (off in d1)")


OLD_LOGP = "learner"
D1_ITERATIONS = {"gsm8k": 12, "math500": 12, "countdown": 8, "sudoku": 8}  # d1's μ per task (its sbatch files)
rollout_options = plain_rollout
branch = no_branches
validate = no_rules


def recipe(task: str) -> dict:
    """d1's recipe is the generator's base; only μ changes with the task."""
    return {"algorithm": {"num_iterations": D1_ITERATIONS[task]}}


def num_iterations(cfg: Config) -> int:
    return cfg.num_iterations


def needs_ref(cfg: Config) -> bool:
    return cfg.beta > 0


def memory_shape(cfg: Config, sampler, rows: int) -> MemoryShape:
    """One mean-field term per step: every row scores its completion (at most L positions)."""
    return MemoryShape(terms=((rows, sampler.gen_length),))


def mask_seeds(cfg: Config, generator: torch.Generator) -> list[int]:
    if not cfg.random_masking:
        return [42] * cfg.num_iterations
    return torch.randint(0, 2**31 - 1, (cfg.num_iterations,), generator=generator).tolist()


def policy_terms(scored: ScoredBatch, advantages: torch.Tensor, cfg: Config, seeds: list[int],
                 special: SpecialTokens, kind: str = "policy") -> list[PolicyTerm]:
    """One mean-field term per inner iteration, all sharing the advantages."""
    terms = []
    for seed in seeds:
        query = mean_field_query(scored.rollout, p_mask_prompt=cfg.p_mask_prompt, seed=seed, eos_id=special.eos_id)
        terms.append(PolicyTerm(kind=kind, query=query, advantages=advantages,
                                normalizer=float(query.target_mask.sum().clamp(min=1))))
    return terms


def prepare(scored: ScoredBatch, cfg: Config, special: SpecialTokens,
            generator: torch.Generator) -> list[list[PolicyTerm]]:
    advantages = group_advantages(scored.rewards, scored.group_ids, cfg.scale_rewards)
    return [[term] for term in policy_terms(scored, advantages, cfg, mask_seeds(cfg, generator), special)]


def loss(term: PolicyTerm, logp: torch.Tensor, entropy: torch.Tensor, cfg: Config) -> LossOutput:
    return token_pg_loss(term, logp, entropy, eps_low=cfg.epsilon, eps_high=cfg.epsilon, beta=cfg.beta)
