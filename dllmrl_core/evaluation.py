"""Held-out evaluation with d1's protocol (algorithms.md §2.6).

Greedy decoding, low-confidence remasking, block length 32 and steps = gen_length / 2, the task's
evaluation prompt followed by its prefill ("<reasoning>" for d1 prompts), and the task's scorer.
Accuracy is Σ points / Σ total over the items (Sudoku: cell accuracy over all empty cells).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dllmrl_core.models import encode_prompts
from dllmrl_core.sampling import SamplerConfig


def eval_sampler(gen_length: int, block_length: int = 32) -> SamplerConfig:
    """d1's evaluation decoding: greedy, block min(32, L), steps = L / 2."""
    block = min(block_length, gen_length)
    return SamplerConfig(gen_length=gen_length, steps=max(gen_length // 2, gen_length // block), block_length=block,
                         temperature=0.0, remasking="low_confidence")


def eval_prompts(tokenizer, task, examples: list, style: str) -> tuple[torch.Tensor, torch.Tensor]:
    texts = [task.eval_prompt(ex, style) for ex in examples]
    return encode_prompts(tokenizer, texts, prefill=task.eval_prefill(style))


@dataclass(frozen=True)
class EvalSummary:
    """accuracy and well_formed in percent; ci95 = half-width of a 95% normal interval (percent)."""

    accuracy: float
    well_formed: float
    items: int
    ci95: float

    def as_dict(self, prefix: str = "eval") -> dict[str, float]:
        return {f"{prefix}/accuracy": self.accuracy, f"{prefix}/well_formed": self.well_formed,
                f"{prefix}/ci95": self.ci95, f"{prefix}/items": float(self.items)}


def summarize(verdicts: list) -> EvalSummary:
    """Accuracy over a set of verdicts; the interval treats each item's score as one observation."""
    n = len(verdicts)
    if n == 0:
        return EvalSummary(0.0, 0.0, 0, 0.0)
    total = sum(v.total for v in verdicts) or 1.0
    acc = sum(v.points for v in verdicts) / total
    per_item = [v.points / v.total if v.total else 0.0 for v in verdicts]
    mean = sum(per_item) / n
    var = sum((x - mean) ** 2 for x in per_item) / max(n - 1, 1)
    return EvalSummary(accuracy=100 * acc, well_formed=100 * sum(v.well_formed for v in verdicts) / n, items=n,
                       ci95=100 * 1.96 * math.sqrt(var / n))
