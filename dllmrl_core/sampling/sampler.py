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

from typing import Literal

import torch
from pydantic import Field, model_validator

from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.models.predictor import MaskPredictor
from dllmrl_core.sampling.dream import DreamOptions, denoise_dream
from dllmrl_core.sampling.draw import propose, select_top, truncates
from dllmrl_core.sampling.schedule import transfer_schedule
from dllmrl_core.sampling.trace import Trace
from dllmrl_core.contract.types import RolloutBatch


class SamplerConfig(ConfigModel):
    """How completions are denoised (LLaDA's generate() arguments, plus AGRPO's truncation), or with
    Dream's own loop (`style: dream`)."""

    style: Literal["llada", "dream"] = Field(
        "llada", description="whose denoising loop: llada = LLaDA's generate() (semi-autoregressive blocks, linear "
                             "schedule, `remasking`); dream = Dream's diffusion_generate (the whole completion at "
                             "once, schedule linspace(1, eps, steps + 1), confidences of `dream.alg`; needs "
                             "block_length = gen_length)")
    gen_length: int = Field(128, gt=0, description="completion length L")
    steps: int = Field(128, gt=0, description="denoising steps S over the whole completion")
    block_length: int = Field(128, gt=0, description="semi-autoregressive block length")
    temperature: float = Field(0.0, ge=0, description="0 = greedy; >0 samples softmax(logits / T)")
    remasking: Literal["low_confidence", "random"] = Field(
        "low_confidence", description="which drawn tokens a step commits: low_confidence = the most probable first "
                           "(LLaDA), random = uniform")
    cfg_scale: float = Field(0.0, ge=0, description="classifier-free guidance scale (0 = off)")
    top_k: int | None = Field(None, gt=0, description="keep the k most likely tokens (AGRPO)")
    top_p: float | None = Field(None, gt=0, le=1, description="top-p truncation, after top-k (AGRPO)")
    top_p_rule: Literal["agrpo", "nucleus"] = Field(
        "agrpo", description="which sorted tokens top-p keeps: agrpo = cumulative probability <= top_p, at least one "
                             "(AGRPO's sampler); nucleus = the smallest prefix reaching top_p (Holtzman et al.)")
    logits_eos_inf: bool = Field(False, description="never sample EOS (LLaDA option)")
    confidence_eos_eot_inf: bool = Field(False, description="commit EOS/EoT last in a block (fixed)")
    llada_rng: bool = Field(False, description="draw noise over the whole sequence, as LLaDA does")
    cache: Literal["none", "prefix", "dual"] = Field(
        "none", description="Fast-dLLM KV cache (native LLaDA only, approximate): prefix = K/V before the block, "
                            "dual = also the masked suffix")
    threshold: float | None = Field(
        None, ge=0, description="Fast-dLLM parallel decoding: commit every masked block position with confidence "
                                ">= threshold (at least one); steps become adaptive and `steps` is ignored")
    dream: DreamOptions = Field(default_factory=DreamOptions, description="Dream's own knobs (style: dream)")

    @model_validator(mode="after")
    def _check_blocks(self) -> SamplerConfig:
        if self.style == "dream":
            self._check_dream()
        if self.gen_length % self.block_length:
            raise ValueError(f"gen_length ({self.gen_length}) must be divisible by block_length ({self.block_length})")
        if self.steps % self.num_blocks:
            raise ValueError(f"steps ({self.steps}) must be divisible by the number of blocks "
                             f"(gen_length / block_length = {self.num_blocks})")
        if self.llada_rng and self.cache != "none":
            raise ValueError(f"cache ({self.cache!r}): llada_rng draws LLaDA's whole-sequence noise, "
                             "which needs cache='none'")
        return self

    def _check_dream(self) -> None:
        """Options of LLaDA's loop that Dream's loop has no counterpart for are errors, not ignored."""
        if self.block_length != self.gen_length:
            raise ValueError(f"style='dream' denoises the whole completion at once: block_length "
                             f"({self.block_length}) must equal gen_length ({self.gen_length})")
        unsupported = {"cfg_scale": self.cfg_scale > 0, "confidence_eos_eot_inf": self.confidence_eos_eot_inf,
                       "llada_rng": self.llada_rng, "cache": self.cache != "none",
                       "threshold": self.threshold is not None}
        for name, used in unsupported.items():
            if used:
                raise ValueError(f"{name}: not available with style='dream' (Dream's diffusion_generate has no such "
                                 "option)")

    @property
    def num_blocks(self) -> int:
        return self.gen_length // self.block_length

    @property
    def steps_per_block(self) -> int:
        return self.steps // self.num_blocks

    @property
    def mode(self) -> str:
        """What RolloutBatch.sampler_mode records: uncached / prefix / dual, "+threshold=τ" if adaptive;
        dream-<alg> for Dream's loop."""
        if self.style == "dream":
            return f"dream-{self.dream.alg}"
        name = "uncached" if self.cache == "none" else self.cache
        return name if self.threshold is None else f"{name}+threshold={self.threshold:g}"


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
    from dllmrl_core.sampling.cached import denoise_blocks  # cached.py builds on this module's steps

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
