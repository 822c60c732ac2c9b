"""AGRPO — Amortized GRPO (Zhan, "Simple Policy Gradients for Reasoning with Diffusion Language
Models", arXiv 2510.04019); docs/methods.md (AGRPO).

Denoising is an MDP whose action at step t is the set U_t of tokens revealed at t, so the policy
gradient is exact per step:  ∇J = E[A · Σ_t Σ_{j∈U_t} ∇ log f_θ(o_j | x_t)].
AGRPO estimates the sum over t with k Monte-Carlo steps per sequence:

    A_i = r_i − mean_group(r)
    t ~ U{0..last_i} (or entropy importance sampling with weight w = (1/(last_i+1)) / p(t)),
        stratified: u = (randperm(Bk) + U(0,1)) / Bk
    ρ_j = π_θ(o_j | x_t) / π_old(o_j | x_t)  under the exact behaviour policy (logits / T restricted
        to the recorded top-k/top-p support), so π_old is the sampler's recorded log-prob
    ℓ_j = w · [−min(ρ_j A, clip(ρ_j, 1±ε) A) + β ρ_j k3_j]
    loss = Σ ℓ / (k · B)      (in expectation: (1/B) Σ_i (1/(last_i+1)) Σ_t Σ_{j∈U_t} ℓ_ij)

last_i is the last step that revealed a non-EOS token. The support is the one the sampler recorded,
built with AGRPO's top-p rule (`sampler.top_p_rule: agrpo`, the default: the token whose cumulative
mass crosses top_p is dropped); `nucleus` keeps that token and departs from AGRPO's behaviour policy.
Departure: entropy importance sampling uses the recorded entropy of the untempered model
distribution (AGRPO: of its sampling distribution); any full-support proposal keeps the estimator
unbiased.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.contract.types import RolloutBatch, ScoredBatch
from dllmrl_core.likelihood import step_query
from dllmrl_core.objectives.common import (LossOutput, MemoryShape, PolicyTerm, RolloutOptions, SpecialTokens,
                                           group_advantages, no_branches, no_rules, revealed_per_step,
                                           stratified_uniforms, token_pg_loss)


class Config(ConfigModel):
    """AGRPO's train.yaml."""

    mc_samples: int = Field(24, ge=1, description="k sampled steps per sequence (AGRPO train.yaml 24)")
    low_discrepancy: bool = Field(True, description="stratified step sampling (AGRPO)")
    importance_sampling: Literal["uniform", "entropy"] = Field("entropy", description="step proposal (AGRPO)")
    epsilon: float = Field(0.2, gt=0, description="clip range ε (AGRPO)")
    beta: float = Field(0.0, ge=0, description="KL coefficient β, KL weighted by ρ (AGRPO: 0)")
    num_iterations: int = Field(1, ge=1, description="optimizer steps per batch (AGRPO: 1)")
    scale_rewards: bool = Field(False, description="divide advantages by the group std (off in AGRPO)")


OLD_LOGP = "sampler"
DATA = {  # AGRPO's data.py: files under task.data_dir (spg/ = SPG's sudoku split), hub names otherwise
    "gsm8k": {"test_source": "hub:madrylab/gsm8k-platinum:main:test"},
    "math500": {"train_source": "hub:qwedsacf/competition_math:train", "exclude_test": True,
                "math": {"max_level": 4}},
    "countdown": {"train_source": "hub:Jiayi-Pan/Countdown-Tasks-3to4:train", "train_rows": 20000,
                  "exclude_test": True, "test_source": "d1/countdown_cd3_test.jsonl"},
    "sudoku": {"train_source": "spg/train_sudoku_split_new.csv", "train_rows": 20000,
               "test_source": "spg/test_sudoku_split_new.csv"},
}
validate = no_rules


def recipe(task: str) -> dict:
    """AGRPO's train.yaml: its sampler, LoRA, optimizer, G = 8, its prompts, rewards, answer checking and data."""
    out = {"model": {"lora": {"r": 64, "alpha": 64, "dropout": 0.0, "targets": "all"}},
           "task": {"reward_set": "agrpo", "prompt_style": "agrpo", "eval_protocol": "agrpo", **DATA[task]},
           "sampler": {"gen_length": 384, "steps": 128, "block_length": 12, "temperature": 0.6, "top_k": 150,
                       "top_p": 0.99, "top_p_rule": "agrpo", "remasking": "random"},
           "optim": {"lr": 5.0e-6, "betas": [0.9, 0.99], "weight_decay": 0.01, "max_grad_norm": 1.0,
                     "schedule": "cosine", "warmup_steps": 50, "micro_batch_rows": "auto"},
           "train": {"group_size": 8}}
    if task == "sudoku":  # AGRPO's Sudoku system prompt holds three worked examples
        out["plan"] = {"prompt_tokens": 1024}
    return out


def rollout_options(cfg: Config, steps: int, batch_size: int, generator: torch.Generator) -> RolloutOptions:
    return RolloutOptions(record_support=True)


branch = no_branches


def num_iterations(cfg: Config) -> int:
    return cfg.num_iterations


def needs_ref(cfg: Config) -> bool:
    return cfg.beta > 0


def memory_shape(cfg: Config, sampler, rows: int) -> MemoryShape:
    """k step queries per rollout, each scoring the tokens one step revealed."""
    return MemoryShape(terms=((rows * cfg.mc_samples, revealed_per_step(sampler)),))


def last_content_step(rollout: RolloutBatch, stop_ids: tuple[int, ...]) -> torch.Tensor:
    """[B] the last step that revealed a non-stop token (0 if there is none)."""
    content = ~torch.isin(rollout.completion_ids, torch.tensor(stop_ids, device=rollout.completion_ids.device))
    return rollout.reveal_step.masked_fill(~content, 0).max(dim=1).values


def sample_steps(rollout: RolloutBatch, last: torch.Tensor, cfg: Config,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """steps [B, k] and importance weights [B, k] (ones under uniform sampling)."""
    B, k, S = rollout.batch_size, cfg.mc_samples, rollout.steps
    u = stratified_uniforms(B * k, generator, cfg.low_discrepancy).view(B, k).double()
    last = last.cpu()
    if cfg.importance_sampling == "uniform":
        steps = (u * (last[:, None] + 1)).long().minimum(last[:, None])
        return steps.to(rollout.reveal_step.device), torch.ones(B, k)
    reveal = rollout.reveal_step.cpu()
    mass = torch.zeros(B, S, dtype=torch.float64).scatter_add_(1, reveal, rollout.token_entropy.cpu().double())
    mass = (mass + 1e-8).masked_fill(torch.arange(S) > last[:, None], 0.0)
    p = mass / mass.sum(1, keepdim=True)
    steps = torch.searchsorted(p.cumsum(1), u).minimum(last[:, None])
    weights = (1.0 / (last[:, None] + 1)) / p.gather(1, steps)
    return steps.to(rollout.reveal_step.device), weights.float()


def prepare(scored: ScoredBatch, cfg: Config, special: SpecialTokens,
            generator: torch.Generator) -> list[list[PolicyTerm]]:
    rollout = scored.rollout
    advantages = group_advantages(scored.rewards, scored.group_ids, cfg.scale_rewards)
    steps, weights = sample_steps(rollout, last_content_step(rollout, special.stop_ids), cfg, generator)
    rows = torch.arange(rollout.batch_size, device=steps.device).repeat_interleave(cfg.mc_samples)
    query = step_query(rollout, rows, steps.flatten(), behaviour=True)
    term = PolicyTerm(kind="policy", query=query, advantages=advantages[rows], weights=weights.flatten().to(advantages),
                      normalizer=float(cfg.mc_samples * rollout.batch_size),
                      old_logp=rollout.behaviour_logp[rows] * query.target_mask)
    return [[term] for _ in range(cfg.num_iterations)]


def loss(term: PolicyTerm, logp: torch.Tensor, entropy: torch.Tensor, cfg: Config) -> LossOutput:
    return token_pg_loss(term, logp, entropy, eps_low=cfg.epsilon, eps_high=cfg.epsilon, beta=cfg.beta,
                         kl_times_ratio=True)
