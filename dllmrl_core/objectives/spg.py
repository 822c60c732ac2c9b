"""SPG — Sandwiched Policy Gradient (Wang et al., arXiv 2510.09541; the authors' code
facebookresearch/SPG spg/spg_trainer.py; docs/methods.md "SPG").

A sequence-level policy gradient with no ratio. The intractable log π(o|q) is replaced by a lower
bound (an ELBO) for completions with a positive advantage and by an upper bound (an EUBO, from a
Rényi bound of order β ≥ 1) for the others, so both push the true likelihood the right way (SPG §3):

    A_i  = r_i − mean_group(r)                                              (no std)
    L̂_i  = ELBO_i                          if A_i > 0
           EUBO_i  (eubo) | ω·EUBO_i + (1−ω)·ELBO_i  (mix, "SPG w/ Mixture")  otherwise
    loss = Σ_i −A_i · L̂_i · |o_i| / Σ_i |o_i|        |o_i| = tokens up to and including the first EOS

Both bounds come from T masked copies c of each completion (block-wise masking, SPG's `block_random`):
pick a block b (a uniform permutation of the B_L blocks taken mod the number of blocks the completion
fills), mask k ~ U{1..m} of its m completion tokens, every later position, everything after the first
EOS; every earlier position, prompt and earlier blocks alike, is masked w.p. `p_mask_prompt`. With S_c
the masked completion tokens up to the EOS and t̂_c = |S_c| / |o|:

    ELBO = mean_c mean_{j∈S_c} log p_θ(o_j | x_c)
    EUBO = (1/β) · mean_{j ∈ ∪S_c} log( mean_c p_θ(o_j | x_c)^β · 1[j∈S_c] / t̂_c )

Each of the μ iterations draws its own masks; there is no π_old, so the learner scores no old
log-probs (PolicyTerm.ratio False) and later iterations reuse the batch uncorrected, as SPG does. The T
copies of a completion are one unit of consecutive rows (PolicyTerm.unit); PolicyTerm.weights holds
|o_i|, the length SPG weights each sequence by and measures t̂ against (an idle shard's 0 zeroes it).

Departures from SPG's code:
- the length-weighted mean is over the whole batch; SPG's is per device micro-batch (6 rows; Sudoku 3),
  averaged over micro-batches;
- masks come from the learner's seeded generator (SPG reseeds global RNGs per iteration); when T exceeds
  the number of blocks (SPG asserts T ≤ B_L) the choice continues with a fresh permutation, so the
  tiny one-block configs run;
- padding in the prompt is never masked (SPG masks every prompt position w.p. `p_mask_prompt`);
- blocks are the sampler's `block_length`, as in SPG (one `block_length` for both); SPG's other forward
  processes (all, random, block_all: ablations) and its `min_t`/`max_t` (recipe 0, 1: k ~ U{1..m}) are
  not offered; SPG's KL is unsupported there and absent here.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.likelihood import LogpQuery
from dllmrl_core.objectives.common import (LossOutput, MemoryShape, PolicyTerm, SpecialTokens, group_advantages,
                                           loss_stats, no_branches, no_rules, plain_rollout)
from dllmrl_core.contract.types import RolloutBatch, ScoredBatch


class Bounds(ConfigModel):
    """SPG's likelihood bounds (slurm_scripts/spg_mix: block_random, num_t 2, mix, β 1.5, ω 0.5)."""

    num_t: int = Field(2, ge=1, description="T masked copies per completion (SPG num_t: 2)")
    logp_estimation: Literal["mix", "eubo", "elbo", "zero"] = Field(
        "mix", description="estimate for A ≤ 0: mix = ω·EUBO + (1−ω)·ELBO (SPG w/ Mixture), eubo (SPG w/ EUBO), "
                           "elbo, or zero (negatives dropped); A > 0 always uses the ELBO")
    eubo_beta: float = Field(1.5, ge=1, description="β of the Rényi upper bound (SPG: 1.5; Sudoku 1.0; EUBO-only "
                                                    "Countdown 2.0)")
    mix_weight: float = Field(0.5, ge=0, le=1, description="ω, weight of the EUBO in the mixture (SPG: 0.5)")
    p_mask_prompt: float = Field(0.15, ge=0, le=1, description="masking probability of the prompt and the blocks "
                                                               "before the chosen one (SPG: 0.15)")


class Config(Bounds):
    """SPG w/ Mixture's recipe (slurm_scripts/spg_mix over train.yaml)."""

    num_iterations: int = Field(4, ge=1, description="μ inner iterations per batch, fresh masks each (SPG: 4)")


OLD_LOGP = "none"
rollout_options = plain_rollout
branch = no_branches
validate = no_rules


def recipe(task: str) -> dict:
    """SPG's sbatch files over d1's recipe: β 1.0 on Sudoku (1.5 elsewhere); its Sudoku (`sudoku_new`) is its
    solution-disjoint split at rollout temperature 0.3."""
    if task != "sudoku":
        return {}
    return {"algorithm": {"eubo_beta": 1.0}, "sampler": {"temperature": 0.3},
            "task": {"train_source": "spg/train_sudoku_split_new.csv", "test_source": "spg/test_sudoku_split_new.csv"}}


def num_iterations(cfg: Config) -> int:
    return cfg.num_iterations


def needs_ref(cfg: Config) -> bool:
    return False


def memory_shape(cfg: Bounds, sampler, rows: int) -> MemoryShape:
    """T masked copies per completion, one unit, each scoring its masked completion tokens (at most L)."""
    return MemoryShape(terms=((rows * cfg.num_t, sampler.gen_length),), unit=cfg.num_t)


def block_masks(rollout: RolloutBatch, lengths: torch.Tensor, cfg: Bounds,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """SPG's block_random forward process: ([B, T, P] prompt, [B, T, L] completion) masks, True = masked."""
    (B, L), P, T, width = rollout.completion_ids.shape, rollout.prompt_ids.shape[1], cfg.num_t, rollout.block_length
    n_blocks = L // width
    filled = (lengths - 1) // width + 1                                                # [B] blocks up to the EOS
    perms = torch.cat([torch.rand(B, n_blocks, generator=generator).argsort(1) for _ in range(-(-T // n_blocks))], 1)
    start = (perms[:, :T] % filled[:, None]) * width                                    # [B, T] chosen block's start
    m = (lengths[:, None] - start).clamp(max=width)                                     # its completion tokens
    k = (torch.rand(B, T, generator=generator) * m).long() + 1                          # k ~ U{1..m}
    within = torch.arange(width)
    rank = torch.rand(B, T, width, generator=generator).masked_fill(within >= m[..., None], 2.0).argsort(-1).argsort(-1)
    offset = torch.arange(L) - start[..., None]                                         # [B, T, L]
    in_block = (offset >= 0) & (offset < width)
    picked = rank.gather(-1, offset.clamp(0, width - 1)) < k[..., None]
    chosen = in_block & ((offset >= m[..., None]) | picked)        # k of the first m, and the block's post-EOS rest
    earlier = (offset < 0) & (torch.rand(B, T, L, generator=generator) < cfg.p_mask_prompt)
    prompt = (torch.rand(B, T, P, generator=generator) < cfg.p_mask_prompt) & rollout.prompt_mask.cpu()[:, None]
    return prompt, chosen | (offset >= width) | earlier


def bound_terms(scored: ScoredBatch, advantages: torch.Tensor, cfg: Bounds, special: SpecialTokens,
                generator: torch.Generator, kind: str = "policy") -> PolicyTerm:
    """One term of B·T rows (completion i's T copies consecutive), targets = each copy's masked tokens up to
    the first EOS; weights = |o_i|."""
    rollout = scored.rollout
    device, T = rollout.completion_ids.device, cfg.num_t
    in_completion = rollout.completion_mask(special.eos_id)                             # [B, L]
    lengths = in_completion.sum(1)
    prompt_masked, completion_masked = (m.to(device) for m in block_masks(rollout, lengths.cpu(), cfg, generator))
    rows = torch.arange(rollout.batch_size, device=device).repeat_interleave(T)
    prompt = rollout.prompt_ids[rows].masked_fill(prompt_masked.flatten(0, 1), rollout.mask_id)
    completion = rollout.completion_ids[rows].masked_fill(completion_masked.flatten(0, 1), rollout.mask_id)
    query = LogpQuery(input_ids=torch.cat([prompt, completion], dim=1), attention_mask=rollout.attention_mask[rows],
                      target_ids=rollout.completion_ids[rows],
                      target_mask=completion_masked.flatten(0, 1) & in_completion[rows])
    return PolicyTerm(kind=kind, query=query, advantages=advantages[rows], weights=lengths[rows].float(),
                      normalizer=float(lengths.sum()), unit=T, ratio=False)


def prepare(scored: ScoredBatch, cfg: Config, special: SpecialTokens,
            generator: torch.Generator) -> list[list[PolicyTerm]]:
    advantages = group_advantages(scored.rewards, scored.group_ids)
    return [[bound_terms(scored, advantages, cfg, special, generator)] for _ in range(cfg.num_iterations)]


def elbo(logp: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
    """[n] mean over copies of the mean log-prob over the copy's masked tokens; logp, scored: [n, T, L]."""
    return ((logp * scored).sum(2) / scored.sum(2).clamp(min=1)).mean(1)


def eubo(logp: torch.Tensor, scored: torch.Tensor, length: torch.Tensor, beta: float) -> torch.Tensor:
    """[n] (1/β) mean over positions masked in some copy of log mean_c (p^β · 1[masked] / t̂_c), t̂_c = |S_c| / |o|."""
    t_hat = scored.sum(2) / length.clamp(min=1)[:, None]                                # [n, T]
    avg = (torch.exp(beta * logp) * scored / t_hat.clamp(min=1e-8)[..., None]).mean(1)   # [n, L]
    on = avg > 0
    return (avg.masked_fill(~on, 1.0).log() * on).sum(1) / on.sum(1).clamp(min=1) / beta


def sandwich(term: PolicyTerm, logp: torch.Tensor, cfg: Bounds) -> tuple[torch.Tensor, torch.Tensor]:
    """(L̂ [n], A [n]): the ELBO where A > 0, the configured upper estimate elsewhere."""
    T, L = term.unit, logp.shape[1]
    scored, logp = term.query.target_mask.view(-1, T, L), logp.view(-1, T, L)
    adv, length = term.advantages[::T], term.weights[::T]
    lower = elbo(logp, scored)
    if cfg.logp_estimation == "elbo":
        negative = lower
    elif cfg.logp_estimation == "zero":
        negative = torch.zeros_like(lower)
    else:
        upper = eubo(logp, scored, length, cfg.eubo_beta)
        negative = upper if cfg.logp_estimation == "eubo" else cfg.mix_weight * upper + (1 - cfg.mix_weight) * lower
    return torch.where(adv > 0, lower, negative), adv


def loss(term: PolicyTerm, logp: torch.Tensor, entropy: torch.Tensor, cfg: Bounds) -> LossOutput:
    estimate, adv = sandwich(term, logp, cfg)
    out = (-adv * estimate * term.weights[::term.unit]).sum() / term.normalizer
    T, L = term.unit, logp.shape[1]
    scored = term.query.target_mask.view(-1, T, L)
    seq_entropy = (entropy.view(-1, T, L) * scored).sum((1, 2)) / scored.sum((1, 2)).clamp(min=1)
    ones = torch.ones_like(adv)
    return LossOutput(out, loss_stats(ones, ones, torch.zeros_like(ones, dtype=torch.bool), 0 * ones, seq_entropy))
