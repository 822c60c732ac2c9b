"""EGSPO / EGSPO-SA (Kunde et al., "Reinforcement Learning for Diffusion LLMs with Entropy-Guided
Step Selection and Stepwise Advantages", arXiv 2603.12554); docs/methods.md (EGSPO).

The denoising trajectory is a finite-horizon MDP; the exact policy gradient is a sum over steps.
EGSPO keeps the K steps with the highest mean entropy of their revealed tokens and values each
with the one-step greedy completion x̂^(t) of its input state:

    R_{i,t} = r(s_T) + λ1 · (r(s_T) − r(x̂^(t)))          (/(1+λ1) if normalize_returns)
    A_{i,k} = R_{i,k} − mean_{group} R_{·,k}                (k = the k-th selected step, see below)
    log π(step t) = Σ_{j revealed at t} log softmax(ℓ_j(s_t))[o_j]      (untempered; "mean" optional)
    ℓ = −min(ρA, clip(ρ, 1−ε, 1+ε_high)A) + β k3          (ρ per step, asymmetric clip)
    loss = mean over (rollout, step) / tokens-per-step      (tokens-per-step = L / S; "mean": no division)

λ1 = 0 is plain EGSPO. `standard_grpo_returns` uses A = (r − mean r) + λ1·(r(s_T) − r(x̂^(t))).
Slots follow EGSPO's trainer: the K steps stay in selection order (`slot_order: selection`), so with
high_entropy the baseline of slot k is the group mean over each rollout's k-th highest-entropy step;
`slot_order: time` pairs the k-th earliest steps instead. `uniform` is EGSPO's
linspace(0, S−2, K−1).long() plus the final step (sampling/branching.py `select_steps`).

Departures:
- EGSPO takes one gradient micro-step per selected step, cycling through the K steps of a rollout;
  `updates: per_step` does that (K optimizer steps per rollout), the default `accumulate` sums the
  K steps into one optimizer step so every method spends one update per rollout batch.
- `selection: random` draws K−1 distinct steps per rollout plus the final one; EGSPO draws them with
  replacement, once for all rollouts on a device (and under terminate_at_last_non_eos K steps per
  rollout, with no forced final step). Distinct steps never count one step twice, and a per-rollout
  draw does not depend on how rollouts are laid out over devices.
- Under terminate_at_last_non_eos the last allowed step is raised to at least K−1, so K distinct
  steps exist (EGSPO's top-k fails there; its uniform and random modes repeat steps).
- tokens-per-step is L / S; EGSPO's trainer uses the integer L // S, the same whenever S divides L
  (every EGSPO and d1 recipe), and L / S also serves S > L, where L // S would be 0.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.contract.types import ScoredBatch
from dllmrl_core.likelihood import step_query
from dllmrl_core.objectives.agrpo import last_content_step
from dllmrl_core.objectives.common import (LossOutput, MemoryShape, PolicyTerm, RolloutOptions, SpecialTokens,
                                           group_advantages, no_rules, revealed_per_step, row_pg_loss)
from dllmrl_core.sampling.branching import greedy_branches, select_steps


class Config(ConfigModel):
    """EGSPO's train.sh (which overrides its train.yaml)."""

    num_steps: int = Field(8, ge=1, description="K selected steps per rollout (EGSPO logps_eval_num_steps)")
    selection: Literal["high_entropy", "random", "uniform"] = Field("high_entropy", description="step selection")
    slot_order: Literal["selection", "time"] = Field(
        "selection", description="how the K selected steps are paired across a group for the baseline: selection = "
                                 "k-th selected (high_entropy: k-th highest entropy, as EGSPO), time = k-th earliest")
    terminate_at_last_non_eos: bool = Field(False, description="only steps up to the last non-EOS reveal")
    lambda1: float = Field(0.5, ge=0, description="λ1, weight of the stepwise advantage (0 = plain EGSPO)")
    normalize_returns: bool = Field(True, description="divide returns by (1 + λ1)")
    standard_grpo_returns: bool = Field(False, description="A = (r − mean r) + λ1 · stepwise advantage")
    epsilon: float = Field(0.2, gt=0, description="lower clip ε")
    epsilon_high: float = Field(0.5, gt=0, description="upper clip ε_high")
    beta: float = Field(0.04, ge=0, description="KL coefficient β (k3 on step log-probs)")
    aggregation: Literal["sum", "mean"] = Field("sum", description="step log-prob: sum or mean over its tokens")
    updates: Literal["accumulate", "per_step"] = Field("accumulate", description="one update per rollout, or per step")


OLD_LOGP = "sampler"
validate = no_rules


def recipe(task: str) -> dict:
    """EGSPO's train.sh: lr 3e-5 (10× d1's) and G = 8, otherwise d1's recipe."""
    return {"optim": {"lr": 3.0e-5}, "train": {"group_size": 8}}


def rollout_options(cfg: Config, steps: int, batch_size: int, generator: torch.Generator) -> RolloutOptions:
    return RolloutOptions(record_greedy_fills=True)


def branch(model, rollout, cfg: Config, sampler, generator):
    last = last_content_step(rollout, model.stop_ids) if cfg.terminate_at_last_non_eos else None
    steps = select_steps(rollout, cfg.num_steps, cfg.selection, last, generator)      # [B, K], selection order
    return greedy_branches(rollout, steps.sort(dim=1).values if cfg.slot_order == "time" else steps)


def num_iterations(cfg: Config) -> int:
    return cfg.num_steps if cfg.updates == "per_step" else 1


def needs_ref(cfg: Config) -> bool:
    return cfg.beta > 0


def memory_shape(cfg: Config, sampler, rows: int) -> MemoryShape:
    """K step queries per rollout (one slot per update with `per_step`); the sampler needs the whole
    completion's logits at every step for the greedy fills."""
    per_term = rows * (cfg.num_steps if cfg.updates == "accumulate" else 1)
    return MemoryShape(terms=((per_term, revealed_per_step(sampler)),), completion_logits=True)


def advantages(scored: ScoredBatch, cfg: Config) -> torch.Tensor:
    """[B, K] stepwise advantages, K selected steps per rollout in slot order (`slot_order`)."""
    B = scored.rollout.batch_size
    final = scored.rewards[:, None]
    greedy = scored.branch_rewards.view(B, -1)
    scale = (1 + cfg.lambda1) if cfg.normalize_returns else 1.0
    stepwise = final - greedy
    if cfg.standard_grpo_returns:
        return (group_advantages(scored.rewards, scored.group_ids)[:, None] + cfg.lambda1 * stepwise) / scale
    returns = (final + cfg.lambda1 * stepwise) / scale
    return torch.stack([group_advantages(returns[:, k], scored.group_ids) for k in range(returns.shape[1])], dim=1)


def prepare(scored: ScoredBatch, cfg: Config, special: SpecialTokens,
            generator: torch.Generator) -> list[list[PolicyTerm]]:
    rollout, branches = scored.rollout, scored.rollout.branches
    adv = advantages(scored, cfg)                                           # [B, K]
    B, K = adv.shape
    # EGSPO divides by tokens-per-step (L / S) only a summed step log-prob's loss; a mean is per token already
    per_row = rollout.gen_length / rollout.steps if cfg.aggregation == "sum" else 1.0
    query = step_query(rollout, branches.source_row, branches.step, behaviour=False)
    old = rollout.model_logp[branches.source_row] * query.target_mask
    slot = torch.arange(K, device=adv.device).repeat(B)                     # which selected step each row is
    if cfg.updates == "accumulate":
        groups = [torch.arange(B * K, device=adv.device)]
    else:
        groups = [(slot == k).nonzero().flatten() for k in range(K)]
    return [[PolicyTerm(kind="policy", query=query.rows(idx), advantages=adv.flatten()[idx],
                        normalizer=len(idx) * per_row, old_logp=old[idx])] for idx in groups]


def loss(term: PolicyTerm, logp: torch.Tensor, entropy: torch.Tensor, cfg: Config) -> LossOutput:
    return row_pg_loss(term, logp, entropy, eps_low=cfg.epsilon, eps_high=cfg.epsilon_high, beta=cfg.beta,
                       reduce=cfg.aggregation)
