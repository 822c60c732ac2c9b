"""The learner's hot path is batched across sequences: every policy term of every registered method
(AGRPO's k sampled steps per sequence, EGSPO's K selected steps, DiSPO's base and branch states, ...) is
scored by ONE forward call over all of its rows, and that batched result equals a per-row reference
computation."""

import pytest
import torch

from dllmrl_core.likelihood import token_logp
from dllmrl_core.sampling import SamplerConfig
from dllmrl_core.training.optim import OptimConfig, build_optimizer
from dllmrl_core.training.step import freeze_old_and_ref, train_step
from dllmrl_core.objectives import OBJECTIVES
from tests.core.objectives.helpers import cpu_settings, lora_policy, prepared_terms

SAMPLER = SamplerConfig(gen_length=16, steps=8, block_length=8, temperature=0.9, top_k=20)


@pytest.fixture(scope="module")
def policy(tiny_dir):
    return lora_policy(tiny_dir)


def prepared(policy, tokenizer, name):
    objective, cfg, _, terms = prepared_terms(policy, tokenizer, name, cpu_settings(name), SAMPLER,
                                              ["2+3", "Sort: c a b"], 3)
    return objective, cfg, terms


class Calls:
    def __init__(self, policy):
        self.rows = []
        self.handle = policy.model.get_base_model().model.transformer["blocks"][0].register_forward_pre_hook(
            lambda module, args: self.rows.append(args[0].shape[0]))


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_batched_step_logp_equals_the_per_row_computation(policy, tokenizer, name):
    _, _, terms = prepared(policy, tokenizer, name)
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


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_a_learner_step_makes_one_forward_call_per_term(policy, tokenizer, name):
    objective, cfg, terms = prepared(policy, tokenizer, name)
    freeze_old_and_ref(policy, [terms], objective.needs_ref(cfg))
    opt, sched = build_optimizer(policy.model.parameters(), OptimConfig(lr=1e-4), total_steps=1)
    calls = Calls(policy)
    try:
        train_step(policy, opt, sched, terms, lambda t, lp, ent: objective.loss(t, lp, ent, cfg), max_grad_norm=1.0)
    finally:
        calls.handle.remove()
    assert calls.rows == [len(t) for t in terms]  # every row of a term in one forward
