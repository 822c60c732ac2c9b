"""Dream's own denoising loop (`sampler.style: dream`), recording the trajectory it takes.

Semantics follow `DreamGenerationMixin.diffusion_generate` / `_sample` in Dream's generation_utils.py
(hub repository Dream-org/Dream-v0-Instruct-7B, read in the copy ZHZisZZ/dllm vendors; Dream 7B,
arXiv:2508.15487), algorithms `maskgit_plus`, `topk_margin` and `entropy`:
- The whole completion starts masked and is denoised at once: no semi-autoregressive blocks.
- Timesteps t = linspace(1, eps, S + 1). Step i runs one forward pass over the whole sequence (logits
  shifted and padding passed as Dream does: `MaskPredictor`), then at every masked position draws x̂0
  and a confidence (Dream's `sample_tokens`): logits / T when T > 0, top-p then top-k truncation,
  softmax; x̂0 = a draw (T > 0) or the argmax (T = 0); confidence = p(x̂0) (maskgit_plus),
  p_top1 − p_top2 (topk_margin) or Σ p log(p + 1e-10), the negative entropy (entropy), all computed
  from that truncated, tempered softmax in the logits' dtype.
- It commits k_i = ⌊n_i (1 − t_{i+1} / t_i)⌋ positions, n_i the masked positions per row (every
  remaining one at the last step): the k_i most confident (alg_temp = 0), or k_i drawn without
  replacement ∝ softmax(confidence / alg_temp). Committed tokens are never re-masked, so (completion,
  reveal step) records the path exactly as for LLaDA's loop (`RolloutBatch.state_at`).
- The draws are the same calls in the same order as Dream's (a categorical draw is torch.multinomial
  with replacement on the renormalised probabilities, as `torch.distributions.Categorical.sample`
  does), so with generator=None the output equals Dream's under the same torch seed at any
  temperature, not only at T = 0.

Departures from Dream's code, each deliberate:
- The mask token is never drawn (its logit is −∞), as in the LLaDA loop and the learner. Dream's
  generate has no such rule (a trained Dream gives it no mass); the parity tests hand Dream's
  `diffusion_generate` the same rule as its `generation_logits_hook_func`.
- `logits_eos_inf` is honoured (EOS logit −∞); Dream has no such option.
- Records for the learner: behaviour_logp is the fp32 log-prob under the distribution the token was
  drawn from (Dream's truncation and temperature; at T = 0 the untempered softmax, as for LLaDA),
  model_logp and entropy those of the untempered softmax, support_ids Dream's top-p/top-k support.
- Not implemented: `alg='origin'` (each masked position revealed independently with probability
  1 − s/t), classifier-free guidance, KV caches, continuing from a visited state (SAPO).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from dllmrl_core.models.predictor import MaskPredictor
from dllmrl_core.sampling.draw import row_chunks
from dllmrl_core.sampling.trace import Trace

if TYPE_CHECKING:
    from dllmrl_core.sampling.config import SamplerConfig

ENTROPY_EPS = 1e-10  # Dream's epsilon inside log(p + ε) of the entropy confidence


@torch.no_grad()
def denoise_dream(model: MaskPredictor, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, cfg: SamplerConfig,
                  *, pass_mask: bool = True, trace: Trace | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Denoise fully masked completions for left-padded prompts [B, P] with Dream's loop; returns the
    final completion [B, L]."""
    B, P = prompt_ids.shape
    x = torch.cat([prompt_ids, prompt_ids.new_full((B, cfg.gen_length), model.mask_id)], dim=1)     # [B, T]
    attn = torch.cat([prompt_mask, prompt_mask.new_ones(B, cfg.gen_length)], dim=1) if pass_mask else None
    timesteps = torch.linspace(1, cfg.dream.eps, cfg.steps + 1, device=x.device)
    for i in range(cfg.steps):
        masked = x == model.mask_id                                                  # [B, T], prompt never
        logits = model(x, attn, logits_at=slice(P, x.shape[1]))                      # [B, L, V]
        logits[..., model.mask_id] = float("-inf")   # [MASK] is not content: never drawn, never scored
        if cfg.logits_eos_inf and model.eos_id is not None:
            logits[..., model.eos_id] = float("-inf")
        if trace is not None and trace.wants_logits(i):
            trace.observe(i, x[:, P:], masked[:, P:], logits)
        rows = logits[masked[:, P:]]                                  # [n, V] row-major: Dream's logits[mask_index]
        keep = dream_support(rows, cfg)
        x0, confidence = sample_tokens(rows, keep, cfg, generator)
        commit = choose_positions(masked, confidence, transfer_count(masked, timesteps, i), cfg.dream.alg_temp,
                                  generator)[:, P:]                           # [B, L]
        drawn = torch.full_like(x[:, P:], model.mask_id)
        drawn[masked[:, P:]] = x0
        x[:, P:] = torch.where(commit, drawn, x[:, P:])
        if trace is not None:
            picked = commit[masked[:, P:]]                                    # [n] which drawn rows were committed
            held = None if keep is None else keep[picked]
            trace.commit_scored(i, commit, score_commits(rows[picked], x0[picked], held, cfg),
                                None if trace.support is None else support_ids(rows[picked], held, cfg))
    return x[:, P:].clone()


def transfer_count(masked: torch.Tensor, timesteps: torch.Tensor, i: int) -> int:
    """k_i = ⌊n (1 − t_{i+1} / t_i)⌋, every masked position at the last step; n = masked positions per row,
    computed as Dream does (the batch's count / B, in the timesteps' float32)."""
    n = masked.sum() / masked.shape[0]
    if i == len(timesteps) - 2:
        return int(n)
    return int(n * (1 - timesteps[i + 1] / timesteps[i]))


def dream_support(rows: torch.Tensor, cfg: SamplerConfig) -> torch.Tensor | None:
    """[n, V] bool: Dream's truncation of the tempered logits of `rows` [n, V] (top-p first, on the full
    distribution, then top-k; None = no truncation). top-p keeps each token whose more likely tokens hold
    at most `top_p` of the mass (the smallest prefix reaching it); top-k keeps logits ≥ the k-th largest."""
    tempered = tempered_logits(rows, cfg)
    keep = None
    if cfg.top_p is not None and cfg.top_p < 1:
        sorted_logits, order = tempered.sort(dim=-1, descending=True)
        mass_through = sorted_logits.softmax(-1).cumsum(-1)
        drop_sorted = torch.zeros_like(mass_through, dtype=torch.bool)
        drop_sorted[:, 1:] = mass_through[:, :-1] > cfg.top_p
        keep = ~torch.zeros_like(drop_sorted).scatter_(-1, order, drop_sorted)
    if cfg.top_k is not None:
        held = tempered if keep is None else tempered.masked_fill(~keep, torch.finfo(tempered.dtype).min)
        kth = held.topk(min(cfg.top_k, held.shape[-1]), dim=-1).values[:, -1:]
        keep = held >= kth if keep is None else keep & (held >= kth)
    return keep


def tempered_logits(rows: torch.Tensor, cfg: SamplerConfig) -> torch.Tensor:
    """ℓ / T at T > 0, ℓ at T = 0 (Dream divides only when sampling), in the logits' dtype."""
    return rows / cfg.temperature if cfg.temperature > 0 else rows


def sample_tokens(rows: torch.Tensor, keep: torch.Tensor | None, cfg: SamplerConfig,
                  generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(x̂0 [n], confidence [n]) from rows [n, V] as Dream's `sample_tokens` computes them."""
    tempered = tempered_logits(rows, cfg)
    if keep is not None:
        tempered = tempered.masked_fill(~keep, torch.finfo(tempered.dtype).min)
    probs = torch.softmax(tempered, dim=-1)
    if cfg.temperature > 0:   # Categorical(probs).sample(): multinomial on the renormalised probabilities
        x0 = torch.multinomial(probs / probs.sum(-1, keepdim=True), 1, True, generator=generator).squeeze(-1)
        confidence = probs.gather(-1, x0[:, None]).squeeze(-1)
    else:
        confidence, x0 = probs.max(dim=-1)
    if cfg.dream.alg == "topk_margin":
        top2 = probs.topk(2, dim=-1).values
        confidence = top2[:, 0] - top2[:, 1]
    elif cfg.dream.alg == "entropy":
        confidence = (probs * torch.log(probs + ENTROPY_EPS)).sum(-1)
    return x0, confidence


def choose_positions(masked: torch.Tensor, confidence: torch.Tensor, k: int, alg_temp: float,
                     generator: torch.Generator | None) -> torch.Tensor:
    """[B, T] bool: the k positions per row a step commits, chosen over the whole sequence as Dream
    chooses them (confidence −∞ where nothing is masked)."""
    commit = torch.zeros_like(masked)
    if k <= 0:
        return commit
    full = torch.full(masked.shape, float("-inf"), dtype=confidence.dtype, device=masked.device)
    full[masked] = confidence
    if alg_temp == 0:
        picked = full.topk(k, dim=-1).indices
    else:
        picked = torch.multinomial(F.softmax(full / alg_temp, dim=-1), k, generator=generator)
    return commit.scatter_(1, picked, True) & masked


def score_commits(rows: torch.Tensor, tokens: torch.Tensor, keep: torch.Tensor | None, cfg: SamplerConfig
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """fp32 (behaviour log-prob, model log-prob, entropy) [k] of the committed tokens [k] drawn from rows
    [k, V] with support `keep` [k, V], in chunks of rows (`draw.row_chunks`)."""
    parts = [score_rows(rows[p], tokens[p], None if keep is None else keep[p], cfg)
             for p in row_chunks(len(tokens), rows.shape[-1])]
    if not parts:
        empty = rows.new_zeros(0, dtype=torch.float32)
        return empty, empty, empty
    return tuple(torch.cat([part[j] for part in parts]) for j in range(3))


def score_rows(logits: torch.Tensor, tokens: torch.Tensor, keep: torch.Tensor | None, cfg: SamplerConfig
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """fp32 (behaviour log-prob, model log-prob, entropy) [n] of tokens [n] drawn from rows [n, V]."""
    logits, tokens = logits.float(), tokens[:, None]
    logp_all = F.log_softmax(logits, dim=-1)
    model_logp = logp_all.gather(-1, tokens).squeeze(-1)
    entropy = torch.special.entr(logp_all.exp()).sum(-1)
    if cfg.temperature == 0:
        return model_logp, model_logp, entropy
    tempered = logits / cfg.temperature
    if keep is not None:
        tempered = tempered.masked_fill(~keep, float("-inf"))
    return F.log_softmax(tempered, dim=-1).gather(-1, tokens).squeeze(-1), model_logp, entropy


def support_ids(rows: torch.Tensor, keep: torch.Tensor | None, cfg: SamplerConfig) -> torch.Tensor | None:
    """[k, W] ids of each row's support, most likely first, -1 padded to the widest (None = full vocabulary)."""
    if keep is None or cfg.temperature == 0 or len(rows) == 0:
        return None
    sizes = keep.sum(-1)
    width = int(sizes.max())
    top = rows.masked_fill(~keep, float("-inf")).topk(width, dim=-1).indices
    return top.masked_fill(torch.arange(width, device=top.device) >= sizes[:, None], -1)
