"""Verdicts on decoded completions, and joining them to a rollout batch.

`verify` is the per-item function reward workers run (in a process, under a time limit, in the
Ray system); `scored_batch` joins the verdicts back to the batch in row order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from dllmrl_core.types import RolloutBatch, ScoredBatch


@dataclass(frozen=True)
class Verdict:
    """reward: total training reward; components: its parts; correct: fully correct under the
    task's evaluation scorer; timed_out: the verifier hit its time limit (reward 0, counted)."""

    reward: float
    components: dict[str, float] = field(default_factory=dict)
    correct: bool = False
    timed_out: bool = False


def verify(task, reward_set: str, protocol: str, completion: str, example) -> Verdict:
    """The training reward and, under the task's evaluation protocol, whether it is correct."""
    result = task.reward(completion, example, reward_set)
    score = task.score(completion, example, protocol)
    return Verdict(reward=result.total, components=result.components, correct=score.correct >= score.total > 0)


def decode(tokenizer, ids: torch.Tensor) -> list[str]:
    """Completion text as d1 scores it: special tokens (EOS padding, EoT) removed."""
    return tokenizer.batch_decode(ids.tolist(), skip_special_tokens=True)


def completions_to_verify(rollout: RolloutBatch, tokenizer, examples: list) -> tuple[list[str], list]:
    """(texts, examples) for every main row, then every branch, in that order."""
    texts = decode(tokenizer, rollout.completion_ids)
    items = list(examples)
    if rollout.branches is not None:
        texts += decode(tokenizer, rollout.branches.completion_ids)
        items += [examples[i] for i in rollout.branches.source_row.tolist()]
    return texts, items


def scored_batch(rollout: RolloutBatch, verdicts: list[Verdict]) -> ScoredBatch:
    """Main verdicts first (one per row), branch verdicts after (one per branch)."""
    B = rollout.batch_size
    main, branch = verdicts[:B], verdicts[B:]
    names = sorted({k for v in main for k in v.components})
    device = rollout.completion_ids.device
    return ScoredBatch(
        rollout=rollout,
        rewards=torch.tensor([v.reward for v in main], dtype=torch.float32, device=device),
        components={k: torch.tensor([v.components.get(k, 0.0) for v in main], device=device) for k in names},
        correct=torch.tensor([v.correct for v in main], dtype=torch.bool, device=device),
        branch_rewards=torch.tensor([v.reward for v in branch], dtype=torch.float32, device=device)
        if rollout.branches is not None else None,
        timeouts=sum(v.timed_out for v in verdicts),
    )
