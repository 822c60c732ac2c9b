"""LLaDA's denoising loop (`denoise`) and the two pieces of one step that the Fast-dLLM loop
(sampling/cached.py) shares: the (guided) logits and committing a block's tokens. The semantics and
the departures from LLaDA's code are described in sampling/sampler.py."""

from __future__ import annotations

import torch

from dllmrl_core.models.predictor import MaskPredictor
from dllmrl_core.sampling.config import SamplerConfig
from dllmrl_core.sampling.draw import propose, select_top
from dllmrl_core.sampling.schedule import transfer_schedule
from dllmrl_core.sampling.trace import Trace


def denoise(model: MaskPredictor, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, completion: torch.Tensor,
            cfg: SamplerConfig, *, start_step: torch.Tensor, pass_mask: bool = True, trace: Trace | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Denoise `completion` [B, L] (mask ids where still masked) from per-row `start_step` [B] to the
    end; returns the final completion [B, L].

    Rows resuming later sit idle until their step comes (rows must be sorted by start_step so the
    active rows are always a prefix; a trace can only be kept when every row starts together).
    Always uncached (`cfg.cache` is not used here).
    """
    B, P = prompt_ids.shape
    bl, spb = cfg.block_length, cfg.steps_per_block
    if cfg.threshold is not None:
        raise ValueError("sampler.threshold: denoising from a visited state (continuations) needs the fixed step "
                         "schedule (threshold=None)")
    if bool((start_step[1:] < start_step[:-1]).any()) or (trace is not None and bool((start_step != 0).any())):
        raise ValueError("denoise: rows must be sorted by start_step, and traced runs must start at step 0")
    x = torch.cat([prompt_ids, completion], dim=1)
    attn = torch.cat([prompt_mask, prompt_mask.new_ones(completion.shape)], dim=1) if pass_mask else None
    block_masked = (completion == model.mask_id).view(B, cfg.num_blocks, bl).sum(-1)
    quota = transfer_schedule(block_masked, spb, start_step)
    for s in range(int(start_step.min()), cfg.steps):
        n = int((start_step <= s).sum())                                           # active rows: a prefix
        xs, lo = x[:n], P + (s // spb) * bl
        wide = trace is not None and trace.wants_logits(s)
        at = slice(P, x.shape[1]) if wide else slice(lo, lo + bl)                 # the columns this step needs
        logits = guided_logits(model, xs, None if attn is None else attn[:n], P, cfg, logits_at=at)  # [n, w, V]
        if wide:
            trace.observe(s, xs[:, P:], xs[:, P:] == model.mask_id, logits)
        block = logits[:, lo - at.start:lo - at.start + bl]                        # [n, W, V]
        commit, x0 = commit_block(model, xs, block, lo, cfg, quota[:n, s], generator)
        if trace is not None:
            trace.commit(s, lo - P, commit, x0, block, cfg)
    return x[:, P:].clone()


def guided_logits(model: MaskPredictor, x: torch.Tensor, attn: torch.Tensor | None, P: int,
                  cfg: SamplerConfig, forward=None, logits_at: slice | None = None) -> torch.Tensor:
    """Logits [B, w, V] at the columns `logits_at` of x [B, T] (None = all); with CFG,
    ℓ = ℓ_u + (s+1)(ℓ_c − ℓ_u), ℓ_u with every prompt position masked (both halves at the same columns).

    forward: `(ids, attn, logits_at) -> logits` used instead of `model` (the KV-cached forward of a
             span; P = 0 then, as a span holds no prompt position).
    """
    forward = (lambda ids, mask, at: model(ids, mask, logits_at=at)) if forward is None else forward
    if cfg.cfg_scale > 0:
        uncond = x.clone()
        uncond[:, :P] = model.mask_id
        both = forward(torch.cat([x, uncond]), None if attn is None else torch.cat([attn, attn]), logits_at)
        cond, un = both.chunk(2)
        logits = cond.sub_(un).mul_(cfg.cfg_scale + 1).add_(un)  # in place in `both`: no logits-sized copies
    else:
        logits = forward(x, attn, logits_at)
    logits[..., model.mask_id] = float("-inf")  # [MASK] is not content: never drawn, never scored
    if cfg.logits_eos_inf and model.eos_id is not None:
        logits[..., model.eos_id] = float("-inf")
    return logits


def commit_block(model: MaskPredictor, x: torch.Tensor, block: torch.Tensor, lo: int, cfg: SamplerConfig,
                 quota: torch.Tensor | None, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw tokens for the block x[:, lo:lo+W] from its logits `block` [B, W, V] and commit the chosen
    ones into x in place; returns (commit [B, W] bool, x̂0 [B, W]).
    quota [B]: the fixed schedule's count; None = threshold decoding (Fast-dLLM: the top masked
    position, plus every masked one at or above the threshold)."""
    hi = lo + block.shape[1]
    masked = x[:, lo:hi] == model.mask_id                                           # [B, W]
    x0, conf = propose(block, cfg, generator, model.stop_ids, seq=(x.shape[1], lo))
    conf = conf.masked_fill(~masked, float("-inf"))
    if quota is None:
        top = select_top(conf, torch.ones_like(conf[:, 0], dtype=torch.long))
        commit = (top | (conf >= cfg.threshold)) & masked
    else:
        commit = select_top(conf, quota)
    x[:, lo:hi] = torch.where(commit, x0, x[:, lo:hi])
    return commit, x0
