"""Decoding completions for verification, and joining verdicts back to a rollout batch."""

from __future__ import annotations

import torch

from dllmrl_core.contract.types import RolloutBatch, ScoredBatch
from dllmrl_core.contract.verdict import Verdict, VerifyItem


def decode(tokenizer, ids: torch.Tensor) -> list[str]:
    """Completion text as d1 scores it: special tokens (EOS padding, EoT) removed."""
    return tokenizer.batch_decode(ids.tolist(), skip_special_tokens=True)


def completions_to_verify(rollout: RolloutBatch, tokenizer, examples: list,
                          protocol: str | None = None) -> list[VerifyItem]:
    """Every main row, then every branch, in that order (scored under `protocol`, see VerifyItem)."""
    texts = decode(tokenizer, rollout.completion_ids)
    items = list(examples)
    if rollout.branches is not None:
        texts += decode(tokenizer, rollout.branches.completion_ids)
        items += [examples[i] for i in rollout.branches.source_row.tolist()]
    return [VerifyItem(text, example, protocol) for text, example in zip(texts, items)]


def scored_batch(rollout: RolloutBatch, verdicts: list[Verdict]) -> ScoredBatch:
    """Main verdicts first (one per row), branch verdicts after (one per branch)."""
    B = rollout.batch_size
    main, branch = verdicts[:B], verdicts[B:]
    names = sorted({k for v in main for k in v.components})
    device = rollout.completion_ids.device

    def share(items: list[Verdict]) -> torch.Tensor:
        return torch.tensor([v.points / v.total if v.total > 0 else 0.0 for v in items], device=device)

    return ScoredBatch(
        rollout=rollout,
        rewards=torch.tensor([v.reward for v in main], dtype=torch.float32, device=device),
        components={k: torch.tensor([v.components.get(k, 0.0) for v in main], device=device) for k in names},
        correct=torch.tensor([v.correct for v in main], dtype=torch.bool, device=device),
        branch_rewards=torch.tensor([v.reward for v in branch], dtype=torch.float32, device=device)
        if rollout.branches is not None else None,
        timeouts=sum(v.timed_out for v in verdicts),
        crashes=sum(v.crashed for v in verdicts),
        accuracy=share(main),
        branch_accuracy=share(branch) if rollout.branches is not None else None,
    )
