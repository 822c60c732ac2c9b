"""Rollout-time branching: extra completions from states the sampler visited.

Called by rollout workers after `sample`; results travel as compact token ids in a BranchSet.
- SAPO (arXiv 2510.01544): N continuations from the state before a step t1, denoised to the end
  (optionally with extra mask tokens appended, the paper's "64 appended mask tokens" reading).
- DiSPO (arXiv 2602.06462): Z joint fillings of all masked positions, drawn from the logits cached
  at one step (no extra diffusion passes).
- EGSPO (arXiv 2603.12554): the one-step greedy fills recorded at K selected steps (highest entropy
  by default).
"""

from __future__ import annotations

from typing import Literal

import torch

from dllmrl_core.contract.types import BranchSet, RolloutBatch
from dllmrl_core.models.predictor import MaskPredictor
from dllmrl_core.sampling.config import SamplerConfig
from dllmrl_core.sampling.denoise import denoise
from dllmrl_core.sampling.draw import gumbel_argmax, gumbel_denominator_, support_mask


def continue_from(model: MaskPredictor, rollout: RolloutBatch, rows: torch.Tensor, steps: torch.Tensor,
                  cfg: SamplerConfig, *, extra_masks: int = 0, generator: torch.Generator | None = None) -> torch.Tensor:
    """[M, L+E] completions denoised from the state before steps[m] of row rows[m] (E = extra_masks
    mask tokens appended after the completion, denoised as extra blocks with the same schedule)."""
    if cfg.style == "dream":
        raise ValueError("sampler.style='dream': continuing from a visited state (SAPO) is not implemented for Dream's "
                         "loop; use style='llada'")
    if extra_masks % cfg.block_length:
        raise ValueError(f"extra_masks ({extra_masks}) must be a multiple of block_length ({cfg.block_length})")
    order = torch.argsort(steps, stable=True)                  # denoise() wants rows sorted by start step
    r, t = rows[order], steps[order]
    state = rollout.completion_ids[r].masked_fill(rollout.reveal_step[r] >= t[:, None], rollout.mask_id)
    state = torch.cat([state, state.new_full((len(r), extra_masks), rollout.mask_id)], dim=1)
    extra_steps = extra_masks // cfg.block_length * cfg.steps_per_block
    longer = SamplerConfig.parse({**cfg.model_dump(), "gen_length": cfg.gen_length + extra_masks,
                                  "steps": cfg.steps + extra_steps})
    out = denoise(model, rollout.prompt_ids[r], rollout.prompt_mask[r], state, longer, start_step=t,
                  generator=generator)
    return out[torch.argsort(order)]


def sapo_continuations(model: MaskPredictor, rollout: RolloutBatch, t1: torch.Tensor, num: int, cfg: SamplerConfig,
                       *, extra_masks: int, generator: torch.Generator | None) -> BranchSet:
    """`num` continuations per row from the state before t1[b] (rows stay grouped: b, b, ..., b+1)."""
    rows = torch.arange(rollout.batch_size, device=t1.device).repeat_interleave(num)
    steps = t1.repeat_interleave(num)
    completions = continue_from(model, rollout, rows, steps, cfg, extra_masks=extra_masks, generator=generator)
    return BranchSet(kind="sapo", source_row=rows, step=steps, completion_ids=completions)


def fill_from_logits(rollout: RolloutBatch, num: int, cfg: SamplerConfig,
                     generator: torch.Generator | None) -> BranchSet:
    """DiSPO: `num` joint fillings of every masked position, drawn from the logits kept at one
    step per row (the sampler's distribution: temperature, top-k/top-p; T = 0 falls back to T = 1)."""
    kept = rollout.step_logits
    if kept is None:
        raise ValueError("fill_from_logits needs a rollout sampled with keep_logits_steps")
    rows = (kept.step >= 0).nonzero().flatten()
    temperature = cfg.temperature if cfg.temperature > 0 else 1.0
    draw_cfg = SamplerConfig.parse({**cfg.model_dump(), "temperature": temperature})
    logits = kept.logits[None].expand(num, -1, -1)                                 # [Z, N, V]
    u = torch.rand(logits.shape, dtype=torch.float64, generator=generator, device=logits.device)
    tokens = gumbel_argmax(logits, gumbel_denominator_(u, temperature), support_mask(logits, draw_cfg))  # [Z, N]
    masked = kept.masked[rows]                                                       # [R, L]
    state = rollout.completion_at(kept.step)[rows]                                   # [R, L]
    filled = state[None].repeat(num, 1, 1)                                           # [Z, R, L]
    filled[:, masked] = tokens
    source = rows.repeat_interleave(num)
    completions = filled.transpose(0, 1).reshape(-1, rollout.gen_length)             # row-major: b's Z fillings
    return BranchSet(kind="dispo", source_row=source, step=kept.step[source], completion_ids=completions,
                     filled=masked.repeat_interleave(num, dim=0))


def select_steps(rollout: RolloutBatch, k: int, mode: Literal["high_entropy", "random", "uniform"],
                 last_step: torch.Tensor | None, generator: torch.Generator | None) -> torch.Tensor:
    """[B, k'] steps per row, k' = min(k, S), in EGSPO's selection order (arXiv 2603.12554; EGSPO's
    trainer): slot j of every row holds its j-th selected step, and EGSPO's group baseline pairs slots.

    high_entropy: the k steps whose revealed tokens have the highest mean entropy, highest first;
    uniform: EGSPO's `linspace(0, S−2, k−1).long()` and the final step S−1 (S 128, k 8: 0, 21, 42, 63,
    84, 105, 126, 127), or with `last_step` `linspace(0, last, k).long()`, in time order;
    random: k−1 distinct steps before the last in random order, then the last.
    `last_step` [B] bounds the choice (EGSPO's terminate_at_last_non_eos); None = all steps. It is
    raised to at least k−1 so that k distinct steps exist (EGSPO's top-k would fail there, its
    uniform and random modes would repeat steps).
    """
    B, S = rollout.batch_size, rollout.steps
    k = min(k, S)
    last = torch.full((B,), S - 1, dtype=torch.long) if last_step is None else last_step.cpu().clamp(min=k - 1)
    s = torch.arange(S)
    if mode == "high_entropy":
        counts = torch.zeros(B, S).scatter_add_(1, rollout.reveal_step.cpu(), torch.ones(rollout.reveal_step.shape))
        score = rollout.step_entropy.cpu().masked_fill((counts == 0) | (s > last[:, None]), float("-inf"))
        chosen = score.topk(k, dim=1).indices                          # sorted: highest entropy first
    elif mode == "random":
        noise = torch.rand(B, S, generator=generator, device=generator.device).cpu()
        noise = noise.masked_fill(s >= last[:, None], float("inf"))
        chosen = torch.cat([noise.topk(k - 1, dim=1, largest=False).indices, last[:, None]], dim=1)
    elif last_step is None:  # uniform; torch's float32 linspace and truncation, exactly as EGSPO
        chosen = torch.cat([torch.linspace(0, S - 2, k - 1).long(), torch.tensor([S - 1])]).repeat(B, 1)
    else:
        chosen = torch.stack([torch.linspace(0, int(t), k).long() for t in last])
    return chosen.to(rollout.reveal_step.device)


def greedy_branches(rollout: RolloutBatch, steps: torch.Tensor) -> BranchSet:
    """EGSPO: the recorded one-step greedy fill x̂^(t) at each selected step (rows grouped by source)."""
    if rollout.greedy_fills is None:
        raise ValueError("greedy_branches needs a rollout sampled with record_greedy_fills=True")
    B, k = steps.shape
    rows = torch.arange(B, device=steps.device).repeat_interleave(k)
    flat = steps.flatten()
    return BranchSet(kind="egspo", source_row=rows, step=flat, completion_ids=rollout.greedy_fills[rows, flat])
