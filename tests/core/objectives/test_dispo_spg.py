"""DiSPO on SPG (DiSPO's Table 1 uses SPG as a base optimiser): the base term is SPG's sandwiched loss,
the step term is unchanged; both train together on the tiny model, in micro-batches, as the full path."""

import pytest
import torch

from dllmrl_core.objectives import dispo, spg
from dllmrl_core.objectives.common import SpecialTokens
from dllmrl_core.sampling import SamplerConfig
from dllmrl_core.training.optim import OptimConfig, build_optimizer
from dllmrl_core.training.step import freeze_old_and_ref, train_step
from dllmrl_core.contract.types import BranchSet, ScoredBatch
from tests.core.objectives.helpers import lora_policy, prepared_terms
from tests.core.objectives.test_math import fake_rollout
from tests.core.objectives.test_spg import LOGP, SCORED, term_of
from tests.core.training.test_memory_paths import assert_same, loss_and_grads

SPECIAL = SpecialTokens(mask_id=9, eos_id=4, stop_ids=(4,))
SAMPLER = SamplerConfig(gen_length=16, steps=8, block_length=8, temperature=0.9, top_k=20)


def scored_batch() -> ScoredBatch:
    rollout = fake_rollout(B=2)
    rollout.branches = BranchSet(kind="dispo", source_row=torch.tensor([0, 0, 1, 1]), step=torch.tensor([2, 2, 1, 1]),
                                 completion_ids=torch.zeros(4, 3, dtype=torch.long),
                                 filled=torch.tensor([[0, 0, 1]] * 2 + [[0, 1, 1]] * 2).bool())
    return ScoredBatch(rollout=rollout, rewards=torch.tensor([1.0, 0.0]), components={},
                       correct=torch.tensor([True, False]), branch_rewards=torch.tensor([1.0, 0.0, 0.5, 0.5]))


def test_the_base_term_is_spgs_and_the_step_term_is_unchanged():
    scored = scored_batch()
    d1_base = dispo.prepare(scored, dispo.Config(num_iterations=2), SPECIAL, torch.Generator().manual_seed(0))
    cfg = dispo.Config(num_iterations=2, base="spg", spg={"num_t": 3})
    spg_base = dispo.prepare(scored, cfg, SPECIAL, torch.Generator().manual_seed(0))
    assert len(spg_base) == 2 and [t.kind for t in spg_base[0]] == ["base", "step"]
    base, step = spg_base[0]
    assert base.unit == 3 and not base.ratio and len(base) == 2 * 3 and base.advantages.tolist() == [0.5] * 3 + [-0.5] * 3
    assert torch.equal(step.query.input_ids, d1_base[0][1].query.input_ids)          # the same seeds drive it
    assert step.advantages.tolist() == d1_base[0][1].advantages.tolist() and step.ratio


def test_the_base_loss_is_alpha_base_times_spgs():
    # SPG's hand case (test_spg): completions A = ±0.5, |o| = 4 and 2 -> (6 + L̂_1) / 6 with the mixture
    scored, logp = SCORED.repeat(2, 1, 1), LOGP.repeat(2, 1, 1).flatten(0, 1)
    term = term_of(scored, [0.5, -0.5], [4.0, 2.0])
    term.kind = "base"
    cfg = dispo.Config(base="spg", alpha_base=0.5)
    upper = (-12 - 2 * 0.6931472) / 4.5
    out = dispo.loss(term, logp, torch.zeros_like(logp), cfg)
    assert out.loss.item() == pytest.approx(0.5 * (6.0 + 0.5 * upper + 0.5 * -3.0) / 6, abs=1e-6)
    assert out.loss.item() == pytest.approx(0.5 * spg.loss(term, logp, torch.zeros_like(logp), cfg.spg).loss.item())


def test_reference_and_memory_follow_the_base():
    assert not dispo.needs_ref(dispo.Config(base="spg", beta=0.04, step_beta=0.0))   # SPG has no KL
    assert dispo.needs_ref(dispo.Config(base="diffu_grpo", beta=0.04, step_beta=0.0))
    assert dispo.needs_ref(dispo.Config(base="spg", beta=0.0, step_beta=0.01))
    shape = dispo.memory_shape(dispo.Config(base="spg"), SamplerConfig(gen_length=256, steps=128, block_length=32), 96)
    assert shape.terms[0] == (96 * 2, 256) and shape.unit == 2 and shape.terms[1][0] == 96 * 2


def test_dispo_on_spg_trains_on_the_model_and_micro_batches_equal_the_full_path(tiny_dir, tokenizer):
    policy = lora_policy(tiny_dir)
    settings = dict(num_iterations=1, base="spg", beta=0.04)
    objective, cfg, _, terms = prepared_terms(policy, tokenizer, "dispo", settings, SAMPLER, ["2+3", "Sort: c a b"], 3)
    policy.gather_logits = False
    freeze_old_and_ref(policy, [terms], objective.needs_ref(cfg))
    assert terms[0].old_logp is None and terms[1].old_logp is not None                # ratio-free base
    full = loss_and_grads(policy, terms, objective, cfg, gather=False, checkpointing=False, micro=None)
    assert_same(full, loss_and_grads(policy, terms, objective, cfg, gather=True, checkpointing=True, micro=3))
    opt, sched = build_optimizer(policy.model.parameters(), OptimConfig(lr=1e-2), total_steps=1)
    m = train_step(policy, opt, sched, terms, lambda t, lp, ent: objective.loss(t, lp, ent, cfg), max_grad_norm=1.0,
                   micro_rows=4)
    assert torch.isfinite(torch.tensor([m.loss, m.grad_norm])).all() and m.ratio_max == pytest.approx(1.0, abs=1e-5)
