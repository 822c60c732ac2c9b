"""d1's one-step mean-field log-likelihood estimate (arXiv 2504.12216, diffu-GRPO's log-probability
estimation; docs/methods.md "Shared machinery").

Every completion token is masked, every real prompt token is masked independently with
probability p_mask_prompt (a regulariser that changes between inner iterations), and one forward
pass gives log π̂(o_j | q) = log softmax(ℓ_j)[o_j] for each completion position j. The mask pattern
is a pure function of the seed, so old, reference and current log-probs of one inner iteration
see the same corruption (they share one query).
"""

from __future__ import annotations

import torch

from dllmrl_core.contract.types import RolloutBatch
from dllmrl_core.likelihood.query import LogpQuery


def masked_prompt(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, mask_id: int, p_mask_prompt: float,
                  seed: int) -> torch.Tensor:
    """[B, P] prompt with each real token replaced by the mask id with probability p (seeded)."""
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    u = torch.rand(prompt_ids.shape, generator=g).to(prompt_ids.device)
    return prompt_ids.masked_fill((u < p_mask_prompt) & prompt_mask, mask_id)


def mean_field_query(rollout: RolloutBatch, *, p_mask_prompt: float, seed: int, eos_id: int | None) -> LogpQuery:
    """Targets: the completion up to and including its first EOS (d1's completion mask)."""
    prompt = masked_prompt(rollout.prompt_ids, rollout.prompt_mask, rollout.mask_id, p_mask_prompt, seed)
    masked_completion = torch.full_like(rollout.completion_ids, rollout.mask_id)
    return LogpQuery(input_ids=torch.cat([prompt, masked_completion], dim=1), attention_mask=rollout.attention_mask,
                     target_ids=rollout.completion_ids, target_mask=rollout.completion_mask(eos_id))
