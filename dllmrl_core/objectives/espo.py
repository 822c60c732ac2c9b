"""ESPO — ELBO-based Sequence-level Policy Optimization (Ou et al., arXiv 2512.03759; the authors' code
ML-GSAI/ESPO espo/espo_trainer.py; docs/methods.md "ESPO").

The whole completion is one action. Its log-likelihood is replaced by an ELBO estimate ℓ̂ inside a
clipped objective with ONE ratio per sequence, normalised per token, and a quadratic (k2) KL, which
stays bounded at sequence level where k3's exponential does not (ESPO's project page):

    A_i   = r_i − mean_{j ≠ i in group(i)} r_j                                   (leave-one-out)
    ℓ̂(o)  = (1/M) Σ_m ½ [ Σ_{j∈S_m} log p_θ(o_j | x_{S_m}) / t_m + Σ_{j∉S_m} log p_θ(o_j | x_{S_mᶜ}) / t'_m ]
            S_m: n_m of the L completion positions masked (prompt clean), t_m = n_m/(L+1), t'_m = (L−n_m)/(L+1);
            the second copy masks exactly what the first kept (a coupled pair: every token scored once)
    ρ_i   = exp((ℓ̂_θ(o_i) − ℓ̂_old(o_i)) / L)
    ℓ_i   = −min(ρ_i A_i, clip(ρ_i, 1−ε, 1+ε) A_i) + β · ½ (ℓ̂_θ(o_i) − ℓ̂_ref(o_i))² / L
    loss  = Σ_i ℓ_i / B

Mask counts are stratified: per pair m, k ~ U{0..L} and row i masks n_i = round(k + i(L+1)/B) mod (L+1)
positions, chosen by a uniform permutation. Each of the μ iterations draws its own masks, shared by its
old, reference and current ELBOs; old ELBOs of every iteration are taken before the first update (ρ ≡ 1
at the first step). L is the padded completion length: every position counts, EOS padding included.
The 2M masked copies of a completion are one unit of consecutive rows (PolicyTerm.unit).

Departures from ESPO's code:
- the mask counts are stratified over all B rows of the batch, drawn with the learner's generator; ESPO
  stratifies within each per-device micro-batch (2–3 rows), so its masks depend on how rows are laid out
  over devices and gradient-accumulation steps;
- scoring passes the prompt attention mask (ESPO's passes none; its rollout does);
- ESPO's config exposes prompt masking (`p_mask_prompt`, `random_masking`) and `reduce_var` but its
  estimator never masks the prompt and always couples the pair; there are no such knobs here.
"""

from __future__ import annotations

import torch
from pydantic import Field

from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.likelihood import LogpQuery
from dllmrl_core.objectives.common import (LossOutput, MemoryShape, PolicyTerm, SpecialTokens, clipped_surrogate,
                                           group_advantages, loss_stats, no_branches, no_rules, plain_rollout)
from dllmrl_core.contract.types import RolloutBatch, ScoredBatch


class Config(ConfigModel):
    """ESPO's recipes (recipes/run_<task>_llada.sh over train.yaml); defaults = its GSM8K run."""

    num_iterations: int = Field(8, ge=1, description="μ inner iterations per batch, fresh masks each (ESPO: 8)")
    num_mc: int = Field(2, ge=1, description="M coupled mask pairs per completion in the ELBO (ESPO num_mc: 2)")
    epsilon: float = Field(0.2, ge=0, description="clip range ε of the per-token sequence ratio (ESPO: 0.2; "
                                                  "Countdown 0)")
    beta: float = Field(1e-3, ge=0, description="k2 KL coefficient β (ESPO: 1e-3 GSM8K/MATH, 3e-3 Countdown, "
                                                "1e-2 Sudoku)")
    scale_rewards: bool = Field(False, description="divide advantages by the group std (off in ESPO)")


OLD_LOGP = "learner"
RECIPE = {  # ESPO recipes/run_<task>_llada.sh: β, ε, diffusion steps, G
    "gsm8k": (1e-3, 0.2, 256, 6), "math500": (1e-3, 0.2, 256, 16), "countdown": (3e-3, 0.0, 128, 6),
    "sudoku": (1e-2, 0.2, 128, 6),
}
rollout_options = plain_rollout
branch = no_branches
validate = no_rules


def recipe(task: str) -> dict:
    """ESPO's: its β, ε, steps and G per task, rollouts at temperature 1, weight decay 0.01; d1's otherwise."""
    beta, epsilon, steps, group = RECIPE[task]
    return {"algorithm": {"beta": beta, "epsilon": epsilon}, "sampler": {"steps": steps, "temperature": 1.0},
            "optim": {"weight_decay": 0.01}, "train": {"group_size": group}}


def num_iterations(cfg: Config) -> int:
    return cfg.num_iterations


def needs_ref(cfg: Config) -> bool:
    return cfg.beta > 0


def memory_shape(cfg: Config, sampler, rows: int) -> MemoryShape:
    """2M masked copies per completion, one unit, each scoring the positions it masks (at most L)."""
    unit = 2 * cfg.num_mc
    return MemoryShape(terms=((rows * unit, sampler.gen_length),), unit=unit)


def leave_one_out(rewards: torch.Tensor, group_ids: torch.Tensor, scale_std: bool) -> torch.Tensor:
    """A_i = r_i − mean_{j≠i} r_j = n/(n−1) · (r_i − r̄), optionally / (the group's unbiased std + 1e-4)."""
    _, inv, counts = group_ids.unique(return_inverse=True, return_counts=True)
    n = counts[inv].to(rewards)
    centred = group_advantages(rewards, group_ids)
    adv = centred * n / (n - 1).clamp(min=1)
    if scale_std:
        var = torch.zeros(len(counts), device=rewards.device).index_add_(0, inv, centred ** 2)
        adv = adv / ((var / (counts.to(rewards) - 1).clamp(min=1)).sqrt()[inv] + 1e-4)
    return adv


def masked_copies(B: int, L: int, num_mc: int, generator: torch.Generator) -> torch.Tensor:
    """[B, 2M, L] bool: per completion, M pairs (S_m, S_mᶜ) with stratified counts |S_m| over the B rows."""
    copies = []
    for _ in range(num_mc):
        k = torch.randint(0, L + 1, (), generator=generator)
        n = torch.round(k + torch.arange(B) * (L + 1) / B).long() % (L + 1)          # [B] masked counts
        rank = torch.rand(B, L, generator=generator).argsort(1).argsort(1)          # a uniform permutation per row
        masked = rank < n[:, None]
        copies += [masked, ~masked]
    return torch.stack(copies, dim=1)


def elbo_query(rollout: RolloutBatch, num_mc: int, generator: torch.Generator) -> LogpQuery:
    """B·2M rows, completion i's 2M copies consecutive; targets = the positions each copy masks."""
    B, L = rollout.completion_ids.shape
    masked = masked_copies(B, L, num_mc, generator).to(rollout.completion_ids.device)     # [B, U, L]
    U = masked.shape[1]
    rows = torch.arange(B, device=masked.device).repeat_interleave(U)
    targets = rollout.completion_ids[rows]
    noisy = targets.masked_fill(masked.flatten(0, 1), rollout.mask_id)
    return LogpQuery(input_ids=torch.cat([rollout.prompt_ids[rows], noisy], dim=1),
                     attention_mask=rollout.attention_mask[rows], target_ids=targets, target_mask=masked.flatten(0, 1))


def prepare(scored: ScoredBatch, cfg: Config, special: SpecialTokens,
            generator: torch.Generator) -> list[list[PolicyTerm]]:
    unit = 2 * cfg.num_mc
    adv = leave_one_out(scored.rewards, scored.group_ids, cfg.scale_rewards).repeat_interleave(unit)
    B = scored.rollout.batch_size
    return [[PolicyTerm(kind="policy", query=elbo_query(scored.rollout, cfg.num_mc, generator), advantages=adv,
                        normalizer=float(B), unit=unit)] for _ in range(cfg.num_iterations)]


def elbo(logp: torch.Tensor, masked: torch.Tensor, unit: int) -> torch.Tensor:
    """[N/unit] ℓ̂ from the log-probs [N, L] of each completion's `unit` consecutive copies: a copy that masks
    n positions contributes Σ log p / t with t = n/(L+1); the mean over the copies is ½ per pair, 1/M per pair."""
    L = masked.shape[1]
    n = masked.sum(1)
    per_copy = (logp * masked).sum(1) * (L + 1) / n.clamp(min=1)
    return per_copy.view(-1, unit).mean(1)


def loss(term: PolicyTerm, logp: torch.Tensor, entropy: torch.Tensor, cfg: Config) -> LossOutput:
    masked, unit = term.query.target_mask, term.unit
    L = masked.shape[1]
    ell = elbo(logp, masked, unit)                                                    # [n] sequences
    adv, weights = term.advantages[::unit], term.weights[::unit]
    pg, ratio, was_clipped = clipped_surrogate((ell - elbo(term.old_logp, masked, unit)) / L, adv, cfg.epsilon,
                                               cfg.epsilon)
    kl = 0.5 * (ell - elbo(term.ref_logp, masked, unit)) ** 2 / L if cfg.beta > 0 else torch.zeros_like(pg)
    out = ((pg + cfg.beta * kl) * weights).sum() / term.normalizer
    tokens = masked.view(-1, unit, L).sum((1, 2)).clamp(min=1)
    seq_entropy = (entropy * masked).view(-1, unit, L).sum((1, 2)) / tokens
    return LossOutput(out, loss_stats(torch.ones_like(pg), ratio, was_clipped, kl, seq_entropy))
