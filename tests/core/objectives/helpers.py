"""What the objective tests share: every method's settings at CPU-test size, a tiny policy with a
non-zero adapter, and one method's rollouts with random rewards prepared into its first iteration's terms."""

import torch

from dllmrl_core.contract.types import ScoredBatch
from dllmrl_core.models import MaskPredictor, encode_prompts
from dllmrl_core.models.tokens import special_tokens
from dllmrl_core.objectives import OBJECTIVES
from dllmrl_core.rollout.generate import generate_rollouts
from dllmrl_core.training.lora import LoraSettings, add_lora


# the knobs that set a method's cost, by field name whatever the method, at CPU-test size
CPU_SCALE = {"num_iterations": 1, "mc_samples": 3, "num_steps": 3, "num_continuations": 2, "continuation_extra_masks": 0}


def cpu_settings(name: str, **extra) -> dict:
    """A registered method's Config overrides for tests: its defaults with the CPU_SCALE knobs it has,
    then `extra` (each applied only where the method has that knob: `beta=0.04` = a KL wherever one exists)."""
    fields = OBJECTIVES[name].Config.model_fields
    return {k: v for k, v in {**CPU_SCALE, **extra}.items() if k in fields}


def lora_policy(tiny_dir, dropout: float = 0.0) -> MaskPredictor:
    """The tiny model with a LoRA adapter whose B is non-zero (B = 0 at init would hide its path)."""
    from dllmrl_core.models import load_mask_predictor

    base = load_mask_predictor(tiny_dir, device="cpu")
    torch.manual_seed(0)
    model = add_lora(base.model, LoraSettings(r=4, alpha=8, dropout=dropout))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return MaskPredictor(model=model, mask_id=base.mask_id, eos_id=base.eos_id, eot_id=base.eot_id, pad_id=base.pad_id)


def prepared_terms(policy, tokenizer, name: str, settings: dict, sampler, prompts: list[str], group: int):
    """(objective, its config, rollout batch, first iteration's terms): G = `group` rollouts per prompt
    (different prompt lengths: left padding), rewards and branch rewards drawn at random."""
    ids, mask = encode_prompts(tokenizer, prompts)
    ids, mask = ids.repeat_interleave(group, 0), mask.repeat_interleave(group, 0)
    objective = OBJECTIVES[name]
    cfg = objective.Config(**settings)
    groups = torch.arange(len(prompts)).repeat_interleave(group)
    batch = generate_rollouts(policy, ids, mask, groups, sampler, objective, cfg, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    M = 0 if batch.branches is None else batch.branches.size
    rewards = torch.rand(batch.batch_size, generator=g)
    scored = ScoredBatch(rollout=batch, rewards=rewards, components={}, correct=rewards > 0.5,
                         branch_rewards=torch.rand(M, generator=g) if M else None,
                         branch_accuracy=torch.rand(M, generator=g).round() if M else None)
    terms = objective.prepare(scored, cfg, special_tokens(policy), torch.Generator().manual_seed(2))[0]
    return objective, cfg, batch, terms
