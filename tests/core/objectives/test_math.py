"""Advantage rules and losses on tiny tensors, with the arithmetic written out."""

import math

import pytest
import torch

from dllmrl_core.contract.types import BranchSet, RolloutBatch, ScoredBatch
from dllmrl_core.likelihood import LogpQuery
from dllmrl_core.objectives import agrpo, dispo, egspo, get_objective, sapo
from dllmrl_core.objectives.common import (PolicyTerm, clipped_surrogate, group_advantages, k3, row_pg_loss,
                                           token_pg_loss)

approx = pytest.approx


def test_group_advantages_mean_only_and_std_scaled():
    r = torch.tensor([1.0, 0.0, 0.5, 2.0, 2.0, 5.0])
    g = torch.tensor([0, 0, 0, 1, 1, 1])
    # group means 0.5 and 3.0
    assert group_advantages(r, g).tolist() == approx([0.5, -0.5, 0.0, -1.0, -1.0, 2.0])
    # group 0: deviations (0.5, -0.5, 0), unbiased var (0.25 + 0.25) / 2 = 0.25, std 0.5 -> A / (0.5 + 1e-4)
    scaled = group_advantages(r, g, scale_std=True)
    assert scaled[:3].tolist() == approx([0.5 / 0.5001, -0.5 / 0.5001, 0.0])
    assert group_advantages(torch.tensor([3.0, 3.0]), torch.tensor([7, 7]), scale_std=True).tolist() == [0.0, 0.0]


def test_clipped_surrogate_four_cases():
    ratio = torch.tensor([1.5, 0.5, 0.5, 1.5])
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    loss, rho, clipped = clipped_surrogate(ratio.log(), adv, 0.2, 0.2)
    # A>0, ρ=1.5: min(1.5, 1.2) = 1.2 -> -1.2 (clipped);  A>0, ρ=0.5: min(0.5, 0.8) = 0.5 -> -0.5
    # A<0, ρ=0.5: min(-0.5, -0.8) = -0.8 -> 0.8 (clipped); A<0, ρ=1.5: min(-1.5, -1.2) = -1.5 -> 1.5
    assert loss.tolist() == approx([-1.2, -0.5, 0.8, 1.5])
    assert clipped.tolist() == [True, False, True, False]
    # asymmetric clip [1 - 0.2, 1 + 0.5]: A>0, ρ=1.5 is inside -> -1.5
    assert clipped_surrogate(torch.tensor([1.5]).log(), torch.tensor([1.0]), 0.2, 0.5)[0].item() == approx(-1.5)


def test_k3():
    # Δ = log(0.25) − log(0.5) = −log 2:  e^Δ − Δ − 1 = 0.5 + 0.693147 − 1 = 0.193147
    assert k3(torch.tensor(math.log(0.5)), torch.tensor(math.log(0.25))).item() == approx(0.193147, abs=1e-6)
    assert k3(torch.tensor(-1.3), torch.tensor(-1.3)).item() == 0.0


def term(logp_minus_old, mask, adv, normalizer, weights=None, ref=None):
    n, L = mask.shape
    q = LogpQuery(input_ids=torch.zeros(n, L + 1, dtype=torch.long), attention_mask=torch.ones(n, L + 1).bool(),
                  target_ids=torch.zeros(n, L, dtype=torch.long), target_mask=mask.bool())
    return PolicyTerm(kind="policy", query=q, advantages=torch.tensor(adv), normalizer=normalizer,
                      weights=None if weights is None else torch.tensor(weights),
                      old_logp=-logp_minus_old, ref_logp=ref)


def test_token_loss_hand_computed():
    lr = torch.tensor([[math.log(1.5), 0.0, 9.0], [math.log(0.5), 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    t = term(lr, mask, [1.0, -1.0], normalizer=3.0)
    logp = torch.zeros(2, 3)  # old = -lr, so logp - old = lr
    out = token_pg_loss(t, logp, torch.zeros(2, 3), eps_low=0.2, eps_high=0.2, beta=0.0)
    # row 0: −min(1.5, 1.2)·1 = −1.2 and −1·1 = −1.0;  row 1: ρ=0.5, A=−1: −min(−0.5, −0.8) = 0.8
    # (−1.2 − 1.0 + 0.8) / 3 = −0.466667; masked-out tokens (ρ = e^9) do not count
    assert out.loss.item() == approx(-1.4 / 3)
    assert out.stats.count == 3 and out.stats.clipped == 2 and out.stats.ratio_max == approx(1.5)
    # with β = 0.1 and reference log-probs 0.5 below the current ones at the 3 counted tokens:
    # k3 = e^−0.5 + 0.5 − 1 = 0.106531 each -> loss += 0.1 · 3 · 0.106531 / 3 = 0.0106531
    t.ref_logp = torch.full((2, 3), -0.5)
    out = token_pg_loss(t, logp, torch.zeros(2, 3), eps_low=0.2, eps_high=0.2, beta=0.1)
    assert out.loss.item() == approx(-1.4 / 3 + 0.0106531, abs=1e-6)


def test_row_loss_uses_one_ratio_per_row():
    # row 0: two tokens with log-ratio 0.1 and 0.2 -> sum 0.3 -> ρ = e^0.3 = 1.349859, clipped to 1.2 for A = 2
    # row 1: one token with log-ratio −0.1 -> ρ = 0.904837, A = −1 -> inside the clip: loss 0.904837
    lr = torch.tensor([[0.1, 0.2], [-0.1, 5.0]])
    t = term(lr, torch.tensor([[1, 1], [1, 0]]), [2.0, -1.0], normalizer=2.0)
    out = row_pg_loss(t, torch.zeros(2, 2), torch.zeros(2, 2), eps_low=0.2, eps_high=0.2, beta=0.0)
    assert out.loss.item() == approx((-1.2 * 2 + 0.904837) / 2, abs=1e-6)
    # mean aggregation: row 0 log-ratio (0.1 + 0.2) / 2 = 0.15 -> ρ = 1.161834 < 1.2 -> −2.323668
    out = row_pg_loss(t, torch.zeros(2, 2), torch.zeros(2, 2), eps_low=0.2, eps_high=0.2, beta=0.0, reduce="mean")
    assert out.loss.item() == approx((-2.323668 + 0.904837) / 2, abs=1e-6)


def fake_rollout(B=4, L=3, S=3, mask_id=9):
    return RolloutBatch(prompt_ids=torch.ones(B, 2, dtype=torch.long), prompt_mask=torch.ones(B, 2).bool(),
                        completion_ids=torch.arange(B * L).view(B, L) % 5, reveal_step=torch.arange(L).repeat(B, 1),
                        behaviour_logp=torch.zeros(B, L), model_logp=torch.zeros(B, L), token_entropy=torch.ones(B, L),
                        steps=S, block_length=L, temperature=1.0, mask_id=mask_id,
                        group_ids=torch.zeros(B, dtype=torch.long))


def sapo_scored(rewards, correct, accuracy, branch_rewards, branch_accuracy, N=3):
    B = len(rewards)
    rollout = fake_rollout(B=B)
    rollout.branches = BranchSet(kind="sapo", source_row=torch.arange(B).repeat_interleave(N),
                                 step=torch.ones(B * N).long(), completion_ids=torch.zeros(B * N, 3, dtype=torch.long))
    return ScoredBatch(rollout=rollout, rewards=torch.tensor(rewards), components={}, correct=torch.tensor(correct),
                       branch_rewards=torch.tensor(branch_rewards), accuracy=torch.tensor(accuracy),
                       branch_accuracy=torch.tensor(branch_accuracy))


def test_sapo_process_reward_is_a_difference_of_accuracies_and_only_raises_an_advantage():
    # One group of 4: total rewards (3.5, 3.5, 3.5, 1.0), the first three answers correct.
    # A = r − 2.875 = (0.625, 0.625, 0.625, −1.875). Row 0's three continuations score 1.0 each
    # (format rewards only) and are all wrong; row 1's are all right; rows 2, 3: one right in three.
    scored = sapo_scored([3.5, 3.5, 3.5, 1.0], [True, True, True, False], [1.0, 1.0, 1.0, 0.0],
                         [1.0, 1.0, 1.0, 3.5, 3.5, 3.5, 3.5, 1.0, 1.0, 3.5, 1.0, 1.0],
                         [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    # accuracies: group 0.75; continuations (0, 1, 1/3, 1/3) -> R = (−0.75, 0.25, −5/12, −5/12)
    assert sapo.process_rewards(scored, sapo.Config()).tolist() == approx([-0.75, 0.25, -5 / 12, -5 / 12])
    # default: rows 0–2 are eligible (correct, A > 0); only max(R, 0) is added, so row 0 keeps
    # 0.625 (it was −1.25 when R came from total rewards: 1.0 − 2.875 = −1.875, 0.625 − 1.875)
    assert sapo.advantages(scored, sapo.Config()).tolist() == approx([0.625, 0.875, 0.625, -1.875])
    # the signed sum still flips row 0 with accuracies: 0.625 − 0.75 = −0.125
    signed = sapo.Config(upweight_only=False)
    assert sapo.advantages(scored, signed).tolist() == approx([-0.125, 0.875, 0.625 - 5 / 12, -1.875])
    # the earlier reading, total rewards added with their sign: continuation means (1.0, 3.5, 11/6, 11/6)
    # − 2.875 -> R = (−1.875, 0.625, −1.041667, −1.041667); rows 0 and 2 turn negative
    rewards = sapo.Config(process_reward="reward", upweight_only=False)
    assert sapo.process_rewards(scored, rewards).tolist() == approx([-1.875, 0.625, -1.041667, -1.041667], abs=1e-6)
    assert sapo.advantages(scored, rewards).tolist() == approx([-1.25, 1.25, 0.625 - 1.041667, -1.875], abs=1e-6)


def test_sapo_partial_accuracies_weight_and_eligibility():
    # Two groups of 2 (group ids 0, 0, 1, 1), Sudoku-like accuracies (share of cells right).
    # group 0: rewards (1.0, 0.5) -> A = (0.25, −0.25); accuracies (1.0, 0.5), mean 0.75
    # group 1: rewards (0.5, 1.0) -> A = (−0.25, 0.25); accuracies (0.5, 1.0), mean 0.75
    scored = sapo_scored([1.0, 0.5, 0.5, 1.0], [True, False, False, True], [1.0, 0.5, 0.5, 1.0],
                         [0.0] * 8, [1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.75], N=2)
    scored.rollout.group_ids = torch.tensor([0, 0, 1, 1])
    # continuation means (1.0, 0.5, 0.5, 0.5) -> R = (0.25, −0.25, −0.25, −0.25)
    assert sapo.process_rewards(scored, sapo.Config()).tolist() == approx([0.25, -0.25, -0.25, -0.25])
    # eligible: rows 0 and 3; λ = 2: row 0: 0.25 + 2 · 0.25 = 0.75; row 3: R < 0 adds nothing
    assert sapo.advantages(scored, sapo.Config(process_weight=2.0)).tolist() == approx([0.75, -0.25, -0.25, 0.25])
    # require_correct=false changes nothing here (rows with A > 0 are the correct ones); no row
    # with A ≤ 0 ever receives the process reward
    assert sapo.advantages(scored, sapo.Config(process_weight=2.0, require_correct=False)).tolist() == \
        approx([0.75, -0.25, -0.25, 0.25])


def test_sapo_never_lowers_an_eligible_advantage():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        rewards = torch.randint(0, 3, (8,), generator=g).float() * 1.5
        scored = sapo_scored(rewards.tolist(), (rewards > 1).tolist(), (rewards > 1).float().tolist(),
                             torch.rand(24, generator=g).tolist(), torch.rand(24, generator=g).round().tolist())
        base = group_advantages(scored.rewards, scored.group_ids)
        adv = sapo.advantages(scored, sapo.Config(process_weight=3.0))
        eligible = (base > 0) & scored.correct
        assert (adv[eligible] >= base[eligible]).all() and (adv[~eligible] == base[~eligible]).all()


def test_egspo_stepwise_returns_group_centred_per_step():
    rollout = fake_rollout(B=2)
    rollout.branches = BranchSet(kind="egspo", source_row=torch.tensor([0, 0, 1, 1]), step=torch.tensor([0, 2, 0, 1]),
                                 completion_ids=torch.zeros(4, 3, dtype=torch.long))
    scored = ScoredBatch(rollout=rollout, rewards=torch.tensor([1.0, 0.0]), components={},
                         correct=torch.tensor([True, False]), branch_rewards=torch.tensor([0.0, 1.0, 0.0, 0.0]))
    # R = (r + 0.5 (r − r_greedy)) / 1.5:  row 0: (1 + 0.5)/1.5 = 1, (1 + 0)/1.5 = 2/3;  row 1: 0, 0
    # centred per selected step: step 0: mean 0.5 -> (.5, −.5); step 1: mean 1/3 -> (1/3, −1/3)
    adv = egspo.advantages(scored, egspo.Config(lambda1=0.5))
    assert adv.tolist() == [approx([0.5, 1 / 3]), approx([-0.5, -1 / 3])]
    # standard GRPO returns: (r − mean r) + λ1 (r − r_greedy), / 1.5:  row 0: (.5 + .5)/1.5, (.5 + 0)/1.5
    adv = egspo.advantages(scored, egspo.Config(lambda1=0.5, standard_grpo_returns=True))
    assert adv.tolist() == [approx([1 / 1.5, 0.5 / 1.5]), approx([-0.5 / 1.5, -0.5 / 1.5])]


def test_dispo_same_state_advantages():
    rollout = fake_rollout(B=2)
    rollout.branches = BranchSet(kind="dispo", source_row=torch.tensor([0, 0, 1, 1]), step=torch.tensor([2, 2, 1, 1]),
                                 completion_ids=torch.zeros(4, 3, dtype=torch.long),
                                 filled=torch.tensor([[0, 0, 1]] * 2 + [[0, 1, 1]] * 2).bool())
    scored = ScoredBatch(rollout=rollout, rewards=torch.tensor([1.0, 0.0]), components={},
                         correct=torch.tensor([True, False]), branch_rewards=torch.tensor([1.0, 0.0, 0.5, 0.5]))
    iterations = dispo.prepare(scored, dispo.Config(num_iterations=2), agrpo_special(), torch.Generator().manual_seed(0))
    assert len(iterations) == 2 and [t.kind for t in iterations[0]] == ["base", "step"]
    step = iterations[0][1]
    # branch groups by state: (1, 0) -> (.5, −.5); (.5, .5) -> (0, 0); one prompt, Z = 2: divided by Z · 1
    assert step.advantages.tolist() == [0.5, -0.5, 0.0, 0.0] and step.normalizer == 2.0
    assert torch.equal(step.query.target_mask, rollout.branches.filled)


def dispo_step_loss(prompts: int, reduction: str, ratio: str = "state") -> float:
    """α_step · L_step of `prompts` copies of one 2-prompt × 2-row batch with Z = 2 branches per
    state, each branch filling position 2, at the ratios below."""
    B = 4 * prompts // 2
    rollout = fake_rollout(B=B)
    rollout.group_ids = torch.arange(prompts).repeat_interleave(2)
    rollout.branches = BranchSet(kind="dispo", source_row=torch.arange(B).repeat_interleave(2),
                                 step=torch.full((2 * B,), 2), completion_ids=torch.zeros(2 * B, 3, dtype=torch.long),
                                 filled=torch.tensor([[False, False, True]] * (2 * B)))
    branch_rewards = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.5, 0.0] * (prompts // 2))
    scored = ScoredBatch(rollout=rollout, rewards=torch.zeros(B), components={}, correct=torch.zeros(B).bool(),
                         branch_rewards=branch_rewards)
    cfg = dispo.Config(beta=0.0, step_reduction=reduction, step_ratio=ratio)
    step = dispo.prepare(scored, cfg, agrpo_special(), torch.Generator().manual_seed(0))[0][1]
    # log-ratio 0.1 on the filled token of every branch with A > 0, 0 elsewhere
    step.old_logp = torch.zeros(2 * B, 3)
    step.old_logp[step.advantages > 0, 2] = -0.1
    return dispo.loss(step, torch.zeros(2 * B, 3), torch.zeros(2 * B, 3), cfg).loss.item()


def test_dispo_step_term_weighs_each_prompt_as_the_paper_whatever_the_batch():
    # same-state advantages of the 2 prompts × 2 states: (.5, −.5), (0, 0), (−.5, .5), (.25, −.25).
    # ρ = e^0.1 = 1.105171 (inside the clip [0.5, 1.5]) where A > 0, 1 where A < 0:
    # Σ_branches −ρA = −1.105171 · (0.5 + 0.5 + 0.25) + (0.5 + 0.5 + 0.25) = −0.131464
    total = -1.25 * (math.exp(0.1) - 1)
    # paper (Eq. 6–7): per prompt, Σ over its states of (1/Z) Σ_z, then the mean over the 2 prompts:
    # Σ / (Z · P) = −0.131464 / 4; times α_step = 0.5 -> −0.016433
    assert dispo_step_loss(2, "prompt_sum") == approx(0.5 * total / 4)
    # doubling the batch (4 prompts, the same two twice) keeps it: 2·Σ / (2 · 4)
    assert dispo_step_loss(4, "prompt_sum") == approx(0.5 * total / 4)
    # mean over all B = 4 states: Σ / (Z · 4) — half the paper's weight (G = 2 states per prompt)
    assert dispo_step_loss(2, "mean") == approx(0.5 * total / 8)
    # sum over every state of the batch: Σ / Z, and it doubles with the batch
    assert dispo_step_loss(2, "sum") == approx(0.5 * total / 2)
    assert dispo_step_loss(4, "sum") == approx(0.5 * 2 * total / 2)
    # per-token ratios (one filled token per branch): token mean Σ / 8 rescaled by P / states = 2 / 4
    assert dispo_step_loss(2, "prompt_sum", ratio="token") == approx(0.5 * total / 4)


def agrpo_special():
    from dllmrl_core.objectives.common import SpecialTokens

    return SpecialTokens(mask_id=9, eos_id=4, stop_ids=(4,))


def test_agrpo_last_step_and_importance_weights():
    rollout = fake_rollout(B=2, L=4, S=4)
    rollout.completion_ids = torch.tensor([[1, 2, 4, 4], [1, 4, 4, 4]])   # 4 = EOS
    rollout.reveal_step = torch.tensor([[0, 2, 1, 3], [3, 0, 1, 2]])
    rollout.token_entropy = torch.tensor([[1.0, 3.0, 9.0, 9.0], [2.0, 9.0, 9.0, 9.0]])
    # last non-EOS step: row 0 max(0, 2) = 2; row 1: 3
    last = agrpo.last_content_step(rollout, (4,))
    assert last.tolist() == [2, 3]
    cfg = agrpo.Config(mc_samples=64, importance_sampling="entropy")
    steps, w = agrpo.sample_steps(rollout, last, cfg, torch.Generator().manual_seed(0))
    # row 0: entropy mass per step (1, 9, 3) (+1e-8) over steps 0..2 -> p = (1/13, 9/13, 3/13)
    # weight = (1 / 3) / p(t)
    p0 = {0: 1 / 13, 1: 9 / 13, 2: 3 / 13}
    for t, wt in zip(steps[0].tolist(), w[0].tolist()):
        assert wt == approx((1 / 3) / p0[t], rel=1e-5)
    assert steps.max(1).values.tolist() <= [2, 3] and (steps[1] <= 3).all()
    # stratified uniforms put exactly k = 64 draws per row over strata -> p-proportional counts
    counts = torch.bincount(steps[0], minlength=3).tolist()
    assert abs(counts[1] - 64 * 9 / 13) <= 2


def test_registry_lists_valid_names():
    from dllmrl_core.objectives import OBJECTIVES

    with pytest.raises(ValueError, match=", ".join(sorted(OBJECTIVES))):
        get_objective("ppo")


def test_loss_normalizers_follow_each_paper():
    from dllmrl_core.objectives import diffu_grpo

    special = agrpo_special()
    rollout = fake_rollout(B=4, L=3, S=3)
    rollout.completion_ids = torch.tensor([[1, 4, 2], [1, 2, 3], [4, 4, 4], [2, 2, 4]])  # 4 = EOS
    scored = ScoredBatch(rollout=rollout, rewards=torch.tensor([1.0, 0.0, 0.5, 0.5]), components={},
                         correct=torch.zeros(4, dtype=torch.bool))
    gen = torch.Generator().manual_seed(0)
    # d1: token mean over tokens up to and including the first EOS: 2 + 3 + 1 + 3 = 9
    d1 = diffu_grpo.prepare(scored, diffu_grpo.Config(num_iterations=2), special, gen)
    assert len(d1) == 2 and d1[0][0].normalizer == 9.0
    assert d1[0][0].query.target_mask.sum(1).tolist() == [2, 3, 1, 3]
    # AGRPO: Σ ℓ / (k · B) with k = 5
    term = agrpo.prepare(scored, agrpo.Config(mc_samples=5), special, gen)[0][0]
    assert term.normalizer == 20.0 and len(term) == 20
    # EGSPO: mean over (rollout, step) / tokens-per-step = (B · K) · (L / S) = 4 · 2 · 1
    rollout.branches = BranchSet(kind="egspo", source_row=torch.arange(4).repeat_interleave(2),
                                 step=torch.tensor([0, 2] * 4), completion_ids=torch.zeros(8, 3, dtype=torch.long))
    scored.branch_rewards = torch.zeros(8)
    accumulate = egspo.prepare(scored, egspo.Config(num_steps=2), special, gen)
    assert len(accumulate) == 1 and accumulate[0][0].normalizer == 8.0
    per_step = egspo.prepare(scored, egspo.Config(num_steps=2, updates="per_step"), special, gen)
    assert [t[0].normalizer for t in per_step] == [4.0, 4.0]
    assert per_step[1][0].query.target_mask.sum().item() == 4  # one token revealed at step 2 per row



def test_egspo_divides_by_tokens_per_step_only_when_summing():
    # L 4, S 2: tokens-per-step 2; one group of two rollouts, K = 2 steps each
    rollout = fake_rollout(B=2, L=4, S=2)
    rollout.reveal_step = torch.tensor([[0, 0, 1, 1]] * 2)
    rollout.branches = BranchSet(kind="egspo", source_row=torch.tensor([0, 0, 1, 1]), step=torch.tensor([0, 1, 0, 1]),
                                 completion_ids=torch.zeros(4, 4, dtype=torch.long))
    # plain EGSPO (λ1 = 0): R = r, A = r − mean r = (+.5, −.5) in both slots
    scored = ScoredBatch(rollout=rollout, rewards=torch.tensor([1.0, 0.0]), components={},
                         correct=torch.tensor([True, False]), branch_rewards=torch.tensor([1.0, 1.0, 0.0, 0.0]))

    def losses(aggregation, updates):
        cfg = egspo.Config(num_steps=2, lambda1=0.0, beta=0.0, aggregation=aggregation, updates=updates)
        out = []
        for (term,) in egspo.prepare(scored, cfg, agrpo_special(), torch.Generator().manual_seed(0)):
            logp = torch.where(term.advantages[:, None] > 0, 0.1, 0.0).expand(-1, 4)  # rollout 0: +0.1 per token
            out.append(egspo.loss(term, logp, torch.zeros(len(term), 4), cfg).loss.item())
        return out

    # sum: rollout 0's step log-ratio 0.2, ρ = e^0.2 = 1.221403 (inside [0.8, 1.5]): −0.5 ρ = −0.610701;
    # rollout 1: ρ = 1, A = −.5: +0.5.  One update: (2 · −0.610701 + 2 · 0.5) / (B·K · 2) = −0.0276754;
    # per step (EGSPO's micro-step): (−0.610701 + 0.5) / (2 · 2), the same
    assert losses("sum", "accumulate") == [approx(-0.0276754, abs=1e-7)]
    assert losses("sum", "per_step") == [approx(-0.0276754, abs=1e-7)] * 2
    # mean: log-ratio 0.1, ρ = e^0.1 = 1.105171: −0.552585; no division by tokens-per-step:
    # (2 · −0.552585 + 2 · 0.5) / 4 = −0.0262927; per step (−0.552585 + 0.5) / 2, the same
    assert losses("mean", "accumulate") == [approx(-0.0262927, abs=1e-7)]
    assert losses("mean", "per_step") == [approx(-0.0262927, abs=1e-7)] * 2


def test_egspo_uniform_steps_are_egspos_linspace():
    from dllmrl_core.sampling.branching import select_steps

    rollout = fake_rollout(B=2, L=128, S=128)
    # linspace(0, S−2, K−1) = 0, 21, ..., 126 (step 126/6 = 21), then the final step 127
    steps = select_steps(rollout, 8, "uniform", None, None)
    assert steps.tolist() == [[0, 21, 42, 63, 84, 105, 126, 127]] * 2
    # terminate_at_last_non_eos: linspace(0, last, K).long(): last 49 -> step 7 exactly;
    # last 100 -> 100/7 = 14.29: 0, 14.29, 28.57, 42.86, 57.14, 71.43, 85.71, 100 truncated
    steps = select_steps(rollout, 8, "uniform", torch.tensor([49, 100]), None)
    assert steps.tolist() == [[0, 7, 14, 21, 28, 35, 42, 49], [0, 14, 28, 42, 57, 71, 85, 100]]


def test_egspo_pairs_slots_by_entropy_rank_as_egspo_does():
    # one group of two rollouts, L = S = 3 (one token per step), K = 2 high-entropy steps
    rollout = fake_rollout(B=2, L=3, S=3)
    rollout.token_entropy = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])   # token j revealed at step j
    rollout.greedy_fills = torch.zeros(2, 3, 3, dtype=torch.long)
    greedy = {(0, 0): 0.0, (0, 1): 1.0, (1, 1): 0.0, (1, 2): 1.0}              # r(x̂^(t)) of (rollout, step)
    rewards = torch.tensor([1.0, 0.0])
    # R = (r + 0.5 (r − r_greedy)) / 1.5:  rollout 0: step 0 -> 1, step 1 -> 2/3;
    #                                       rollout 1: step 1 -> 0, step 2 -> −1/3

    def advantages(**knobs):
        cfg = egspo.Config(num_steps=2, lambda1=0.5, **knobs)
        rollout.branches = egspo.branch(None, rollout, cfg, None, None)
        branch_rewards = torch.tensor([greedy[r, t] for r, t in zip(rollout.branches.source_row.tolist(),
                                                                    rollout.branches.step.tolist())])
        scored = ScoredBatch(rollout=rollout, rewards=rewards, components={}, correct=rewards.bool(),
                             branch_rewards=branch_rewards)
        return rollout.branches.step.tolist(), egspo.advantages(scored, cfg).tolist()

    # EGSPO (default): slots in entropy rank, rollout 0 (step 0, step 1), rollout 1 (step 2, step 1):
    # slot 0: R (1, −1/3), mean 1/3 -> (2/3, −2/3);  slot 1: R (2/3, 0), mean 1/3 -> (1/3, −1/3)
    steps, adv = advantages()
    assert steps == [0, 1, 2, 1]
    assert adv == [approx([2 / 3, 1 / 3]), approx([-2 / 3, -1 / 3])]
    # time order: rollout 1 (step 1, step 2): slot 0: R (1, 0), mean 1/2 -> (1/2, −1/2);
    # slot 1: R (2/3, −1/3), mean 1/6 -> (1/2, −1/2)
    steps, adv = advantages(slot_order="time")
    assert steps == [0, 1, 1, 2]
    assert adv == [approx([0.5, 0.5]), approx([-0.5, -0.5])]
