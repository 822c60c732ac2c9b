"""Every registered objective end to end on the tiny model: rollout → branches → prepare → learner step."""

import pytest
import torch

from dllmrl_core.contract.types import ScoredBatch
from dllmrl_core.likelihood import step_query, token_logp
from dllmrl_core.models import MaskPredictor, encode_prompts
from dllmrl_core.models.tokens import special_tokens
from dllmrl_core.objectives import OBJECTIVES, agrpo
from dllmrl_core.objectives.common import PolicyTerm
from dllmrl_core.rollout.generate import generate_rollouts
from dllmrl_core.sampling import SamplerConfig
from dllmrl_core.training.lora import LoraSettings, adapter_digest, adapter_state, add_lora
from dllmrl_core.training.optim import OptimConfig, build_optimizer
from dllmrl_core.training.step import freeze_old_and_ref, train_step
from dllmrl_core.contract.types import ScoredBatch
from tests.core.objectives.helpers import cpu_settings

SAMPLER = SamplerConfig(gen_length=16, steps=8, block_length=8, temperature=0.9, top_k=20)
# every registered method at CPU-test size, a KL wherever there is one; μ = 2 for d1 (mask seeds per
# iteration), SAPO's 8 extra masks (one block) and EGSPO's per-step updates exercised too
SMALL_CFG = {name: cpu_settings(name, beta=0.04) for name in OBJECTIVES}
SMALL_CFG["diffu_grpo"]["num_iterations"] = 2
SMALL_CFG["sapo"]["continuation_extra_masks"] = 8
SMALL_CFG["egspo"]["updates"] = "per_step"


@pytest.fixture()
def policy(tiny_dir):
    from dllmrl_core.models import load_mask_predictor

    base = load_mask_predictor(tiny_dir, device="cpu")
    model = add_lora(base.model, LoraSettings(r=4, alpha=8, dropout=0.0))
    return MaskPredictor(model=model, mask_id=base.mask_id, eos_id=base.eos_id, eot_id=base.eot_id, pad_id=base.pad_id)


def rollouts(policy, tokenizer, name, seed=0):
    ids, mask = encode_prompts(tokenizer, ["2+3", "7-1"])
    ids, mask = ids.repeat_interleave(3, 0), mask.repeat_interleave(3, 0)
    groups = torch.arange(2).repeat_interleave(3)
    objective = OBJECTIVES[name]
    cfg = objective.Config(**SMALL_CFG[name])
    batch = generate_rollouts(policy, ids, mask, groups, SAMPLER, objective, cfg, torch.Generator().manual_seed(seed))
    return objective, cfg, batch


def fake_score(batch, seed=0):
    """Rewards from a fixed random draw (the tasks module scores real completions)."""
    g = torch.Generator().manual_seed(seed)
    M = 0 if batch.branches is None else batch.branches.size
    rewards = torch.rand(batch.batch_size, generator=g)
    return ScoredBatch(rollout=batch, rewards=rewards, components={}, correct=rewards > 0.5,
                       branch_rewards=torch.rand(M, generator=g) if M else None,
                       branch_accuracy=torch.rand(M, generator=g).round() if M else None)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_each_method_takes_finite_steps_that_change_the_adapter(policy, tokenizer, name):
    objective, cfg, batch = rollouts(policy, tokenizer, name)
    expected = {"sapo": 6 * 2, "dispo": 6 * 2, "egspo": 6 * 3}.get(name, 0)
    assert (0 if batch.branches is None else batch.branches.size) == expected
    if name == "sapo":
        assert batch.branches.completion_ids.shape == (12, 16 + 8)
        assert (batch.branches.completion_ids != policy.mask_id).all()
    scored = fake_score(batch)
    iterations = objective.prepare(scored, cfg, special_tokens(policy), torch.Generator().manual_seed(1))
    assert len(iterations) == objective.num_iterations(cfg)
    freeze_old_and_ref(policy, iterations, objective.needs_ref(cfg))
    opt, sched = build_optimizer(policy.model.parameters(), OptimConfig(lr=1e-2), total_steps=10)
    before = adapter_digest(adapter_state(policy.model))
    for k, terms in enumerate(iterations):
        m = train_step(policy, opt, sched, terms, lambda t, lp, ent: objective.loss(t, lp, ent, cfg),
                       max_grad_norm=1.0, micro_rows=4)
        assert torch.isfinite(torch.tensor([m.loss, m.grad_norm, m.kl])).all()
        if k == 0:  # nothing has moved yet: every ratio is 1 and the KL to the reference is 0
            assert m.ratio_mean == pytest.approx(1.0, abs=1e-5) and m.ratio_max == pytest.approx(1.0, abs=1e-5)
            assert m.kl == pytest.approx(0.0, abs=1e-7)
    assert adapter_digest(adapter_state(policy.model)) != before


def test_per_step_logp_equals_the_recorded_behaviour_logp(policy, tokenizer):
    _, _, batch = rollouts(policy, tokenizer, "agrpo")
    rows = torch.arange(batch.batch_size).repeat_interleave(batch.steps)
    steps = torch.arange(batch.steps).repeat(batch.batch_size)
    query = step_query(batch, rows, steps, behaviour=True)
    assert query.support_ids is not None and query.temperature == 0.9
    with torch.no_grad():
        logp = token_logp(policy, query).logp
    # every completion token is targeted exactly once over all steps
    assert torch.equal(query.target_mask.view(batch.batch_size, batch.steps, -1).sum(1), torch.ones_like(batch.reveal_step))
    recorded = batch.behaviour_logp[rows]
    torch.testing.assert_close(logp[query.target_mask], recorded[query.target_mask], atol=2e-5, rtol=2e-5)


def test_dispo_gradient_reaches_only_the_newly_filled_positions(policy, tokenizer):
    objective, cfg, batch = rollouts(policy, tokenizer, "dispo")
    scored = fake_score(batch)
    step_term = objective.prepare(scored, cfg, special_tokens(policy), torch.Generator().manual_seed(0))[0][1]
    freeze_old_and_ref(policy, [[step_term]], objective.needs_ref(cfg))
    logits = policy(step_term.query.input_ids, step_term.query.attention_mask).detach().requires_grad_(True)
    P = step_term.query.prompt_len
    logp_all = torch.log_softmax(logits[:, P:], -1)
    logp = logp_all.gather(-1, step_term.query.target_ids[..., None]).squeeze(-1) * step_term.query.target_mask
    objective.loss(step_term, logp, torch.zeros_like(logp), cfg).loss.backward()
    touched = logits.grad.abs().sum(-1)[:, P:] > 0
    assert touched.any() and torch.equal(touched, batch.branches.filled & touched)
    assert not logits.grad[:, :P].any()
    # the branches differ from each other only where they filled
    src, step = batch.branches.source_row, batch.branches.step
    state = batch.completion_ids[src].masked_fill(batch.reveal_step[src] >= step[:, None], batch.mask_id)
    assert torch.equal(batch.branches.completion_ids[~batch.branches.filled], state[~batch.branches.filled])
    assert (state[batch.branches.filled] == batch.mask_id).all()


def agrpo_grad(policy, terms, cfg):
    policy.model.zero_grad(set_to_none=True)
    for term in terms:
        scored = token_logp(policy, term.query)
        agrpo.loss(term, scored.logp, scored.entropy, cfg).loss.backward()
    return torch.cat([p.grad.flatten() for p in policy.model.parameters() if p.requires_grad])


@pytest.mark.parametrize("proposal", ["uniform", "entropy"])
def test_agrpo_k_step_estimates_average_to_the_exact_all_steps_gradient(policy, tokenizer, proposal):
    torch.manual_seed(0)
    for p in policy.model.parameters():  # a non-zero adapter, so gradients reach every LoRA matrix
        if p.requires_grad:
            p.data.normal_(0, 0.05)
    _, _, batch = rollouts(policy, tokenizer, "agrpo")
    # the random model's entropies are nearly flat over steps; skew them (1:6 on odd/even steps) so
    # a wrong importance weight would show as a bias. Unbiasedness must hold for any proposal.
    batch.token_entropy = 1.0 + 5.0 * (batch.reveal_step % 2).float()
    scored = fake_score(batch)
    cfg = agrpo.Config(mc_samples=2, importance_sampling=proposal, beta=0.0)
    special = special_tokens(policy)
    # exact: (1/B) Σ_i 1/(last_i+1) Σ_{t ≤ last_i} Σ_{j ∈ U_t} −A_i log π(o_j | x_t), at ρ = 1
    last = agrpo.last_content_step(batch, special.stop_ids)
    rows = torch.cat([torch.full((int(l) + 1,), i) for i, l in enumerate(last)])
    steps = torch.cat([torch.arange(int(l) + 1) for l in last])
    query = step_query(batch, rows, steps, behaviour=True)
    adv = agrpo.prepare(scored, cfg, special, torch.Generator())[0][0].advantages.view(batch.batch_size, -1)[:, 0]
    exact_term = PolicyTerm(kind="policy", query=query, advantages=adv[rows], weights=1.0 / (last[rows] + 1).float(),
                            normalizer=float(batch.batch_size))
    freeze_old_and_ref(policy, [[exact_term]], needs_ref=False)
    exact = agrpo_grad(policy, [exact_term], cfg)
    draws = []
    gen = torch.Generator().manual_seed(1)
    for _ in range(150):
        term = agrpo.prepare(scored, cfg, special, gen)[0][0]
        term.old_logp = None
        freeze_old_and_ref(policy, [[term]], needs_ref=False)
        draws.append(agrpo_grad(policy, [term], cfg))
    mean = torch.stack(draws).mean(0)
    stderr = torch.stack(draws).std(0) / len(draws) ** 0.5
    # unbiased: the MC mean is within a few standard errors of the exact gradient, coordinate-wise
    z = ((mean - exact).abs() / (stderr + 1e-12))[stderr > 0]
    assert z.median() < 1.5 and (z < 5).float().mean() > 0.99
    rel = (mean - exact).norm() / exact.norm()
    assert rel < 0.2
