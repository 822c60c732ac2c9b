"""wd1 (arXiv 2507.08838): group-softmax weights and the ratio-free weighted log-likelihood by hand; its
terms are d1's queries with no old or reference log-probs; its recipe configs."""

import math
from pathlib import Path

import pytest
import torch

from dllmrl_core.drive.config import load_run_config
from dllmrl_core.likelihood import LogpQuery
from dllmrl_core.objectives import diffu_grpo, wd1
from dllmrl_core.objectives.common import PolicyTerm, SpecialTokens
from dllmrl_core.contract.types import RolloutBatch, ScoredBatch

approx = pytest.approx
ROOT = Path(__file__).resolve().parents[3]


def test_weights_are_group_softmaxes_of_the_advantages():
    adv, groups = torch.tensor([1.0, 0.0, -1.0, 0.3, 0.3]), torch.tensor([0, 0, 0, 1, 1])
    # group 0: softmax(1, 0, −1) = (e, 1, 1/e) / 4.086161 = (0.665241, 0.244728, 0.090031); softmax(−A) reversed
    assert wd1.group_softmax(adv, groups).tolist() == approx([0.665241, 0.244728, 0.090031, 0.5, 0.5], abs=1e-6)
    # w⁺ − w⁻ = (0.575210, 0, −0.575210); group 1 has equal advantages: 1/2 − 1/2 = 0
    assert wd1.weights(adv, groups, negatives=True).tolist() == approx([0.575210, 0.0, -0.575210, 0.0, 0.0], abs=1e-6)
    assert wd1.weights(adv, groups, negatives=False).tolist() == approx([0.665241, 0.244728, 0.090031, 0.5, 0.5],
                                                                        abs=1e-6)


def test_loss_hand_computed():
    # one group of two, A = (0.5, −0.5): w⁺ = (0.731059, 0.268941), w⁻ = (0.268941, 0.731059), w⁺ − w⁻ = ±0.462117
    # L_0 = −1 − 2 = −3 (the third token is past the EOS, not counted), L_1 = −0.5
    mask = torch.tensor([[True, True, False], [True, False, False]])
    logp = torch.tensor([[-1.0, -2.0, -9.0], [-0.5, -9.0, -9.0]])
    q = LogpQuery(input_ids=torch.zeros(2, 4, dtype=torch.long), attention_mask=torch.ones(2, 4).bool(),
                  target_ids=torch.zeros(2, 3, dtype=torch.long), target_mask=mask)
    adv = torch.tensor([0.5, -0.5])
    for negatives, expected in ((True, -(0.462117 * -3 - 0.462117 * -0.5)),    # 1.155292
                                (False, -(0.731059 * -3 + 0.268941 * -0.5))):  # 2.327647
        w = wd1.weights(adv, torch.zeros(2), negatives)
        t = PolicyTerm(kind="policy", query=q, advantages=adv, weights=w, normalizer=1.0, ratio=False)
        out = wd1.loss(t, logp, torch.zeros(2, 3), wd1.Config(negatives=negatives))
        assert out.loss.item() == approx(expected, abs=1e-5)
    assert out.stats.count == 3 and out.stats.ratio_max == 1.0 and out.stats.clipped == 0
    # descent raises the log-likelihood of the better completion and lowers the worse one's
    logp.requires_grad_(True)
    t = PolicyTerm(kind="policy", query=q, advantages=adv, weights=wd1.weights(adv, torch.zeros(2), True),
                   normalizer=1.0, ratio=False)
    wd1.loss(t, logp, torch.zeros(2, 3), wd1.Config()).loss.backward()
    assert (logp.grad[0, :2] < 0).all() and logp.grad[1, 0] > 0 and (logp.grad[~mask] == 0).all()


def test_terms_are_d1s_queries_without_old_or_reference_log_probs():
    B, L = 4, 3
    rollout = RolloutBatch(prompt_ids=torch.ones(B, 2, dtype=torch.long), prompt_mask=torch.ones(B, 2).bool(),
                           completion_ids=torch.tensor([[1, 4, 2], [1, 2, 3], [4, 4, 4], [2, 2, 4]]),
                           reveal_step=torch.zeros(B, L, dtype=torch.long), behaviour_logp=torch.zeros(B, L),
                           model_logp=torch.zeros(B, L), token_entropy=torch.zeros(B, L), steps=3, block_length=3,
                           temperature=1.0, mask_id=9, group_ids=torch.tensor([0, 0, 1, 1]))
    scored = ScoredBatch(rollout=rollout, rewards=torch.tensor([1.0, 0.0, 0.5, 0.5]), components={},
                         correct=torch.zeros(B).bool())
    special = SpecialTokens(mask_id=9, eos_id=4, stop_ids=(4,))
    iterations = wd1.prepare(scored, wd1.Config(num_iterations=3), special, torch.Generator().manual_seed(0))
    d1 = diffu_grpo.prepare(scored, diffu_grpo.Config(num_iterations=3), special, torch.Generator().manual_seed(0))
    assert len(iterations) == 3
    for (ours,), (theirs,) in zip(iterations, d1):  # the same masks from the same generator state
        assert torch.equal(ours.query.input_ids, theirs.query.input_ids)
        assert torch.equal(ours.query.target_mask, theirs.query.target_mask)
        assert not ours.ratio and ours.old_logp is None and ours.normalizer == 2.0  # two groups
    w = iterations[0][0].weights
    # group 0: A = (0.5, −0.5) -> ±0.462117; group 1: equal rewards -> 0
    assert w.tolist() == approx([0.462117, -0.462117, 0.0, 0.0], abs=1e-6)
    assert not wd1.needs_ref(wd1.Config()) and wd1.OLD_LOGP == "none"


def test_recipe_configs_carry_wd1s_values_per_task():
    def cfg(task):
        return load_run_config(ROOT / "configs" / "llada8b" / f"wd1_{task}.yaml")

    countdown, sudoku = cfg("countdown"), cfg("sudoku")
    assert (countdown.algorithm.wd1.num_iterations, sudoku.algorithm.wd1.num_iterations) == (12, 8)
    assert countdown.algorithm.wd1.negatives and countdown.train.prompts_per_step == 8
    assert countdown.train.group_size == 6 and countdown.optim.lr == 3e-6 and countdown.sampler.temperature == 0.9
    assert math.isclose(countdown.algorithm.wd1.p_mask_prompt, 0.15)
