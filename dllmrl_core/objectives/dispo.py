"""DiSPO — Diffusion-State Policy Optimization (Oba, Furuta, Okazaki, arXiv 2602.06462; docs/methods.md
"DiSPO"), on top of diffu-GRPO or SPG (its Table 1 uses both as the base optimiser).

At one late-biased step t per trajectory (p(t) ∝ ((t+1)/S)^degree), branch the state s_t: draw Z
joint fillings a_z of all masked positions from the logits cached by the sampler (no extra
diffusion passes), FILL, score with the terminal reward, and update only the filled tokens
(paper Eq. 6–7):

    A_{t,z}   = R_{t,z} − mean_z R_{t,z}                       (same-state group)
    log π̃(a|s) = Σ_{i ∈ M_t} log π̃(a_i | s^(m), i)             (prompt masked as in d1)
    L_step^(t) = −(1/Z) Σ_z min(ρ_z A_z, clip(ρ_z, 1±ε) A_z) + β k3    (ρ per state)
    L(q) = α_base · L_base(q) + α_step · Σ_{t ∈ states of q} L_step^(t),   L_base = diffu-GRPO or SPG

The paper sums the step terms over the K states of a prompt while the base term averages over the
prompt's K completions, so per prompt the step term weighs about K times a completion's base term
(K = G here: one state per trajectory). The batch loss averages over prompts: the default
`step_reduction: prompt_sum` divides the summed step terms by Z · (prompts in the batch), which
keeps that per-prompt weight whatever the batch size. `mean` averages over all states instead
(1× per prompt: α weighs two losses of the same scale); `sum` sums over every state of the batch
(a per-state weight that grows with the batch).

With `base: spg` the base term is SPG's sandwiched loss (spg.py: its block-masked copies, ELBO for
A > 0, EUBO or mixture otherwise, no ratio), with SPG's bounds under `algorithm.dispo.spg`; μ is still
`num_iterations` (SPG's recipe: 4) and the step loss keeps its ratio, ε and β. SPG has no KL, so with
β > 0 (the step loss's) the reference is scored on the base rows too, unused.

Readings of details the paper leaves open, each an option: the density form ((t+1)/S)^degree;
the step loss reuses the base ε and β unless `step_epsilon` / `step_beta` are set.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from dllmrl_core.contract.types import ScoredBatch
from dllmrl_core.likelihood import branch_query
from dllmrl_core.objectives import diffu_grpo, spg
from dllmrl_core.objectives.spg import Bounds as SPGBounds
from dllmrl_core.objectives.common import (LossOutput, MemoryShape, PolicyTerm, RolloutOptions, SpecialTokens,
                                           group_advantages, no_rules, row_pg_loss, token_pg_loss)
from dllmrl_core.sampling.branching import fill_from_logits


class Config(diffu_grpo.Config):
    """diffu-GRPO's knobs (same defaults; the base loss, and ε, β of the step loss) plus DiSPO's step loss."""

    num_branches: int = Field(2, ge=2, description="Z fillings per selected state (DiSPO: 2)")
    timestep_degree: float = Field(4.0, ge=0, description="late-biased step density ∝ ((t+1)/S)^degree (DiSPO: 4)")
    alpha_base: float = Field(1.0, ge=0, description="weight of the diffu-GRPO loss")
    alpha_step: float = Field(0.5, ge=0, description="weight of the step loss (DiSPO best 0.5; 0.1 after SFT)")
    step_epsilon: float | None = Field(None, gt=0, description="clip ε of the step loss (default: epsilon)")
    step_beta: float | None = Field(None, ge=0, description="KL β of the step loss (default: beta)")
    step_ratio: Literal["state", "token"] = Field("state", description="one ratio per state (paper) or per token")
    step_reduction: Literal["prompt_sum", "mean", "sum"] = Field(
        "prompt_sum", description="L_step summed over each prompt's states, mean over prompts (DiSPO Eq. 6-7); "
                                  "mean over all states; or sum over all states")
    base: Literal["diffu_grpo", "spg"] = Field("diffu_grpo", description="the base optimiser's loss (DiSPO Table 1: "
                                                                         "diffu-GRPO or SPG)")
    spg: SPGBounds = Field(SPGBounds(), description="SPG's bounds of the base loss when base: spg")


OLD_LOGP = "learner"
recipe = diffu_grpo.recipe  # d1's (DiSPO App. D: the base optimiser's recipe), with DiSPO's defaults
validate = no_rules


def rollout_options(cfg: Config, steps: int, batch_size: int, generator: torch.Generator) -> RolloutOptions:
    """One late-biased step per trajectory whose masked-position logits the sampler keeps."""
    density = ((torch.arange(steps, dtype=torch.float64, device=generator.device) + 1) / steps) ** cfg.timestep_degree
    return RolloutOptions(keep_logits_steps=torch.multinomial(density, batch_size, replacement=True,
                                                              generator=generator))


def branch(model, rollout, cfg: Config, sampler, generator):
    return fill_from_logits(rollout, cfg.num_branches, sampler, generator)


num_iterations = diffu_grpo.num_iterations


def needs_ref(cfg: Config) -> bool:
    step_beta = cfg.beta if cfg.step_beta is None else cfg.step_beta
    return step_beta > 0 or (cfg.base == "diffu_grpo" and cfg.beta > 0)


def memory_shape(cfg: Config, sampler, rows: int) -> MemoryShape:
    """The base term (SPG's: T copies per rollout, one unit), and Z branch rows per rollout scoring the
    positions still masked at the chosen step. Under p(t) ∝ ((t+1)/S)^degree a state keeps L/(degree+2)
    masks on average; planned at twice that (what the sampler's kept logits hold too)."""
    masked = min(sampler.gen_length, -(-2 * sampler.gen_length // int(cfg.timestep_degree + 2)))
    base = spg.memory_shape(cfg.spg, sampler, rows) if cfg.base == "spg" else diffu_grpo.memory_shape(cfg, sampler,
                                                                                                       rows)
    return MemoryShape(terms=(*base.terms, (rows * cfg.num_branches, masked)), kept_positions=masked, unit=base.unit)


def prepare(scored: ScoredBatch, cfg: Config, special: SpecialTokens,
            generator: torch.Generator) -> list[list[PolicyTerm]]:
    base_adv = group_advantages(scored.rewards, scored.group_ids, cfg.scale_rewards)
    seeds = diffu_grpo.mask_seeds(cfg, generator)
    if cfg.base == "spg":
        base = [spg.bound_terms(scored, base_adv, cfg.spg, special, generator, kind="base") for _ in seeds]
    else:
        base = diffu_grpo.policy_terms(scored, base_adv, cfg, seeds, special, kind="base")
    branches = scored.rollout.branches
    step_adv = group_advantages(scored.branch_rewards, branches.source_row)      # same-state groups
    scale = step_scale(scored, cfg)
    iterations = []
    for term, seed in zip(base, seeds):
        query = branch_query(scored.rollout, p_mask_prompt=cfg.p_mask_prompt, seed=seed + 1)
        if cfg.step_ratio == "state":  # Σ over branch rows of the (1/Z)-weighted state terms
            normalizer = cfg.num_branches * scale
        else:  # per-token ratios: the token mean over all branches, rescaled the same way
            states = branches.size / cfg.num_branches
            normalizer = float(query.target_mask.sum().clamp(min=1)) * scale / states
        step = PolicyTerm(kind="step", query=query, advantages=step_adv, normalizer=normalizer)
        iterations.append([term, step])
    return iterations


def step_scale(scored: ScoredBatch, cfg: Config) -> float:
    """What the summed state terms are divided by: prompts in the batch (prompt_sum), states (mean)
    or 1 (sum). Computed on the whole batch, so it is the same on every shard and micro-batch."""
    if cfg.step_reduction == "prompt_sum":
        return float(scored.group_ids.unique().numel())
    if cfg.step_reduction == "mean":
        return scored.rollout.branches.size / cfg.num_branches
    return 1.0


def loss(term: PolicyTerm, logp: torch.Tensor, entropy: torch.Tensor, cfg: Config) -> LossOutput:
    if term.kind == "base":
        out = spg.loss(term, logp, entropy, cfg.spg) if cfg.base == "spg" else diffu_grpo.loss(term, logp, entropy, cfg)
        return LossOutput(cfg.alpha_base * out.loss, out.stats)
    eps = cfg.step_epsilon or cfg.epsilon
    beta = cfg.beta if cfg.step_beta is None else cfg.step_beta
    pg = row_pg_loss if cfg.step_ratio == "state" else token_pg_loss
    out = pg(term, logp, entropy, eps_low=eps, eps_high=eps, beta=beta)
    return LossOutput(cfg.alpha_step * out.loss, out.stats)
