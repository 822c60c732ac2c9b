"""Fast-dLLM decoding: prefix / dual KV cache and confidence-threshold parallel decoding.

Semantics follow Fast-dLLM's LLaDA sampler (arXiv 2505.22618; NVlabs/Fast-dLLM `llada/generate.py`),
batched:

- Every block starts with one full forward pass over the whole sequence; its logits drive the
  block's first step (exactly as without a cache) and its keys/values are kept. `prefix`: the
  block's later steps forward only x[:, block_start:] (current block + masked suffix) against the
  cached K/V of the positions before the block. `dual`: they forward only the current block,
  against the cached K/V of the prefix *and* of the still-masked suffix.
- The cache is an approximation by design: attention is bidirectional, so cached K/V of layers
  >= 1 do not see the tokens committed since the block start. Layer-0 K/V depend only on a token
  and its position, and during a block the prefix is committed and the suffix all-mask, so a
  one-layer model decodes exactly as without a cache; so does any model with one step per block.
- Positions are the absolute indices of the left-padded sequence (LLaDA's convention,
  models/llada.py); a span forward uses those positions and the full key-padding mask.
- Every forward, full or span, applies the LM head only at the positions the step needs (the
  block; the completion where a per-step record needs it) and runs under the predictor's
  precision policy (`MaskPredictor.autocast`), the same as the uncached loop and the learner.
- `threshold` (confidence-aware parallel decoding): each step commits the block's top masked
  position and every other masked one with confidence >= threshold; a block ends when no row has
  a mask left in it (a row that finishes first commits nothing while the others continue). The
  step count is adaptive: the steps taken are numbered 0..S-1 across blocks, reveal_step indexes
  them and RolloutBatch.steps = S. Meant for evaluation and fast rollouts; what needs the fixed
  schedule (SAPO continuations, DiSPO kept logits) refuses it.
- A cache lives within one call, records the weight version it was built with and is checked
  against the predictor's version at every use: it never survives an adapter update.
"""

from __future__ import annotations

import torch

from dllmrl_core.models.llada import KVCache, LLaDAModel, LLaDAModelLM
from dllmrl_core.models.predictor import MaskPredictor
from dllmrl_core.sampling.config import SamplerConfig
from dllmrl_core.sampling.denoise import commit_block, guided_logits
from dllmrl_core.sampling.schedule import transfer_schedule
from dllmrl_core.sampling.trace import Trace


def native_module(model: MaskPredictor, cache: str) -> LLaDAModel:
    """The native LLaDA module behind a predictor (through a PEFT wrapper); one-line error otherwise."""
    inner = model.model
    if hasattr(inner, "get_base_model"):  # PEFT: LoRA layers live inside the base model's modules
        inner = inner.get_base_model()
    if not isinstance(inner, LLaDAModelLM):
        raise ValueError(f"sampler.cache={cache!r} needs the native LLaDA module; {type(inner).__name__} has no "
                         "KV cache (use sampler.cache='none')")
    return inner.model


@torch.no_grad()
def denoise_blocks(model: MaskPredictor, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, cfg: SamplerConfig,
                   *, pass_mask: bool = True, trace: Trace | None = None,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
    """Denoise fully masked completions block by block with `cfg.cache` / `cfg.threshold`;
    returns (final completion [B, L], number of steps taken S)."""
    B, P = prompt_ids.shape
    core = None if cfg.cache == "none" else native_module(model, cfg.cache)
    x = torch.cat([prompt_ids, prompt_ids.new_full((B, cfg.gen_length), model.mask_id)], dim=1)
    attn = torch.cat([prompt_mask, prompt_mask.new_ones(B, cfg.gen_length)], dim=1) if pass_mask else None
    s = 0
    for lo in range(P, P + cfg.gen_length, cfg.block_length):
        hi = lo + cfg.block_length
        quota = None                                                              # [B, steps_per_block]
        if cfg.threshold is None:
            quota = transfer_schedule((x[:, lo:hi] == model.mask_id).sum(1, keepdim=True), cfg.steps_per_block)
        cache, i = None, 0
        while i < cfg.steps_per_block if quota is not None else bool((x[:, lo:hi] == model.mask_id).any()):
            wide = trace is not None and trace.wants_logits(s)
            logits, start, cache = step_logits(model, core, x, attn, P, lo, hi, cfg, cache, wide)  # [B, n, V]
            if wide:
                observe(trace, s, x[:, P:], logits, start - P, model.mask_id)
            block = logits[:, lo - start:hi - start]                                  # [B, W, V]
            commit, x0 = commit_block(model, x, block, lo, cfg, None if quota is None else quota[:, i], generator)
            if trace is not None:
                trace.commit(s, lo - P, commit, x0, block, cfg)
            s, i = s + 1, i + 1
    return x[:, P:].clone(), s


def step_logits(model: MaskPredictor, core: LLaDAModel | None, x: torch.Tensor, attn: torch.Tensor | None, P: int,
                lo: int, hi: int, cfg: SamplerConfig, cache: KVCache | None, wide: bool = False
                ) -> tuple[torch.Tensor, int, KVCache | None]:
    """(logits [B, n, V], start, cache) for the step that denoises x[:, lo:hi]; logits[:, j] belongs to
    position start + j. They cover the block, or with `wide` every completion position the forward
    computed (the trace's per-step records).

    No cache: the full forward. Block start (cache None): the full forward, keeping its K/V (the
    positions before the block for `prefix`, all of them for `dual`). Later steps: x[:, lo:] or
    x[:, lo:hi] against the cache. CFG runs the conditional and unconditional rows as one batch,
    so the cache holds both (2B rows). The LM head runs only at the positions returned
    (`logits_at`), and every forward runs under the predictor's precision policy (`autocast`).
    """
    whole = slice(P if wide else lo, x.shape[1] if wide else hi)   # columns of x a full forward returns
    if core is None:
        return guided_logits(model, x, attn, P, cfg, logits_at=whole), whole.start, None
    if cache is None:
        layers, version = [], model.version  # the version the forward below runs with

        def full(ids, mask, at):
            with model.autocast():
                logits, fresh = core.forward_span(ids, mask, logits_at=at)
            layers.extend(fresh)
            return logits

        logits = guided_logits(model, x, attn, P, cfg, forward=full, logits_at=whole)
        # contiguous, as the spliced keys/values of the prefix path are: dual steps write into them in place
        cache = KVCache([k.contiguous() for k, _ in layers], [v.contiguous() for _, v in layers], version)
        return logits, whole.start, cache.prefix(lo) if cfg.cache == "prefix" else cache
    cache.check(model.version)
    stop = hi if cfg.cache == "dual" else x.shape[1]

    def span(ids, mask, at):
        with model.autocast():
            return core.forward_span(ids, mask, start=lo, past=cache, logits_at=at)[0]

    at = None if wide or stop == hi else slice(0, hi - lo)  # the span starts at the block
    return guided_logits(model, x[:, lo:stop], attn, 0, cfg, forward=span, logits_at=at), lo, cache


def observe(trace: Trace, s: int, completion: torch.Tensor, logits: torch.Tensor, offset: int, mask_id: int) -> None:
    """Hand the trace the completion's logits before step s; logits[:, 0] is completion position
    `offset`. Positions left of a prefix-cache span (committed earlier blocks) were not forwarded:
    they get zeros, never read, as the trace only looks at masked positions."""
    if offset > 0:
        logits = torch.cat([logits.new_zeros(logits.shape[0], offset, logits.shape[2]), logits], dim=1)
    trace.observe(s, completion, completion == mask_id, logits)
