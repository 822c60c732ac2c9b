"""Held-out evaluation with d1's protocol (d1 `eval/`, arXiv 2504.12216; docs/methods.md "Evaluation").

Greedy decoding, low-confidence remasking, block length 32 and steps = gen_length / 2, the task's
evaluation prompt followed by its prefill ("<reasoning>" for d1 prompts), and the task's scorer.
Accuracy is Σ points / Σ total over the items (Sudoku: cell accuracy over all empty cells).

`eval.gen_length` may list several lengths (the papers report 128, 256 and 512): each is evaluated
on the same problems, and the evaluation's accuracy is their average (the papers' "Avg." column),
each problem's score averaged over the lengths. `eval.steps` replaces gen_length / 2 with a fixed
step count at every length (AGRPO's "4× fewer steps", SAPO's step sweep; `services.evaluate
--steps` sweeps it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import Field, field_validator

from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.contract.jsontext import dumps
from dllmrl_core.contract.verdict import Verdict
from dllmrl_core.models import encode_prompts
from dllmrl_core.sampling import SamplerConfig
from dllmrl_core.tasks import render_prompts
from dllmrl_core.tasks.base import D1Records

D1_LENGTHS = (128, 256, 512)  # d1's evaluation lengths, reported by every paper built on it
# What a driver supplies to evaluate: (examples, greedy sampler) -> (completion texts, verdicts), in order
Generate = Callable[[list, SamplerConfig], tuple[list[str], list[Verdict]]]


class EvalConfig(ConfigModel):
    """Held-out evaluation with d1's protocol: greedy, block 32, steps = gen_length / 2 (or eval.steps)."""

    before: bool = Field(False, description="evaluate the starting weights before training")
    after: bool = Field(False, description="evaluate the final weights after training")
    every: int = Field(0, ge=0, description="evaluate every N optimizer steps (0 = never during training)")
    num_examples: int | None = Field(64, ge=1, description="test examples per evaluation (None = the whole test split)")
    gen_length: int | list[int] | None = Field(
        None, description="completion length, or a list of lengths each evaluated on the same problems "
                          "(the papers: [128, 256, 512]); None = sampler.gen_length")
    steps: int | None = Field(None, ge=1, description="denoising steps at every length (None = gen_length / 2, "
                                                      "d1's protocol)")
    block_length: int = Field(32, ge=1, description="d1 protocol: 32 (clipped to gen_length)")
    batch_rows: int | None = Field(None, ge=1, description="rows one worker generates at once (None = its whole "
                                                           "share; the single-process loop: 64)")

    @field_validator("gen_length")
    @classmethod
    def _positive_lengths(cls, value: int | list[int] | None) -> int | list[int] | None:
        lengths = value if isinstance(value, list) else [] if value is None else [value]
        if isinstance(value, list) and not value:
            raise ValueError("give at least one length (or null for sampler.gen_length)")
        if any(n < 1 for n in lengths) or len(set(lengths)) != len(lengths):
            raise ValueError(f"lengths must be distinct and ≥ 1, got {value}")
        return value

    @property
    def active(self) -> bool:
        """Whether a run evaluates at all."""
        return self.before or self.after or bool(self.every)

    def lengths(self, default: int) -> list[int]:
        """The evaluation lengths; `default` (the sampler's) when none is set."""
        if self.gen_length is None:
            return [default]
        return list(self.gen_length) if isinstance(self.gen_length, list) else [self.gen_length]

    def samplers(self, default_length: int) -> list[SamplerConfig]:
        """One greedy sampler per evaluation length."""
        return [eval_sampler(n, self.block_length, self.steps) for n in self.lengths(default_length)]


def eval_chunks(examples: int, workers: int, batch_rows: int | None) -> int:
    """How many jobs an evaluation of `examples` problems is split into: one per worker, more when
    a worker's share exceeds batch_rows (a worker generates its jobs one after the other)."""
    return max(workers, math.ceil(examples / batch_rows)) if batch_rows else workers


def eval_sampler(gen_length: int, block_length: int = 32, steps: int | None = None) -> SamplerConfig:
    """d1's evaluation decoding: greedy, low-confidence, block min(32, L), steps = L / 2 unless given.
    A step count that does not fit the blocks is an error naming it."""
    block = min(block_length, gen_length)
    return SamplerConfig.parse({"gen_length": gen_length, "steps": steps or max(gen_length // 2, gen_length // block),
                                "block_length": block, "temperature": 0.0, "remasking": "low_confidence"},
                               where=f"evaluation at gen_length {gen_length}")


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


@dataclass(frozen=True)
class ItemScore:
    """One problem's evaluation score averaged over the evaluation lengths (well_formed: the share
    of lengths at which an answer could be extracted)."""

    points: float
    total: float
    well_formed: float


def across_lengths(per_length: dict[int, list]) -> list[ItemScore]:
    """Each problem's score averaged over the lengths it was evaluated at (the same problems, in the
    same order, at every length). Summarized, this is the mean of the per-length accuracies."""
    runs = list(per_length.values())
    if not runs:
        return []
    n = len(runs)
    return [ItemScore(sum(v.points for v in item) / n, item[0].total, sum(float(v.well_formed) for v in item) / n)
            for item in zip(*runs, strict=True)]


def eval_metrics(per_length: dict[int, list]) -> dict[str, float]:
    """What an evaluation logs: eval/... (averaged over the lengths) and, with several lengths,
    eval/<length>/... for each."""
    metrics = summarize(across_lengths(per_length)).as_dict()
    if len(per_length) > 1:
        for length, verdicts in per_length.items():
            metrics.update(summarize(verdicts).as_dict(f"eval/{length}"))
    return metrics


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
    """Per-item generations in d1's eval-output layout (`dllmrl score` re-scores such a file); a task
    without d1's records writes its evaluation prompt as the question and no ground truth."""
    records = []
    for example, text, verdict in zip(examples, texts, verdicts):
        question, truth = task.d1_record(example) if isinstance(task, D1Records) else (task.eval_prompt(example), None)
        records.append({"question": question, "generations": text, "ground_truth": truth,
                        "correct": verdict.points, "total": verdict.total})
    return {"generations": records, "gen_length": sampler.gen_length, "diffusion_steps": sampler.steps,
            "block_length": sampler.block_length}


def eval_file(run_dir: str | Path, step: int, gen_length: int | None = None) -> Path:
    """Where a run's evaluation at `step` writes its generations (one file per length when it
    evaluates several)."""
    length = "" if gen_length is None else f"_{gen_length}"
    return Path(run_dir) / "eval" / f"step_{step:06d}{length}_generations.json"


def write_generations(path: Path, task, examples: list, texts: list[str], verdicts: list,
                      sampler: SamplerConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(d1_generations(task, examples, texts, verdicts, sampler), indent=1))


def evaluate_once(generate: Generate, task, examples: list, sampler: SamplerConfig, path: Path) -> list[Verdict]:
    """One evaluation pass: generate and verify `examples` with `sampler`, write the generations in
    d1's layout to `path`; returns the verdicts (one per example, in order)."""
    texts, verdicts = generate(examples, sampler)
    write_generations(path, task, examples, texts, verdicts, sampler)
    return verdicts


def evaluate_local(policy, tokenizer, task, examples: list, style: str, sampler: SamplerConfig, verifier,
                   batch_size: int = 64) -> tuple[list[str], list]:
    """In-process sampling (the single-process loop's evaluation), verified on `verifier` (a
    `VerifierPool`, under its evaluation protocol and time limit): (texts, verdicts) per example, in order."""
    from dllmrl_core.contract.verdict import VerifyItem
    from dllmrl_core.sampling import sample
    from dllmrl_core.verify.batch import decode

    policy.model.eval()
    texts, verdicts = [], []
    for i in range(0, len(examples), batch_size):
        chunk = examples[i:i + batch_size]
        ids, mask = eval_prompts(tokenizer, task, chunk, style)
        batch = sample(policy, ids.to(policy.device), mask.to(policy.device), sampler)
        chunk_texts = decode(tokenizer, batch.completion_ids)
        verdicts += verifier.map([VerifyItem(text, ex) for text, ex in zip(chunk_texts, chunk)])
        texts += chunk_texts
    return texts, verdicts
