"""Views of rollout records that only the tests read (the code itself never needs them)."""

import torch

from dllmrl_core.contract.types import RolloutBatch, StepLogits


def sequence_ids(batch: RolloutBatch) -> torch.Tensor:
    """[B, P+L] prompt followed by the final completion."""
    return torch.cat([batch.prompt_ids, batch.completion_ids], dim=1)


def revealed_at(batch: RolloutBatch, step: int | torch.Tensor) -> torch.Tensor:
    """[B, L] bool, the positions committed during `step` (int, or [B] per row)."""
    step = torch.as_tensor(step, device=batch.reveal_step.device).reshape(-1, 1)
    return batch.reveal_step == step


def row_logits(kept: StepLogits, b: int) -> torch.Tensor:
    """[n_b, V] logits of row b's masked positions (ascending position order)."""
    offsets = torch.cat([kept.masked.new_zeros(1, dtype=torch.long), kept.masked.sum(1).cumsum(0)])
    return kept.logits[offsets[b]: offsets[b + 1]]
