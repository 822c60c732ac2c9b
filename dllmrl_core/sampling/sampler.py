"""LLaDA's denoising sampler, recording the trajectory it takes.

Semantics follow LLaDA's reference `generate()` (algorithms.md §1.1): the completion starts fully
masked; semi-autoregressive blocks of `block_length` are denoised left to right, each over
`steps / n_blocks` steps with the linear transfer schedule; each step runs one full forward pass
(optionally classifier-free guided), draws x̂0 with float64 Gumbel-max noise (temperature 0 =
argmax), scores the masked positions of the current block (`low_confidence`: the untempered
probability of the drawn token; `random`: uniform) and commits the top-scoring ones. Committed
tokens are never re-masked.

Departures from LLaDA's code, each deliberate:
- Tokens are drawn for the current block only (the only positions that can be committed). With
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
- Optional top-k / top-p truncation of the tempered distribution (AGRPO's sampler).

Opt-in Fast-dLLM speed-ups (algorithms.md §1.3, sampling/cached.py): `cache` = "prefix" / "dual"
KV caching (native LLaDA module only, approximate) and `threshold` confidence-aware parallel
decoding (adaptive step count). With both off, `sample` runs the exact loop below.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from dllmrl_core.configbase import ConfigModel
from dllmrl_core.models.predictor import MaskPredictor
from dllmrl_core.sampling.schedule import transfer_schedule
from dllmrl_core.sampling.trace import Trace
from dllmrl_core.types import RolloutBatch


class SamplerConfig(ConfigModel):
    """How completions are denoised (LLaDA's generate() arguments, plus AGRPO's truncation)."""

    gen_length: int = Field(128, gt=0, description="completion length L")
    steps: int = Field(128, gt=0, description="denoising steps S over the whole completion")
    block_length: int = Field(128, gt=0, description="semi-autoregressive block length")
    temperature: float = Field(0.0, ge=0, description="0 = greedy; >0 samples softmax(logits / T)")
    remasking: Literal["low_confidence", "random"] = Field(
        "low_confidence", description="which drawn tokens a step commits: low_confidence = the most probable first "
                           "(LLaDA), random = uniform")
    cfg_scale: float = Field(0.0, ge=0, description="classifier-free guidance scale (0 = off)")
    top_k: int | None = Field(None, gt=0, description="keep the k most likely tokens (AGRPO)")
    top_p: float | None = Field(None, gt=0, le=1, description="nucleus truncation (AGRPO)")
    logits_eos_inf: bool = Field(False, description="never sample EOS (LLaDA option)")
    confidence_eos_eot_inf: bool = Field(False, description="commit EOS/EoT last in a block (fixed)")
    llada_rng: bool = Field(False, description="draw noise over the whole sequence, as LLaDA does")
    cache: Literal["none", "prefix", "dual"] = Field(
        "none", description="Fast-dLLM KV cache (native LLaDA only, approximate): prefix = K/V before the block, "
                            "dual = also the masked suffix")
    threshold: float | None = Field(
        None, ge=0, description="Fast-dLLM parallel decoding: commit every masked block position with confidence "
                                ">= threshold (at least one); steps become adaptive and `steps` is ignored")

    @model_validator(mode="after")
    def _check_blocks(self) -> SamplerConfig:
        if self.gen_length % self.block_length:
            raise ValueError(f"gen_length ({self.gen_length}) must be divisible by block_length ({self.block_length})")
        if self.steps % self.num_blocks:
            raise ValueError(f"steps ({self.steps}) must be divisible by the number of blocks "
                             f"(gen_length / block_length = {self.num_blocks})")
        if self.llada_rng and self.cache != "none":
            raise ValueError(f"cache ({self.cache!r}): llada_rng draws LLaDA's whole-sequence noise, "
                             "which needs cache='none'")
        return self

    @property
    def num_blocks(self) -> int:
        return self.gen_length // self.block_length

    @property
    def steps_per_block(self) -> int:
        return self.steps // self.num_blocks

    @property
    def mode(self) -> str:
        """What RolloutBatch.sampler_mode records: uncached / prefix / dual, "+threshold=τ" if adaptive."""
        name = "uncached" if self.cache == "none" else self.cache
        return name if self.threshold is None else f"{name}+threshold={self.threshold:g}"


def generate(model: MaskPredictor, prompt_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
             gen_length: int = 128, steps: int = 128, block_length: int = 128, temperature: float = 0.0,
             remasking: str = "low_confidence", cfg_scale: float = 0.0, generator: torch.Generator | None = None,
             top_k: int | None = None, top_p: float | None = None, logits_eos_inf: bool = False,
             confidence_eos_eot_inf: bool = False, llada_rng: bool = False, cache: str = "none",
             threshold: float | None = None, record_support: bool = False,
             keep_logits_steps: torch.Tensor | None = None, record_greedy_fills: bool = False) -> RolloutBatch:
    """Denoise completions for left-padded prompts [B, P] and return them with their trajectory.

    generator:           torch.Generator on the model's device (None = torch's global RNG, like LLaDA)
    record_support:      record the top-k/top-p support each token was drawn from (AGRPO)
    keep_logits_steps:   [B] step per row whose masked-position logits to keep, -1 = none (DiSPO)
    record_greedy_fills: record the one-step greedy fill of every step's input state (EGSPO)
    cache, threshold:    Fast-dLLM KV cache and parallel decoding (SamplerConfig, sampling/cached.py)
    """
    cfg = SamplerConfig.parse(dict(
        gen_length=gen_length, steps=steps, block_length=block_length, temperature=temperature,
        remasking=remasking, cfg_scale=cfg_scale, top_k=top_k, top_p=top_p, logits_eos_inf=logits_eos_inf,
        confidence_eos_eot_inf=confidence_eos_eot_inf, llada_rng=llada_rng, cache=cache, threshold=threshold))
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
                  support=record_support and _truncates(cfg))
    if cfg.cache == "none" and cfg.threshold is None:
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
        hi = lo + bl
        logits = guided_logits(model, xs, None if attn is None else attn[:n], P, cfg)  # [n, P+L, V]
        masked = xs == model.mask_id                                              # [n, P+L]
        if trace is not None:
            trace.observe(s, xs[:, P:], masked[:, P:], logits[:, P:])
        keep = support_mask(logits[:, lo:hi], cfg)                                # [n, W, V] | None
        x0 = draw_tokens(logits, lo, hi, keep, cfg, generator)                    # [n, W]
        conf = confidence(logits, x0, lo, hi, cfg, generator, model.stop_ids)     # [n, W]
        conf = conf.masked_fill(~masked[:, lo:hi], float("-inf"))
        commit = select_top(conf, quota[:n, s])                                   # [n, W] bool
        xs[:, lo:hi] = torch.where(commit, x0, xs[:, lo:hi])
        if trace is not None:
            trace.commit(s, lo - P, commit, x0, logits[:, lo:hi], keep, cfg.temperature)
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
                  cfg: SamplerConfig, forward=None) -> torch.Tensor:
    """Logits [B, T, V]; with CFG, ℓ = ℓ_u + (s+1)(ℓ_c − ℓ_u), ℓ_u with every prompt position masked.

    forward: `(ids, attn) -> logits` used instead of `model` (the KV-cached forward of a span;
             P = 0 then, as a span holds no prompt position).
    """
    forward = model if forward is None else forward
    if cfg.cfg_scale > 0:
        uncond = x.clone()
        uncond[:, :P] = model.mask_id
        both = forward(torch.cat([x, uncond]), None if attn is None else torch.cat([attn, attn]))
        cond, un = both.chunk(2)
        logits = un + (cfg.cfg_scale + 1) * (cond - un)
    else:
        logits = forward(x, attn)
    logits[..., model.mask_id] = float("-inf")  # [MASK] is not content: never drawn, never scored
    if cfg.logits_eos_inf and model.eos_id is not None:
        logits[..., model.eos_id] = float("-inf")
    return logits


def _truncates(cfg: SamplerConfig) -> bool:
    return cfg.temperature > 0 and (cfg.top_k is not None or cfg.top_p is not None)


def support_mask(block_logits: torch.Tensor, cfg: SamplerConfig) -> torch.Tensor | None:
    """[B, W, V] bool: the top-k, then top-p, tokens of softmax(ℓ / T); None = no truncation."""
    if not _truncates(cfg):
        return None
    tempered = block_logits.float() / cfg.temperature
    keep = torch.ones_like(tempered, dtype=torch.bool)
    if cfg.top_k is not None and cfg.top_k < tempered.shape[-1]:
        kth = tempered.topk(cfg.top_k, dim=-1).values[..., -1:]
        keep &= tempered >= kth
    if cfg.top_p is not None and cfg.top_p < 1:
        probs = tempered.masked_fill(~keep, float("-inf")).softmax(-1)
        sorted_p, order = probs.sort(dim=-1, descending=True)
        mass_before = sorted_p.cumsum(-1) - sorted_p          # keep the smallest prefix reaching top_p
        keep &= torch.zeros_like(keep).scatter(-1, order, mass_before < cfg.top_p)
    return keep


def draw_tokens(logits: torch.Tensor, lo: int, hi: int, keep: torch.Tensor | None, cfg: SamplerConfig,
                generator: torch.Generator | None) -> torch.Tensor:
    """x̂0 [B, W] for positions lo..hi (greedy at temperature 0, else float64 Gumbel-max)."""
    block = logits[:, lo:hi]
    if cfg.temperature == 0:
        return block.argmax(-1)
    shape = logits.shape if cfg.llada_rng else block.shape
    u = torch.rand(shape, dtype=torch.float64, device=logits.device, generator=generator)
    return gumbel_max(block, u[:, lo:hi] if cfg.llada_rng else u, cfg.temperature, keep)


def gumbel_max(logits: torch.Tensor, u: torch.Tensor, temperature: float, keep: torch.Tensor | None) -> torch.Tensor:
    """argmax(exp(ℓ) / (−log u)^T) in float64, LLaDA's form of sampling softmax(ℓ / T)
    (float64 on purpose: low-precision Gumbel-max hurts generation, arXiv 2409.02908)."""
    scores = logits.to(torch.float64)
    if keep is not None:
        scores = scores.masked_fill(~keep, float("-inf"))
    return (scores.exp() / (-torch.log(u)) ** temperature).argmax(-1)


def confidence(logits: torch.Tensor, x0: torch.Tensor, lo: int, hi: int, cfg: SamplerConfig,
               generator: torch.Generator | None, stop_ids: tuple[int, ...]) -> torch.Tensor:
    """[B, W] float64 score of each drawn token; the highest scores are committed."""
    if cfg.remasking == "low_confidence":
        probs = F.softmax(logits[:, lo:hi].to(torch.float64), dim=-1)
        conf = probs.gather(-1, x0[..., None]).squeeze(-1)
    else:  # random
        shape = logits.shape[:2] if cfg.llada_rng else x0.shape
        conf = torch.rand(shape, device=logits.device, generator=generator).to(torch.float64)
        if cfg.llada_rng:
            conf = conf[:, lo:hi]
    if cfg.confidence_eos_eot_inf and stop_ids:
        conf = conf.masked_fill(torch.isin(x0, torch.tensor(stop_ids, device=x0.device)), -1.0)
    return conf


def select_top(conf: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """[B, W] bool: per row, the k[b] highest-confidence positions (ties: leftmost first)."""
    order = conf.argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(conf.shape[1], device=conf.device).expand_as(order))
    return rank < k[:, None]
