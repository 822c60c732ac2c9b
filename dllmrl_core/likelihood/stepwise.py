"""Exact per-step log-probs: the tokens revealed at step t given the state before step t.

The denoising trajectory is a Markov chain over partially masked states; the action at step t is
the set of tokens committed at t, and its probability factorises over those positions given the
state x_t (rebuilt from the recorded reveal steps). AGRPO scores them under the exact behaviour
policy (logits / T restricted to the recorded top-k/top-p support; arXiv 2510.04019, docs/methods.md
"AGRPO"); EGSPO under the untempered softmax (arXiv 2603.12554, docs/methods.md "EGSPO / EGSPO-SA").
"""

from __future__ import annotations

import torch

from dllmrl_core.contract.types import RolloutBatch
from dllmrl_core.likelihood.query import LogpQuery


def step_query(rollout: RolloutBatch, rows: torch.Tensor, steps: torch.Tensor, *, behaviour: bool) -> LogpQuery:
    """One query row per (rows[n], steps[n]): input = state before that step, targets = its reveals.

    behaviour=True: tempered and support-restricted like the sampler (AGRPO); False: untempered (EGSPO).
    """
    reveal = rollout.reveal_step[rows]                                               # [n, L]
    completion = rollout.completion_ids[rows]
    partial = completion.masked_fill(reveal >= steps[:, None], rollout.mask_id)
    use_temperature = behaviour and rollout.temperature > 0
    return LogpQuery(
        input_ids=torch.cat([rollout.prompt_ids[rows], partial], dim=1),
        attention_mask=rollout.attention_mask[rows],
        target_ids=completion,
        target_mask=reveal == steps[:, None],
        temperature=rollout.temperature if use_temperature else 1.0,
        support_ids=rollout.support_ids[rows] if use_temperature and rollout.support_ids is not None else None,
    )
