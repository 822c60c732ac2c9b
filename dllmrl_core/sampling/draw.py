"""The full-vocabulary math of one denoising step: top-k/top-p support, Gumbel-max draws,
confidences, and the choice of positions to commit (sampling/sampler.py runs the loop).

Everything here acts on the current block's logits [B, W, V] only (the sampler asks the model for
those positions alone) and keeps LLaDA's numerics: float64 Gumbel-max noise and float64
confidences.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from dllmrl_core.sampling.sampler import SamplerConfig


def truncates(cfg: SamplerConfig) -> bool:
    """Whether draws are restricted to a top-k/top-p support (only when sampling, T > 0)."""
    return cfg.temperature > 0 and (cfg.top_k is not None or cfg.top_p is not None)


def support_mask(block_logits: torch.Tensor, cfg: SamplerConfig) -> torch.Tensor | None:
    """[B, W, V] bool: the top-k, then top-p, tokens of softmax(ℓ / T); None = no truncation."""
    if not truncates(cfg):
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


def propose(block: torch.Tensor, cfg: SamplerConfig, generator: torch.Generator | None, stop_ids: tuple[int, ...],
            seq: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """x̂0 [B, W] and its float64 confidence [B, W] at every position of the block logits [B, W, V].

    x̂0: argmax at temperature 0, else float64 Gumbel-max over the top-k/top-p support.
    Confidence: `low_confidence` = the untempered probability of x̂0, `random` = a uniform draw.
    seq = (T, lo): the block is columns lo.. of the T-column sequence (llada_rng draws over all T).
    """
    keep = support_mask(block, cfg)                                                 # [B, W, V] | None
    if cfg.temperature == 0:
        x0 = block.argmax(-1)
    else:
        u = uniform(block.shape, cfg, generator, block.device, seq, torch.float64)
        x0 = gumbel_max(block, u, cfg.temperature, keep)
    if cfg.remasking == "low_confidence":
        probs = F.softmax(block.to(torch.float64), dim=-1)
        conf = probs.gather(-1, x0[..., None]).squeeze(-1)
    else:  # random
        conf = uniform(x0.shape, cfg, generator, block.device, seq, torch.float32).to(torch.float64)
    if cfg.confidence_eos_eot_inf and stop_ids:
        conf = conf.masked_fill(torch.isin(x0, torch.tensor(stop_ids, device=x0.device)), -1.0)
    return x0, conf


def uniform(shape: tuple[int, ...], cfg: SamplerConfig, generator: torch.Generator | None, device: torch.device,
            seq: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """U(0, 1) draws of `shape` [B, W, ...] for the block; with llada_rng drawn over the whole sequence
    ([B, T, ...], as LLaDA's generate() does; seq = (T, lo)) and cut to the block's columns."""
    if not cfg.llada_rng:
        return torch.rand(shape, dtype=dtype, device=device, generator=generator)
    (T, lo), (B, W, *rest) = seq, shape
    return torch.rand((B, T, *rest), dtype=dtype, device=device, generator=generator)[:, lo:lo + W]


def gumbel_max(logits: torch.Tensor, u: torch.Tensor, temperature: float, keep: torch.Tensor | None) -> torch.Tensor:
    """argmax(exp(ℓ) / (−log u)^T) in float64, LLaDA's form of sampling softmax(ℓ / T)
    (float64 on purpose: low-precision Gumbel-max hurts generation, arXiv 2409.02908)."""
    scores = logits.to(torch.float64)
    if keep is not None:
        scores = scores.masked_fill(~keep, float("-inf"))
    return (scores.exp() / (-torch.log(u)) ** temperature).argmax(-1)


def select_top(conf: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """[B, W] bool: per row, the k[b] highest-confidence positions (ties: leftmost first)."""
    order = conf.argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(conf.shape[1], device=conf.device).expand_as(order))
    return rank < k[:, None]
