"""How many tokens to commit at each denoising step (LLaDA's linear schedule)."""

from __future__ import annotations

import torch


def transfer_schedule(block_masked: torch.Tensor, steps_per_block: int,
                      start_step: torch.Tensor | None = None) -> torch.Tensor:
    """Tokens to commit per row and step: [B, S] int64, S = n_blocks * steps_per_block.

    block_masked: [B, n_blocks] masked positions per block when the row's denoising of that
                  block begins.
    start_step:   [B] global step at which each row resumes (default 0). Steps before it commit
                  nothing; a row resuming inside a block spreads that block's remaining masks
                  over the block's remaining steps.

    LLaDA's linear noise schedule (LLaDA paper Eq. 8, `get_num_transfer_tokens` in its
    generate.py) makes the expected number of tokens per step constant: m masked tokens over k
    steps give floor(m / k) per step, the first (m mod k) steps one more.
    """
    B, n_blocks = block_masked.shape
    S = n_blocks * steps_per_block
    start = torch.zeros(B, dtype=torch.long, device=block_masked.device) if start_step is None else start_step
    s = torch.arange(S, device=block_masked.device).expand(B, S)          # [B, S] global step
    block = s // steps_per_block
    first = torch.maximum(block * steps_per_block, start[:, None])       # first active step of the block
    n_active = (block + 1) * steps_per_block - first                     # active steps in the block
    m = block_masked.long().gather(1, block)                             # masks to spread
    k = torch.where(s >= first, s - first, torch.zeros_like(s))          # index among active steps
    quota = m // n_active.clamp(min=1) + (k < m % n_active.clamp(min=1)).long()
    return torch.where(s >= first, quota, torch.zeros_like(quota))
