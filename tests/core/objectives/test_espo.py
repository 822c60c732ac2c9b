"""ESPO (arXiv 2512.03759): leave-one-out advantages, coupled stratified masks, the sequence ELBO, the
per-token-normalised sequence ratio with its k2 KL, by hand; the ELBO against ESPO's own arithmetic on
the tiny model; its recipe configs."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from dllmrl_core.drive.config import load_run_config
from dllmrl_core.likelihood import LogpQuery
from dllmrl_core.objectives import espo
from dllmrl_core.objectives.common import PolicyTerm
from dllmrl_core.sampling import SamplerConfig
from tests.core.objectives.helpers import cpu_settings, lora_policy, prepared_terms

approx = pytest.approx
ROOT = Path(__file__).resolve().parents[3]


def test_leave_one_out_advantages():
    rewards, groups = torch.tensor([1.0, 0.0, 0.5, 2.0, 2.0]), torch.tensor([0, 0, 0, 1, 1])
    # row 0: 1 − (0 + 0.5)/2 = 0.75; row 1: 0 − (1 + 0.5)/2 = −0.75; row 2: 0.5 − (1 + 0)/2 = 0; group 1: 0, 0
    assert espo.leave_one_out(rewards, groups, scale_std=False).tolist() == approx([0.75, -0.75, 0.0, 0.0, 0.0])
    # group 0's unbiased std: √((0.25 + 0.25 + 0) / 2) = 0.5 -> / 0.5001; group 1: 0 / (0 + 1e-4) = 0
    scaled = espo.leave_one_out(rewards, groups, scale_std=True)
    assert scaled.tolist() == approx([0.75 / 0.5001, -0.75 / 0.5001, 0.0, 0.0, 0.0])


def test_masked_copies_are_coupled_pairs_with_counts_stratified_over_the_rows():
    g = torch.Generator().manual_seed(0)
    copies = espo.masked_copies(4, 7, 2, g)                                   # B 4, L 7, M 2
    assert copies.shape == (4, 4, 7)
    assert torch.equal(copies[:, 1], ~copies[:, 0]) and torch.equal(copies[:, 3], ~copies[:, 2])
    for m in (0, 2):  # (L+1)/B = 2: n_i = (k + 2i) mod 8, four different counts a stride of 2 apart
        n = copies[:, m].sum(1)
        assert ((n - n[0]) % 8).tolist() == [0, 2, 4, 6]
    # B 3, L 4: (L+1)/B = 5/3, so n_i − n_0 = round(5i/3) = 0, 2, 3 (mod 5), whatever k was
    n = espo.masked_copies(3, 4, 1, g)[:, 0].sum(1)
    assert ((n - n[0]) % 5).tolist() == [0, 2, 3]


def term_of(masked, logp_old, adv, ref=None, unit=2):
    n, L = masked.shape
    q = LogpQuery(input_ids=torch.zeros(n, L + 1, dtype=torch.long), attention_mask=torch.ones(n, L + 1).bool(),
                  target_ids=torch.zeros(n, L, dtype=torch.long), target_mask=masked)
    return PolicyTerm(kind="policy", query=q, advantages=torch.tensor(adv).repeat_interleave(unit),
                      normalizer=float(n // unit), old_logp=logp_old, ref_logp=ref, unit=unit)


def test_the_elbo_of_one_coupled_pair():
    # L = 3, S = {0} (n = 1, t = 1/4), Sᶜ = {1, 2} (t' = 2/4); log p = −1 at 0, −2 and −3 at 1 and 2:
    # ℓ̂ = ½ [ −1 / (1/4) + (−2 − 3) / (2/4) ] = ½ (−4 − 10) = −7
    masked = torch.tensor([[True, False, False], [False, True, True]])
    logp = torch.tensor([[-1.0, 0.0, 0.0], [0.0, -2.0, -3.0]])
    assert espo.elbo(logp, masked, 2).tolist() == [-7.0]
    # the other two pairs with |S| = 1 give −8 and −9; their mean −8 is (L+1)/L · Σ log p = 4/3 · (−6):
    # ESPO's t = n/(L+1) scales a context-free model's ELBO by (L+1)/L in expectation
    others = [espo.elbo(torch.tensor([[-1.0, -2.0, -3.0]] * 2) * torch.stack([s, ~s]), torch.stack([s, ~s]), 2)
              for s in (torch.tensor([False, True, False]), torch.tensor([False, False, True]))]
    assert [o.item() for o in others] == [-8.0, -9.0]


def test_loss_hand_computed():
    # two completions, L = 3, one pair each: completion 0 masks {0} | {1, 2}, completion 1 masks {0, 1} | {2}
    masked = torch.tensor([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1]]).bool()
    logp = torch.zeros(4, 3)
    logp[0, 0] = 0.3     # ℓ̂_0 − ℓ̂_old = ½ (4 · 0.3 + 0) = 0.6  -> ρ_0 = e^{0.6/3} = e^0.2 = 1.221403
    logp[3, 2] = -0.15   # ℓ̂_1 − ℓ̂_old = ½ (0 + 4 · −0.15) = −0.3 -> ρ_1 = e^{−0.1} = 0.904837
    t = term_of(masked, torch.zeros(4, 3), [1.0, -1.0])
    cfg = espo.Config(epsilon=0.2, beta=0.0)
    out = espo.loss(t, logp, torch.zeros(4, 3), cfg)
    # A = +1: −min(1.221403, 1.2) = −1.2 (clipped);  A = −1: −min(−0.904837, −0.904837) = 0.904837
    # Σ / B = (−1.2 + 0.904837) / 2 = −0.1475815
    assert out.loss.item() == approx(-0.1475815, abs=1e-6)
    assert (out.stats.count, out.stats.clipped) == (2.0, 1.0) and out.stats.ratio_max == approx(1.221403, abs=1e-6)
    # k2 KL: the reference 1.5 below at completion 0's scored token -> ℓ̂ − ℓ̂_ref = ½ · 4 · 1.5 = 3,
    # ½ · 3² / L = 1.5; completion 1: 0.  β = 0.1: + 0.1 · 1.5 / 2 = 0.075 -> −0.0725815
    ref = logp.clone()
    ref[0, 0] -= 1.5
    t.ref_logp = ref
    out = espo.loss(t, logp, torch.zeros(4, 3), espo.Config(epsilon=0.2, beta=0.1))
    assert out.loss.item() == approx(-0.0725815, abs=1e-6) and out.stats.kl_sum == approx(1.5)


def test_epsilon_zero_moves_only_sequences_whose_ratio_is_on_the_wrong_side():
    # ESPO's Countdown recipe (ε = 0): −min(ρA, A) has a gradient only where ρA < A
    masked = torch.tensor([[True, False], [False, True]] * 4)
    logp = torch.zeros(8, 2)
    logp[0::2, 0] = torch.tensor([-0.1, 0.1, 0.1, -0.1])  # log-ratios of the four completions: −, +, +, −
    logp.requires_grad_(True)
    t = term_of(masked, torch.zeros(8, 2), [1.0, 1.0, -1.0, -1.0])
    espo.loss(t, logp, torch.zeros(8, 2), espo.Config(epsilon=0.0, beta=0.0)).loss.backward()
    moved = logp.grad[0::2, 0] != 0
    # A > 0 with ρ < 1, and A < 0 with ρ > 1, get a gradient; the other two are at the clip
    assert moved.tolist() == [True, False, True, False]
    assert logp.grad[0, 0] < 0 < logp.grad[4, 0]  # raise the first, lower the third


def test_prepare_draws_fresh_coupled_masks_per_iteration_and_leaves_the_prompt_clean(tiny_dir, tokenizer):
    policy = lora_policy(tiny_dir)
    sampler = SamplerConfig(gen_length=16, steps=8, block_length=8, temperature=0.9, top_k=20)
    settings = cpu_settings("espo", num_iterations=2)
    objective, cfg, batch, _ = prepared_terms(policy, tokenizer, "espo", settings, sampler, ["2+3", "7-1"], 3)
    from dllmrl_core.contract.types import ScoredBatch

    scored = ScoredBatch(rollout=batch, rewards=torch.arange(6.0), components={}, correct=torch.zeros(6).bool())
    iterations = espo.prepare(scored, cfg, None, torch.Generator().manual_seed(0))
    assert len(iterations) == 2 and cfg.num_mc == 2
    first, second = iterations[0][0], iterations[1][0]
    assert first.unit == 4 and len(first) == 6 * 4 and first.normalizer == 6.0
    assert not torch.equal(first.query.target_mask, second.query.target_mask)
    masks = first.query.target_mask.view(6, 4, 16)
    assert torch.equal(masks[:, 1], ~masks[:, 0]) and torch.equal(masks[:, 3], ~masks[:, 2])
    P = first.query.prompt_len
    assert torch.equal(first.query.input_ids[:, :P], batch.prompt_ids.repeat_interleave(4, 0))
    completion = first.query.input_ids[:, P:]
    assert torch.equal(completion == batch.mask_id, first.query.target_mask)
    assert first.advantages.view(6, 4).std(1).abs().max() == 0  # one advantage per completion


def test_the_elbo_is_espos_arithmetic_on_the_model(tiny_dir, tokenizer):
    """ESPO's _get_elbo: loss[S] = CE / p_mask, loss[Sᶜ] = CE / (L/(L+1) − p_mask) on the coupled copy, ½, summed
    over all L positions and negated; the mean over its num_mc draws."""
    policy = lora_policy(tiny_dir)
    sampler = SamplerConfig(gen_length=16, steps=8, block_length=8, temperature=0.9, top_k=20)
    _, cfg, batch, terms = prepared_terms(policy, tokenizer, "espo", cpu_settings("espo"), sampler, ["2+3", "7-1"], 2)
    term = terms[0]
    L, P = 16, term.query.prompt_len
    with torch.no_grad():
        from dllmrl_core.likelihood import token_logp

        ours = espo.elbo(token_logp(policy, term.query).logp, term.query.target_mask, term.unit)
        logits = policy(term.query.input_ids, term.query.attention_mask)[:, P:].float()
        logits[..., policy.mask_id] = -math.inf  # the scorer's rule: [MASK] is never a target
        ce = F.cross_entropy(logits.flatten(0, 1), term.query.target_ids.flatten(), reduction="none").view(-1, L)
    masked = term.query.target_mask
    theirs = []
    for i in range(len(term) // 2):                        # each coupled pair (first copy, complement)
        s, c = 2 * i, 2 * i + 1
        p_mask = masked[s].sum() / (L + 1)
        loss = torch.zeros(L)
        loss[masked[s]] = ce[s][masked[s]] / p_mask
        loss[~masked[s]] = ce[c][~masked[s]] / (L / (L + 1) - p_mask)
        theirs.append(-(loss / 2).sum())
    theirs = torch.stack(theirs).view(-1, cfg.num_mc).mean(1)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-5)


def test_recipe_configs_carry_espos_values_per_task():
    def cfg(task):
        return load_run_config(ROOT / "configs" / "llada8b" / f"espo_{task}.yaml")

    countdown, math500, sudoku = cfg("countdown"), cfg("math500"), cfg("sudoku")
    a = countdown.algorithm.espo
    assert (a.epsilon, a.beta, a.num_iterations, a.num_mc) == (0.0, 3e-3, 8, 2)
    assert (countdown.sampler.steps, countdown.sampler.temperature, countdown.optim.weight_decay) == (128, 1.0, 0.01)
    assert (math500.train.group_size, math500.sampler.steps, math500.algorithm.espo.beta) == (16, 256, 1e-3)
    assert sudoku.algorithm.espo.beta == 1e-2 and countdown.checkpoint.save_every == 80
    assert countdown.task.source("test") == "/mnt/shared/data/d1/countdown_cd3_test.jsonl"  # d1's data
