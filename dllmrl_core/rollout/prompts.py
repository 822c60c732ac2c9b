"""Prompt batches for training: a seeded, resumable walk over the task's training examples."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dllmrl_core.models import encode_prompts
from dllmrl_core.tasks import render_prompts


@dataclass
class PromptStream:
    """Yields `n` examples at a time in a seeded order, reshuffling every epoch.

    (epoch, cursor) is the whole state: a checkpoint stores it and a resumed run continues with
    exactly the examples an uninterrupted run would have seen.
    """

    examples: list
    seed: int
    epoch: int = 0
    cursor: int = 0

    def __post_init__(self) -> None:
        if not self.examples:
            raise ValueError("no training examples: the task's training source is empty")

    def _order(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(len(self.examples), generator=g).tolist()

    def next(self, n: int) -> list:
        out, order = [], self._order()
        while len(out) < n:
            if self.cursor >= len(order):
                self.epoch, self.cursor = self.epoch + 1, 0
                order = self._order()
            out.append(self.examples[order[self.cursor]])
            self.cursor += 1
        return out

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "cursor": self.cursor}


def group_prompts(tokenizer, task, examples: list, group_size: int, style: str,
                  device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list]:
    """Each example's training prompt repeated G times: ids [B, P], mask [B, P], group ids [B],
    and the example of every row (B = len(examples) · G)."""
    ids, mask = encode_prompts(tokenizer, render_prompts(tokenizer, task, examples, style, "train"), chat=False)
    rows = torch.arange(len(examples)).repeat_interleave(group_size)
    return ids[rows].to(device), mask[rows].to(device), rows.to(device), [examples[i] for i in rows.tolist()]
