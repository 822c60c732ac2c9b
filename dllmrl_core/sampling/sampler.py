"""LLaDA's denoising sampler, recording the trajectory it takes.

Semantics follow LLaDA's reference `generate()` (ML-GSAI/LLaDA `generate.py`; docs/methods.md, "The
sampler"): the completion starts fully masked; semi-autoregressive blocks of `block_length` are
denoised left to right, each over `steps / n_blocks` steps with the linear transfer schedule; each
step runs one full forward pass (optionally classifier-free guided), draws x̂0 with float64
Gumbel-max noise (temperature 0 = argmax), scores the masked positions of the current block
(`low_confidence`: the untempered probability of the drawn token; `random`: uniform) and commits
the top-scoring ones. Committed tokens are never re-masked.

Departures from LLaDA's code, each deliberate:
- Tokens are drawn for the current block only (the only positions that can be committed), and the
  model is asked for the logits of those positions alone (`logits_at`: the LM head and the
  vocabulary-sized work never touch the prompt or the other blocks); the whole completion's logits
  are computed only at steps whose records need them (greedy fills, kept logits). With
  `llada_rng=True` the random numbers are drawn over the whole sequence exactly as LLaDA does, so
  the output is token-exact with LLaDA's generate() under the same torch seed at any temperature.
- `confidence_eos_eot_inf` does what LLaDA meant: a drawn EOS or EoT token gets confidence -1
  (below every real confidence, above the -inf of positions that cannot be chosen), so EOS/EoT
  are committed last within a block. LLaDA's version writes -inf into the noisy EOS logits after
  sampling, which leaves EOS confidence unchanged (ML-GSAI/LLaDA issue #137); a literal -inf
  would also tie with non-candidates and could leave masks in the output.
- Ties in confidence are broken towards the leftmost position (stable sort) on every device.
- The mask token itself is never drawn (its logit is −inf, here and when the learner scores
  tokens). A trained LLaDA gives it no mass anyway; an untrained model would otherwise "commit"
  masks that stay masked, which breaks the one-reveal-per-position trajectory record.
- Optional top-k / top-p truncation of the tempered distribution (AGRPO's sampler). Top-p follows
  AGRPO's rule by default (`top_p_rule="agrpo"`: the token whose cumulative mass crosses top_p is
  dropped); `"nucleus"` keeps it, the usual nucleus rule (draw.py `support_mask`).

Opt-in Fast-dLLM speed-ups (arXiv 2505.22618, sampling/cached.py): `cache` = "prefix" / "dual"
KV caching (native LLaDA module only, approximate) and `threshold` confidence-aware parallel
decoding (adaptive step count). With both off, `sample` runs the exact loop below.

`style = "dream"` runs Dream's own loop instead (sampling/dream.py: its diffusion_generate, whole
completion, its schedule and confidences), recorded in the same RolloutBatch.
"""

from __future__ import annotations

import torch

from dllmrl_core.contract.types import RolloutBatch
from dllmrl_core.models.predictor import MaskPredictor
from dllmrl_core.sampling.cached import denoise_blocks
from dllmrl_core.sampling.config import SamplerConfig
from dllmrl_core.sampling.denoise import denoise
from dllmrl_core.sampling.draw import truncates
from dllmrl_core.sampling.dream import denoise_dream
from dllmrl_core.sampling.trace import Trace


def generate(model: MaskPredictor, prompt_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
             gen_length: int = 128, steps: int = 128, block_length: int = 128, temperature: float = 0.0,
             remasking: str = "low_confidence", cfg_scale: float = 0.0, generator: torch.Generator | None = None,
             top_k: int | None = None, top_p: float | None = None, top_p_rule: str = "agrpo",
             logits_eos_inf: bool = False, confidence_eos_eot_inf: bool = False, llada_rng: bool = False,
             cache: str = "none", threshold: float | None = None, style: str = "llada", dream: dict | None = None,
             record_support: bool = False, keep_logits_steps: torch.Tensor | None = None,
             record_greedy_fills: bool = False) -> RolloutBatch:
    """Denoise completions for left-padded prompts [B, P] and return them with their trajectory.

    generator:           torch.Generator on the model's device (None = torch's global RNG, like LLaDA)
    record_support:      record the top-k/top-p support each token was drawn from (AGRPO)
    keep_logits_steps:   [B] step per row whose masked-position logits to keep, -1 = none (DiSPO)
    record_greedy_fills: record the one-step greedy fill of every step's input state (EGSPO)
    cache, threshold:    Fast-dLLM KV cache and parallel decoding (SamplerConfig, sampling/cached.py)
    style, dream:        "dream" = Dream's own loop with DreamOptions `dream` (sampling/dream.py)
    """
    cfg = SamplerConfig.parse(dict(
        gen_length=gen_length, steps=steps, block_length=block_length, temperature=temperature,
        remasking=remasking, cfg_scale=cfg_scale, top_k=top_k, top_p=top_p, top_p_rule=top_p_rule,
        logits_eos_inf=logits_eos_inf, confidence_eos_eot_inf=confidence_eos_eot_inf, llada_rng=llada_rng,
        cache=cache, threshold=threshold, style=style, dream=dream or {}))
    return sample(model, prompt_ids, attention_mask, cfg, generator=generator, record_support=record_support,
                  keep_logits_steps=keep_logits_steps, record_greedy_fills=record_greedy_fills)


@torch.no_grad()
def sample(model: MaskPredictor, prompt_ids: torch.Tensor, attention_mask: torch.Tensor | None,
           cfg: SamplerConfig, *, generator: torch.Generator | None = None, record_support: bool = False,
           keep_logits_steps: torch.Tensor | None = None, record_greedy_fills: bool = False) -> RolloutBatch:
    """`generate` with a validated SamplerConfig (what rollout workers call).

    With a cache or a threshold the Fast-dLLM loop (sampling/cached.py) runs instead of `denoise`;
    under a threshold the step count is adaptive (at most L) and RolloutBatch.steps is the number
    of forward passes taken.
    """
    prompt_mask = check_prompts(model, prompt_ids, attention_mask)
    B, L = prompt_ids.shape[0], cfg.gen_length
    check_recording(cfg, keep_logits_steps, record_greedy_fills)
    trace = Trace(B, L, cfg.steps if cfg.threshold is None else L, prompt_ids.device,
                  keep_logits_steps=keep_logits_steps, greedy_fills=record_greedy_fills,
                  support=record_support and truncates(cfg))
    if cfg.style == "dream":
        completion, steps = denoise_dream(model, prompt_ids, prompt_mask, cfg, pass_mask=attention_mask is not None,
                                          trace=trace, generator=generator), cfg.steps
    elif cfg.cache == "none" and cfg.threshold is None:
        completion, steps = denoise(model, prompt_ids, prompt_mask, prompt_ids.new_full((B, L), model.mask_id), cfg,
                                    start_step=prompt_ids.new_zeros(B), pass_mask=attention_mask is not None,
                                    trace=trace, generator=generator), cfg.steps
    else:
        completion, steps = denoise_blocks(model, prompt_ids, prompt_mask, cfg, pass_mask=attention_mask is not None,
                                           trace=trace, generator=generator)
    records = trace.fields()
    if records["greedy_fills"] is not None:
        records["greedy_fills"] = records["greedy_fills"][:, :steps]  # adaptive runs allocate L steps
    return RolloutBatch(prompt_ids=prompt_ids, prompt_mask=prompt_mask, completion_ids=completion,
                        steps=steps, block_length=cfg.block_length, temperature=cfg.temperature,
                        mask_id=model.mask_id, weight_version=model.version, sampler_mode=cfg.mode, **records)


def check_recording(cfg: SamplerConfig, keep_logits_steps: torch.Tensor | None, greedy_fills: bool) -> None:
    """Per-step records that need logits the Fast-dLLM loop does not compute, or a known step count."""
    if cfg.threshold is not None and keep_logits_steps is not None:
        raise ValueError("sampler.threshold: keep_logits_steps (DiSPO) needs the fixed step schedule (threshold=None)")
    if cfg.cache == "dual" and (greedy_fills or keep_logits_steps is not None):
        raise ValueError("sampler.cache='dual' computes no logits outside the current block: greedy fills and "
                         "kept logits (EGSPO, DiSPO) need cache='none' or 'prefix'")


def check_prompts(model: MaskPredictor, prompt_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Validate the prompt batch and return its bool mask [B, P] (True = real token)."""
    if prompt_ids.dim() != 2:
        raise ValueError(f"prompt_ids must be [B, P], got shape {tuple(prompt_ids.shape)}")
    mask = torch.ones_like(prompt_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    if mask.shape != prompt_ids.shape:
        raise ValueError(f"attention_mask shape {tuple(mask.shape)} must equal prompt_ids shape {tuple(prompt_ids.shape)}")
    is_mask = prompt_ids == model.mask_id
    if bool((is_mask & ~mask).any()):
        raise ValueError(f"prompt padding uses the mask id {model.mask_id}: the pad id must differ from the mask id")
    if bool(is_mask.any()):
        raise ValueError(f"prompt_ids contain the mask id {model.mask_id}: prompts must be fully unmasked")
    return mask
