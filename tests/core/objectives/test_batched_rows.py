"""The learner's hot path is batched across sequences: every policy term (AGRPO's k sampled steps per
sequence, EGSPO's K selected steps, DiSPO's base and branch states) is scored by ONE forward call over
all of its rows, and that batched result equals a per-row reference computation."""

import pytest
import torch

from dllmrl_core.likelihood import token_logp
from dllmrl_core.models import MaskPredictor, encode_prompts
from dllmrl_core.objectives import OBJECTIVES
from dllmrl_core.rollout import generate_rollouts, special_tokens
from dllmrl_core.sampling import SamplerConfig
from dllmrl_core.training.lora import LoraSettings, add_lora
from dllmrl_core.training.optim import OptimConfig, build_optimizer
from dllmrl_core.training.step import freeze_old_and_ref, train_step
from dllmrl_core.types import ScoredBatch

SAMPLER = SamplerConfig(gen_length=16, steps=8, block_length=8, temperature=0.9, top_k=20)
SETTINGS = {"agrpo": dict(mc_samples=3), "egspo": dict(num_steps=3), "dispo": dict(num_iterations=1)}


@pytest.fixture(scope="module")
def policy(tiny_dir):
    from dllmrl_core.models import load_mask_predictor

    base = load_mask_predictor(tiny_dir, device="cpu")
    torch.manual_seed(0)
    model = add_lora(base.model, LoraSettings(r=4, alpha=8, dropout=0.0))
    with torch.no_grad():  # a non-zero adapter, so the LoRA path contributes to the logits
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return MaskPredictor(model=model, mask_id=base.mask_id, eos_id=base.eos_id, eot_id=base.eot_id, pad_id=base.pad_id)


def prepared_terms(policy, tokenizer, name):
    ids, mask = encode_prompts(tokenizer, ["2+3", "Sort: c a b"])  # different lengths: left padding
    ids, mask = ids.repeat_interleave(3, 0), mask.repeat_interleave(3, 0)
    objective = OBJECTIVES[name]
    cfg = objective.Config(**SETTINGS[name])
    batch = generate_rollouts(policy, ids, mask, torch.arange(2).repeat_interleave(3), SAMPLER, objective, cfg,
                              torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    M = 0 if batch.branches is None else batch.branches.size
    rewards = torch.rand(batch.batch_size, generator=g)
    scored = ScoredBatch(rollout=batch, rewards=rewards, components={}, correct=rewards > 0.5,
                         branch_rewards=torch.rand(M, generator=g) if M else None)
    return objective, cfg, objective.prepare(scored, cfg, special_tokens(policy), torch.Generator().manual_seed(2))[0]


class Calls:
    def __init__(self, policy):
        self.rows = []
        self.handle = policy.model.get_base_model().model.transformer["blocks"][0].register_forward_pre_hook(
            lambda module, args: self.rows.append(args[0].shape[0]))


@pytest.mark.parametrize("name", ["agrpo", "egspo", "dispo"])
def test_batched_step_logp_equals_the_per_row_computation(policy, tokenizer, name):
    _, _, terms = prepared_terms(policy, tokenizer, name)
    policy.model.eval()
    with torch.no_grad():
        for term in terms:
            assert len(term) > 1
            batched = token_logp(policy, term.query)
            rows = [token_logp(policy, term.query.rows(slice(i, i + 1))) for i in range(len(term))]
            # the LM head runs on the scored positions only; a GEMM of 1-3 rows takes another CPU kernel,
            # which can differ in the last bit from the batched one
            torch.testing.assert_close(batched.logp, torch.cat([r.logp for r in rows]), atol=1e-6, rtol=1e-6)
            torch.testing.assert_close(batched.entropy, torch.cat([r.entropy for r in rows]), atol=1e-6, rtol=1e-6)
            assert bool((batched.logp[term.query.target_mask] < 0).all())


@pytest.mark.parametrize("name", ["agrpo", "egspo", "dispo"])
def test_a_learner_step_makes_one_forward_call_per_term(policy, tokenizer, name):
    objective, cfg, terms = prepared_terms(policy, tokenizer, name)
    freeze_old_and_ref(policy, [terms], objective.needs_ref(cfg))
    opt, sched = build_optimizer(policy.model.parameters(), OptimConfig(lr=1e-4), total_steps=1)
    calls = Calls(policy)
    try:
        train_step(policy, opt, sched, terms, lambda t, lp, ent: objective.loss(t, lp, ent, cfg), max_grad_norm=1.0)
    finally:
        calls.handle.remove()
    assert calls.rows == [len(t) for t in terms]  # every row of a term in one forward
