"""SPG (arXiv 2510.09541): the ELBO and EUBO of masked copies and the sandwiched, length-weighted loss by
hand; SPG's block-wise masks; ratio-free terms; its recipe configs."""

import math
from pathlib import Path

import pytest
import torch

from dllmrl_core.drive.config import load_run_config
from dllmrl_core.likelihood import LogpQuery
from dllmrl_core.objectives import spg
from dllmrl_core.objectives.common import PolicyTerm, SpecialTokens
from dllmrl_core.contract.types import RolloutBatch, ScoredBatch

approx = pytest.approx
ROOT = Path(__file__).resolve().parents[3]
LN2 = math.log(2)

# one completion, L = 4, two copies: copy 0 masks positions {0, 1}, copy 1 masks {2}; |o| = 4
SCORED = torch.tensor([[[True, True, False, False], [False, False, True, False]]])
LOGP = torch.tensor([[[-1.0, -3.0, 0.0, 0.0], [0.0, 0.0, -4.0, 0.0]]])


def test_elbo_is_the_mean_over_copies_of_the_mean_masked_log_prob():
    # copy 0: (−1 − 3) / 2 = −2; copy 1: −4; mean −3
    assert spg.elbo(LOGP, SCORED).tolist() == [-3.0]


def test_eubo_by_hand():
    # t̂ = 2/4 and 1/4. β = 1, per position: j0: ½ (e^−1 / 0.5) = e^−1; j1: e^−3; j2: ½ (e^−4 / 0.25) = 2e^−4;
    # j3 is masked in no copy and left out: (−1 − 3 + ln 2 − 4) / 3 = −2.435618 (above the ELBO −3)
    assert spg.eubo(LOGP, SCORED, torch.tensor([4.0]), 1.0).item() == approx((-8 + LN2) / 3)
    # β = 2: p² -> e^−2, e^−6, 2e^−8; (−16 + ln 2) / 3 / 2 = −2.551142
    assert spg.eubo(LOGP, SCORED, torch.tensor([4.0]), 2.0).item() == approx((-16 + LN2) / 6)


def term_of(scored: torch.Tensor, adv: list[float], lengths: list[float]) -> PolicyTerm:
    n, T, L = scored.shape
    q = LogpQuery(input_ids=torch.zeros(n * T, L + 1, dtype=torch.long), attention_mask=torch.ones(n * T, L + 1).bool(),
                  target_ids=torch.zeros(n * T, L, dtype=torch.long), target_mask=scored.flatten(0, 1))
    return PolicyTerm(kind="policy", query=q, advantages=torch.tensor(adv).repeat_interleave(T),
                      weights=torch.tensor(lengths).repeat_interleave(T), normalizer=sum(lengths), unit=T,
                      ratio=False)


def test_the_sandwich_loss_by_hand():
    # completion 0: A = +0.5, |o| = 4, the copies above -> ELBO −3; completion 1: A = −0.5, |o| = 2, the same
    # copies and log-probs -> EUBO (β 1.5) and ELBO
    scored, logp = SCORED.repeat(2, 1, 1), LOGP.repeat(2, 1, 1).flatten(0, 1)
    t = term_of(scored, [0.5, -0.5], [4.0, 2.0])
    # completion 1 has |o| = 2: t̂ = 2/2, 1/2 -> positions: ½ e^−1.5, ½ e^−4.5, e^−6 (β 1.5);
    # EUBO = (ln ½ − 1.5 + ln ½ − 4.5 − 6) / 3 / 1.5 = (−12 − 2 ln 2) / 4.5
    upper = (-12 - 2 * LN2) / 4.5
    for estimation, negative in (("eubo", upper), ("mix", 0.5 * upper + 0.5 * -3.0), ("elbo", -3.0), ("zero", 0.0)):
        cfg = spg.Config(logp_estimation=estimation)
        out = spg.loss(t, logp, torch.zeros_like(logp), cfg)
        # Σ −A L̂ |o| / Σ |o| = (−0.5 · −3 · 4 + 0.5 · L̂_1 · 2) / 6
        assert out.loss.item() == approx((6.0 + negative) / 6, abs=1e-6), estimation
    assert out.stats.count == 2 and out.stats.ratio_max == 1.0 and out.stats.kl_sum == 0.0


def test_positive_samples_raise_the_lower_bound_and_negative_ones_lower_the_upper_bound():
    scored = SCORED.repeat(2, 1, 1)
    logp = LOGP.repeat(2, 1, 1).flatten(0, 1).requires_grad_(True)
    spg.loss(term_of(scored, [0.5, -0.5], [4.0, 4.0]), logp, torch.zeros_like(logp), spg.Config()).loss.backward()
    grad = logp.grad.view(2, 2, 4)
    assert (grad[0][SCORED[0]] < 0).all() and (grad[1][SCORED[0]] > 0).all()   # descent: up for A > 0, down else
    assert (grad[:, ~SCORED[0]] == 0).all()


def rollout(lengths: list[int], L: int = 8, block: int = 4) -> RolloutBatch:
    B = len(lengths)
    ids = torch.full((B, L), 7)
    for i, n in enumerate(lengths):
        ids[i, n - 1:] = 4                                           # EOS (id 4) at position n − 1
    return RolloutBatch(prompt_ids=torch.ones(B, 3, dtype=torch.long), prompt_mask=torch.ones(B, 3).bool(),
                        completion_ids=ids, reveal_step=torch.zeros(B, L, dtype=torch.long),
                        behaviour_logp=torch.zeros(B, L), model_logp=torch.zeros(B, L), token_entropy=torch.zeros(B, L),
                        steps=4, block_length=block, temperature=1.0, mask_id=9, group_ids=torch.zeros(B).long())


def test_block_masks_follow_spgs_block_random_process():
    lengths = [6, 3] * 200                                           # |o| 6 fills blocks {0, 1}; |o| 3 block 0 only
    batch = rollout(lengths)
    cfg = spg.Config(num_t=3, p_mask_prompt=0.0)                     # T 3 > 2 blocks: a second permutation
    prompt, masked = spg.block_masks(batch, torch.tensor(lengths), cfg, torch.Generator().manual_seed(0))
    assert masked.shape == (400, 3, 8) and not prompt.any()          # p = 0: prompt and earlier blocks clean
    for i, n in enumerate(lengths):
        for row in masked[i]:
            first = int(row.nonzero()[0])
            b = first // 4                                           # the chosen block holds the first masked token
            assert b < (n - 1) // 4 + 1 and row[(b + 1) * 4:].all()  # a block with tokens; all later blocks masked
            m = min(4, n - 4 * b)
            k = int(row[4 * b: 4 * b + m].sum())                     # tokens masked in the chosen block
            assert k >= 1, (i, k, m)  # at least one token of the chosen block is masked
            assert k <= m, (i, k, m)  # no more than the block holds
            assert row[4 * b + m: 4 * b + 4].all()                  # its padding positions are masked
            assert not row[:4 * b].any()
    # |o| 6: the first permutation of the 2 blocks gives copies 0 and 1 different blocks
    chosen = torch.stack([masked[i, :2].float().argmax(-1) // 4 for i in range(0, 400, 2)])
    assert (chosen[:, 0] != chosen[:, 1]).all()
    # k ~ U{1..m}: over many draws every count of the 3 tokens of a |o| = 3 completion's block appears
    counts = masked[1::2, :, :3].sum(-1).flatten()
    assert set(counts.tolist()) == {1, 2, 3}
    # p = 1 (the same draws otherwise): the prompt and every position before the chosen block are masked too
    prompt, everything = spg.block_masks(batch, torch.tensor(lengths), spg.Config(num_t=3, p_mask_prompt=1.0),
                                         torch.Generator().manual_seed(0))
    before = torch.arange(8) < (masked.float().argmax(-1) // 4 * 4)[..., None]
    assert prompt.all() and torch.equal(everything, masked | before) and before.any()


def test_prepare_targets_masked_tokens_up_to_the_eos_weighs_by_length_and_scores_no_old_log_probs():
    batch = rollout([6, 3, 8, 2])
    scored = ScoredBatch(rollout=batch, rewards=torch.tensor([1.0, 0.0, 1.0, 1.0]), components={},
                         correct=torch.zeros(4).bool())
    special = SpecialTokens(mask_id=9, eos_id=4, stop_ids=(4,))
    iterations = spg.prepare(scored, spg.Config(num_iterations=2), special, torch.Generator().manual_seed(0))
    assert len(iterations) == 2
    term = iterations[0][0]
    assert term.unit == 2 and not term.ratio and term.old_logp is None and len(term) == 8
    assert term.weights.tolist() == [6.0, 6.0, 3.0, 3.0, 8.0, 8.0, 2.0, 2.0] and term.normalizer == 19.0
    assert term.advantages.tolist() == [0.25, 0.25, -0.75, -0.75, 0.25, 0.25, 0.25, 0.25]
    lengths = torch.tensor([6, 3, 8, 2]).repeat_interleave(2)
    beyond = torch.arange(8) >= lengths[:, None]
    completion = term.query.input_ids[:, 3:]
    assert (completion[beyond] == 9).all() and not term.query.target_mask[beyond].any()
    assert torch.equal(term.query.target_mask, (completion == 9) & ~beyond)
    assert not torch.equal(term.query.target_mask, iterations[1][0].query.target_mask)  # fresh masks


def test_recipe_configs_carry_spgs_values_per_task():
    def cfg(task):
        return load_run_config(ROOT / "configs" / "llada8b" / f"spg_{task}.yaml")

    sudoku, gsm8k = cfg("sudoku"), cfg("gsm8k")
    a = gsm8k.algorithm.spg
    assert (a.num_iterations, a.num_t, a.logp_estimation, a.eubo_beta, a.mix_weight) == (4, 2, "mix", 1.5, 0.5)
    assert (sudoku.algorithm.spg.eubo_beta, sudoku.sampler.temperature, gsm8k.sampler.temperature) == (1.0, 0.3, 0.9)
    assert (sudoku.task.source("train"), sudoku.task.source("test")) == (
        "/mnt/shared/data/spg/train_sudoku_split_new.csv", "/mnt/shared/data/spg/test_sudoku_split_new.csv")
    assert sudoku.task.test_subsample is None and gsm8k.checkpoint.save_every == 40
