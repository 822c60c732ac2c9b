"""Log-probabilities of target tokens straight from hidden states, a few positions at a time.

    logp_j = log softmax(ℓ_j / T)[o_j],   ℓ_j = W h_j + b,   softmax over the allowed tokens only
    H_j    = entropy of that distribution (no gradient)

At LLaDA-8B's 126,464-token vocabulary the [n, V] logits of a micro-batch (and their fp32 copies,
log-softmax and gradient) are the learner's largest tensors. This function never holds more than
one chunk of them: the forward keeps only the hidden states, and the backward recomputes each
chunk's logits (the LM head is frozen, so only ∂/∂h is needed):

    ∂logp_j/∂ℓ_j = (onehot(o_j) − p_j) / T   on the allowed tokens, 0 elsewhere

computed with autograd's own arithmetic (log-softmax's backward g·onehot − exp(logp)·g, then the
division by T), so on CPU the values and gradients equal the full path's bit for bit
(`tests/core/training/test_memory_paths.py`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CHUNK_BYTES = 128 * 2**20  # fp32 logits per chunk: 265 positions at V = 126,464


def head_logp(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
              temperature: float, mask_id: int, support: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """(logp [n] fp32, differentiable w.r.t. hidden; entropy [n] fp32, no gradient).

    hidden [n, d] after the final norm; weight [V, d] (frozen), bias [V] | None; targets [n] ids;
    the [MASK] token is never allowed; support [n, W] ids (-1 = padding) restricts the softmax.
    """
    if weight.requires_grad:
        raise ValueError("head_logp: the LM head must be frozen (only the hidden states get a gradient)")
    return _HeadLogp.apply(hidden, weight, bias, targets, float(temperature), int(mask_id), support)


def chunk_size(vocab: int) -> int:
    return max(1, CHUNK_BYTES // (4 * vocab))


def chunk_logits(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, temperature: float,
                 mask_id: int, support: torch.Tensor | None) -> torch.Tensor:
    """[c, V] fp32 logits / T of hidden states h [c, d], [MASK] and tokens outside the support at −inf."""
    return restrict(F.linear(h, weight, bias), temperature, mask_id, support)


def restrict(logits: torch.Tensor, temperature: float, mask_id: int, support: torch.Tensor | None) -> torch.Tensor:
    """logits [c, V] as fp32 / T, with [MASK] (never drawn by the sampler) and every token outside
    `support` [c, W] (ids, −1 = padding) at −inf: the distribution the sampler drew from."""
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    logits[:, mask_id] = float("-inf")
    if support is not None:  # padding scatters into a spare column (never onto token 0)
        V = logits.shape[1]
        ids = torch.where(support >= 0, support, V)
        allowed = logits.new_zeros(logits.shape[0], V + 1, dtype=torch.bool).scatter_(1, ids, True)[:, :V]
        logits = logits.masked_fill_(~allowed, float("-inf"))
    return logits


class _HeadLogp(torch.autograd.Function):
    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, hidden, weight, bias, targets, temperature, mask_id, support):
        c = chunk_size(weight.shape[0])
        logp, entropy = [], []
        for s in range(0, hidden.shape[0], c):
            logp_all = F.log_softmax(chunk_logits(hidden[s:s + c], weight, bias, temperature, mask_id,
                                                  None if support is None else support[s:s + c]), dim=-1)
            logp.append(logp_all.gather(1, targets[s:s + c, None]).squeeze(1))
            entropy.append(torch.special.entr(logp_all.exp()).sum(-1))
        ctx.save_for_backward(hidden, weight, bias, targets, support)
        ctx.temperature, ctx.mask_id = temperature, mask_id
        empty = hidden.new_zeros(0, dtype=torch.float32)
        entropy = torch.cat(entropy) if entropy else empty
        ctx.mark_non_differentiable(entropy)
        return (torch.cat(logp) if logp else empty), entropy

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad_logp, _grad_entropy):
        hidden, weight, bias, targets, support = ctx.saved_tensors
        c = chunk_size(weight.shape[0])
        grad_h = torch.empty_like(hidden)
        for s in range(0, hidden.shape[0], c):
            logp_all = F.log_softmax(chunk_logits(hidden[s:s + c], weight, bias, ctx.temperature, ctx.mask_id,
                                                  None if support is None else support[s:s + c]), dim=-1)
            picked = torch.zeros_like(logp_all).scatter_(1, targets[s:s + c, None], grad_logp[s:s + c, None])
            grad = torch.ops.aten._log_softmax_backward_data(picked, logp_all, -1, logp_all.dtype)  # g·1_o − p·g
            del picked, logp_all
            if ctx.temperature != 1.0:
                grad.div_(ctx.temperature)
            grad_h[s:s + c] = (grad.to(weight.dtype) @ weight).to(hidden.dtype)
        return grad_h, None, None, None, None, None, None
