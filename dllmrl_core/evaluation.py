"""Held-out evaluation with d1's protocol (algorithms.md §2.6).

Greedy decoding, low-confidence remasking, block length 32 and steps = gen_length / 2, the task's
evaluation prompt followed by its prefill ("<reasoning>" for d1 prompts), and the task's scorer.
Accuracy is Σ points / Σ total over the items (Sudoku: cell accuracy over all empty cells).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from dllmrl_core.models import encode_prompts
from dllmrl_core.sampling import SamplerConfig
from dllmrl_core.tasks import render_prompts


def eval_sampler(gen_length: int, block_length: int = 32) -> SamplerConfig:
    """d1's evaluation decoding: greedy, block min(32, L), steps = L / 2."""
    block = min(block_length, gen_length)
    return SamplerConfig(gen_length=gen_length, steps=max(gen_length // 2, gen_length // block), block_length=block,
                         temperature=0.0, remasking="low_confidence")


def eval_prompts(tokenizer, task, examples: list, style: str) -> tuple[torch.Tensor, torch.Tensor]:
    texts = render_prompts(tokenizer, task, examples, style, "test")
    return encode_prompts(tokenizer, texts, chat=False, prefill=task.eval_prefill(style))


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


def paired_delta(before: list, after: list) -> tuple[float, float]:
    """(after − before, 95% half-width) in percent points, items paired (the same problems)."""
    n = len(before)
    if n == 0 or n != len(after):
        return 0.0, 0.0
    d = [(a.points / a.total if a.total else 0.0) - (b.points / b.total if b.total else 0.0)
         for a, b in zip(after, before)]
    mean = sum(d) / n
    var = sum((x - mean) ** 2 for x in d) / max(n - 1, 1)
    return 100 * mean, 100 * 1.96 * math.sqrt(var / n)


def before_after(before: list, after: list) -> dict[str, float]:
    """The summary fields of a run evaluated before and after training."""
    b, a = summarize(before), summarize(after)
    delta, delta_ci = paired_delta(before, after)
    return {"accuracy_before": round(b.accuracy, 2), "accuracy_after": round(a.accuracy, 2),
            "ci95": round(a.ci95, 2), "delta": round(delta, 2), "delta_ci95": round(delta_ci, 2),
            "well_formed_before": round(b.well_formed, 2), "well_formed_after": round(a.well_formed, 2),
            "eval_items": a.items}


@torch.no_grad()
def d1_generations(task, examples: list, texts: list[str], verdicts: list, sampler: SamplerConfig) -> dict:
    """Per-item generations in d1's eval-output layout (`dllmrl score` re-scores such a file)."""
    records = []
    for example, text, verdict in zip(examples, texts, verdicts):
        question, truth = task.d1_record(example)
        records.append({"question": question, "generations": text, "ground_truth": truth,
                        "correct": verdict.points, "total": verdict.total})
    return {"generations": records, "gen_length": sampler.gen_length, "diffusion_steps": sampler.steps,
            "block_length": sampler.block_length}


def eval_file(run_dir: str | Path, step: int) -> Path:
    """Where a run's evaluation at `step` writes its generations."""
    return Path(run_dir) / "eval" / f"step_{step:06d}_generations.json"


def write_generations(path: Path, task, examples: list, texts: list[str], verdicts: list,
                      sampler: SamplerConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(d1_generations(task, examples, texts, verdicts, sampler), indent=1))


def evaluate_local(policy, tokenizer, task, examples: list, style: str, sampler: SamplerConfig, protocol: str,
                   batch_size: int = 64) -> tuple[list[str], list]:
    """In-process evaluation (the single-process loop's): (texts, verdicts) per example, in order."""
    from dllmrl_core.sampling import sample
    from dllmrl_core.scoring import decode
    from dllmrl_core.verdict import verify

    policy.model.eval()
    texts, verdicts = [], []
    for i in range(0, len(examples), batch_size):
        chunk = examples[i:i + batch_size]
        ids, mask = eval_prompts(tokenizer, task, chunk, style)
        batch = sample(policy, ids.to(policy.device), mask.to(policy.device), sampler)
        chunk_texts = decode(tokenizer, batch.completion_ids)
        verdicts += [verify(task, "d1", protocol, text, ex) for text, ex in zip(chunk_texts, chunk)]
        texts += chunk_texts
    return texts, verdicts
