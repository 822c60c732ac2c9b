"""The full-vocabulary math of one denoising step: top-k/top-p support, Gumbel-max draws,
confidences, and the choice of positions to commit (sampling/denoise.py runs the loop).

Everything here acts on the current block's logits [B, W, V] only (the sampler asks the model for
those positions alone) and keeps LLaDA's numerics: float64 Gumbel-max noise and float64
confidences.

Memory: every full-vocabulary op is row-wise (one row = one position's V logits), so `propose`
runs the rows in chunks of at most ROW_CHUNK vocabulary entries and gives exactly the values of one
pass over the block, with float64 temporaries of one chunk alive instead of several block-sized
ones. The Gumbel noise alone is drawn for the whole block at once (one draw per step keeps the
random stream of a single draw, on CPU and CUDA alike) and turned into its denominator in place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from dllmrl_core.sampling.config import SamplerConfig


def truncates(cfg: SamplerConfig) -> bool:
    """Whether draws are restricted to a top-k/top-p support (only when sampling, T > 0)."""
    return cfg.temperature > 0 and (cfg.top_k is not None or cfg.top_p is not None)


def support_mask(logits: torch.Tensor, cfg: SamplerConfig) -> torch.Tensor | None:
    """[..., V] bool: the top-k, then top-p, tokens of softmax(ℓ / T) per row of `logits` [..., V];
    None = no truncation.

    Top-p acts on the top-k-renormalised distribution, tokens sorted most likely first, with c_i the
    inclusive cumulative probability of the i-th token (AGRPO's `gumbel_sample` builds it this way):
    - `top_p_rule="agrpo"` keeps the tokens with c_i ≤ top_p, and always the first: the token whose
      mass crosses top_p is dropped (AGRPO's rule; at (.5, .3, .15, .05), top_p .7: {0});
    - `top_p_rule="nucleus"` keeps the tokens with c_i − p_i < top_p, the smallest prefix whose mass
      reaches top_p (Holtzman et al., arXiv 1904.09751; at the same numbers: {0, 1}).
    """
    if not truncates(cfg):
        return None
    tempered = logits.float() / cfg.temperature
    if cfg.top_k is not None and cfg.top_k < tempered.shape[-1]:
        keep = tempered >= tempered.topk(cfg.top_k, dim=-1).values[..., -1:]
    else:
        keep = torch.ones_like(tempered, dtype=torch.bool)
    if cfg.top_p is not None and cfg.top_p < 1:
        sorted_logits, order = tempered.masked_fill_(~keep, float("-inf")).sort(dim=-1, descending=True)
        del tempered                                                        # `tempered` is not needed again
        sorted_p = sorted_logits.softmax(-1)
        del sorted_logits
        mass = sorted_p.cumsum(-1)                                          # c_i, inclusive
        if cfg.top_p_rule == "agrpo":
            kept_sorted = mass <= cfg.top_p
            kept_sorted[..., 0] = True
        else:  # nucleus
            kept_sorted = mass.sub_(sorted_p) < cfg.top_p
        del sorted_p, mass
        keep &= torch.zeros_like(keep).scatter_(-1, order, kept_sorted)
    return keep


def tempered_support(logits: torch.Tensor, cfg: SamplerConfig) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(ℓ / T restricted to the support, −∞ elsewhere [k, V]; the support [k, V] bool | None): the
    behaviour distribution the tokens of rows `logits` [k, V] were drawn from (T > 0)."""
    tempered = logits.float() / cfg.temperature
    keep = support_mask(logits, cfg)
    return (tempered if keep is None else tempered.masked_fill_(~keep, float("-inf"))), keep


def score_rows(logits: torch.Tensor, tokens: torch.Tensor, cfg: SamplerConfig
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(behaviour log-prob, model log-prob, entropy) [n] of tokens [n] drawn from rows `logits` [n, V]:
    one fp32 log-softmax gives the untempered log-prob and entropy; at T > 0 a second one the
    log-prob under temperature and support (the distribution the token was drawn from)."""
    logits, tokens = logits.float(), tokens[:, None]
    logp_all = F.log_softmax(logits, dim=-1)
    model_logp = logp_all.gather(-1, tokens).squeeze(-1)
    entropy = torch.special.entr(logp_all.exp()).sum(-1)
    del logp_all
    if cfg.temperature == 0:
        return model_logp, model_logp, entropy
    tempered, _ = tempered_support(logits, cfg)
    return F.log_softmax(tempered, dim=-1).gather(-1, tokens).squeeze(-1), model_logp, entropy


ROW_CHUNK = 1 << 24  # vocabulary entries per chunk of rows in `propose` (float64: 128 MiB per temporary)


def row_chunks(rows: int, V: int) -> list[slice]:
    """Consecutive chunks of `rows` rows of V entries, each at most ROW_CHUNK entries (at least one row)."""
    size = max(1, ROW_CHUNK // V)
    return [slice(i, min(i + size, rows)) for i in range(0, rows, size)]


def propose(block: torch.Tensor, cfg: SamplerConfig, generator: torch.Generator | None, stop_ids: tuple[int, ...],
            seq: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """x̂0 [B, W] and its float64 confidence [B, W] at every position of the block logits [B, W, V].

    x̂0: argmax at temperature 0, else float64 Gumbel-max over the top-k/top-p support.
    Confidence: `low_confidence` = the untempered probability of x̂0, `random` = a uniform draw.
    seq = (T, lo): the block is columns lo.. of the T-column sequence (llada_rng draws over all T).
    """
    B, W, V = block.shape
    rows = block.reshape(B * W, V)
    noise = None
    if cfg.temperature > 0:
        u = uniform(block.shape, cfg, generator, block.device, seq, torch.float64)
        noise = gumbel_denominator_(u, cfg.temperature).reshape(B * W, V)
        del u
    x0 = torch.empty(B * W, dtype=torch.long, device=block.device)
    for part in row_chunks(B * W, V):
        logits = rows[part]
        x0[part] = logits.argmax(-1) if noise is None else gumbel_argmax(logits, noise[part], support_mask(logits, cfg))
    del noise                                                   # freed before the confidences' temporaries
    if cfg.remasking == "low_confidence":
        conf = torch.empty(B * W, dtype=torch.float64, device=block.device)
        for part in row_chunks(B * W, V):
            conf[part] = F.softmax(rows[part].to(torch.float64), dim=-1).gather(-1, x0[part, None]).squeeze(-1)
        conf = conf.view(B, W)
    else:  # random
        conf = uniform((B, W), cfg, generator, block.device, seq, torch.float32).to(torch.float64)
    x0 = x0.view(B, W)
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


def gumbel_denominator_(u: torch.Tensor, temperature: float) -> torch.Tensor:
    """(−log u)^T, computed in place in the float64 uniforms u (returned)."""
    return u.log_().neg_().pow_(temperature)


def gumbel_argmax(logits: torch.Tensor, denominator: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """argmax(exp(ℓ) / (−log u)^T) over the last dim in float64, LLaDA's form of sampling softmax(ℓ / T)
    (float64 on purpose: low-precision Gumbel-max hurts generation, arXiv 2409.02908); ℓ = −∞ outside
    `keep`. denominator: `gumbel_denominator_(u, T)`."""
    scores = logits.to(torch.float64, copy=True)
    if keep is not None:
        scores.masked_fill_(~keep, float("-inf"))
    return scores.exp_().div_(denominator).argmax(-1)


def select_top(conf: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """[B, W] bool: per row, the k[b] highest-confidence positions (ties: leftmost first)."""
    order = conf.argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(conf.shape[1], device=conf.device).expand_as(order))
    return rank < k[:, None]
