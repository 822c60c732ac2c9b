"""RolloutBatch: states rebuilt from reveal steps, per-step entropy, worked by hand."""

import pytest
import torch

from dllmrl_core.contract.types import RolloutBatch, StepLogits
from tests.core.batch_views import row_logits

M = 9  # mask id


def batch(**over):
    fields = dict(
        prompt_ids=torch.tensor([[0, 5], [6, 7]]), prompt_mask=torch.tensor([[False, True], [True, True]]),
        completion_ids=torch.tensor([[1, 2, 3], [4, 4, 1]]),
        reveal_step=torch.tensor([[1, 0, 1], [2, 0, 0]]),
        behaviour_logp=torch.zeros(2, 3), model_logp=torch.zeros(2, 3),
        token_entropy=torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.5, 1.5]]),
        steps=3, block_length=3, temperature=1.0, mask_id=M)
    return RolloutBatch(**(fields | over))


def test_state_at_rebuilds_each_state():
    b = batch()
    assert b.completion_at(0).tolist() == [[M, M, M], [M, M, M]]
    assert b.completion_at(1).tolist() == [[M, 2, M], [M, 4, 1]]
    assert b.completion_at(2).tolist() == [[1, 2, 3], [M, 4, 1]]
    assert b.completion_at(3).tolist() == [[1, 2, 3], [4, 4, 1]]
    assert b.state_at(1).tolist() == [[0, 5, M, 2, M], [6, 7, M, 4, 1]]
    assert b.completion_at(torch.tensor([1, 2])).tolist() == [[M, 2, M], [M, 4, 1]]  # per-row steps
    assert b.attention_mask.tolist() == [[False, True, True, True, True], [True] * 5]


def test_step_entropy_is_the_mean_over_tokens_revealed_at_the_step():
    # row 0: step 0 reveals {2.0}; step 1 reveals {1.0, 3.0} -> 2.0; step 2 nothing -> 0
    # row 1: step 0 reveals {0.5, 1.5} -> 1.0; step 1 nothing; step 2 reveals {4.0}
    assert batch().step_entropy.tolist() == [[2.0, 2.0, 0.0], [1.0, 0.0, 4.0]]


def test_shapes_are_checked_at_the_boundary():
    with pytest.raises(ValueError, match="reveal_step"):
        batch(reveal_step=torch.zeros(2, 4, dtype=torch.long))


def test_step_logits_rows():
    kept = StepLogits(step=torch.tensor([1, -1, 0]), masked=torch.tensor([[1, 1, 0], [0, 0, 0], [0, 1, 0]]).bool(),
                      logits=torch.arange(6.0).view(3, 2))
    assert row_logits(kept, 0).tolist() == [[0.0, 1.0], [2.0, 3.0]]
    assert row_logits(kept, 1).shape == (0, 2)
    assert row_logits(kept, 2).tolist() == [[4.0, 5.0]]


def test_scored_batch_keeps_each_completions_accuracy_as_a_share():
    from dllmrl_core.verify.batch import scored_batch
    from dllmrl_core.contract.types import BranchSet
    from dllmrl_core.contract.verdict import Verdict

    b = batch()
    b.branches = BranchSet(kind="sapo", source_row=torch.tensor([0, 1]), step=torch.tensor([1, 1]),
                           completion_ids=torch.zeros(2, 3, dtype=torch.long))
    # points / total: 1/1, 0/1 for the main rows; a Sudoku-like 3 of 4 cells, and a timed-out item (0 / 1)
    verdicts = [Verdict(2.0, points=1.0, total=1.0), Verdict(0.5, points=0.0, total=1.0),
                Verdict(0.75, points=3.0, total=4.0), Verdict(0.0, timed_out=True)]
    scored = scored_batch(b, verdicts)
    assert scored.accuracy.tolist() == [1.0, 0.0] and scored.branch_accuracy.tolist() == [0.75, 0.0]
    assert scored.correct.tolist() == [True, False] and scored.branch_rewards.tolist() == [0.75, 0.0]
