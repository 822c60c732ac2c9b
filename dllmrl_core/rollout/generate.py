"""Generate a rollout batch for an objective (sample, record what it needs, branch), and the RNG of
one rollout chunk."""

from __future__ import annotations

import torch

from dllmrl_core.contract.types import RolloutBatch
from dllmrl_core.models.predictor import MaskPredictor
from dllmrl_core.sampling import SamplerConfig, sample


def batch_generator(seed: int, batch: int, chunk: int, device: torch.device) -> torch.Generator:
    """The sampling RNG of one rollout chunk: a pure function of (seed, batch, chunk), so a lost
    chunk is regenerated identically by any worker and a resumed run continues the same stream."""
    return torch.Generator(device).manual_seed((seed * 1_000_003 + batch) * 1_009 + chunk)


def generate_rollouts(policy: MaskPredictor, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                      group_ids: torch.Tensor, sampler: SamplerConfig, objective, algo_cfg,
                      generator: torch.Generator) -> RolloutBatch:
    """Rows of one group share a prompt. `generator` lives on the policy's device and drives every
    random choice of the rollout (tokens, branch steps, fillings)."""
    options = objective.rollout_options(algo_cfg, sampler.steps, prompt_ids.shape[0], generator)
    was_training = policy.model.training
    policy.model.eval()
    try:
        batch = sample(policy, prompt_ids, prompt_mask, sampler, generator=generator,
                       record_support=options.record_support, keep_logits_steps=options.keep_logits_steps,
                       record_greedy_fills=options.record_greedy_fills)
        batch.group_ids = group_ids
        with torch.no_grad():
            batch.branches = objective.branch(policy, batch, algo_cfg, sampler, generator)
    finally:
        policy.model.train(was_training)
    # what branching consumed stays behind: only compact ids travel on
    batch.step_logits = None
    batch.greedy_fills = None
    return batch
