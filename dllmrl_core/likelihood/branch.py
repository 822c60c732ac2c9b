"""DiSPO's state-wise surrogate: log-probs of a branch's filled positions (arXiv 2602.06462, the
fixed-state objective; docs/methods.md "DiSPO").

The input is the intermediate state x_t the branch started from (committed tokens kept, masks in
place) with the prompt corrupted as in d1's estimator; one forward pass scores the tokens the
branch put into the masked positions: log π̃(a | s) = Σ_{i ∈ M_t} log π̃(a_i | s^(m), i).
"""

from __future__ import annotations

import torch

from dllmrl_core.contract.types import RolloutBatch
from dllmrl_core.likelihood.one_step import masked_prompt
from dllmrl_core.likelihood.query import LogpQuery


def branch_query(rollout: RolloutBatch, *, p_mask_prompt: float, seed: int) -> LogpQuery:
    branches = rollout.branches
    if branches is None or branches.filled is None:
        raise ValueError("branch_query needs a rollout with filled branches (DiSPO)")
    rows = branches.source_row
    prompt = masked_prompt(rollout.prompt_ids[rows], rollout.prompt_mask[rows], rollout.mask_id, p_mask_prompt, seed)
    state = branches.completion_ids.masked_fill(branches.filled, rollout.mask_id)
    return LogpQuery(input_ids=torch.cat([prompt, state], dim=1), attention_mask=rollout.attention_mask[rows],
                     target_ids=branches.completion_ids, target_mask=branches.filled)
