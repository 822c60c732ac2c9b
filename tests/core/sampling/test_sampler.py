"""The sampler against a literal LLaDA loop, its trajectory records, seeds and bad input."""

import pytest
import torch
import torch.nn.functional as F

from dllmrl_core.models import MaskPredictor, encode_prompts
from dllmrl_core.sampling import generate, transfer_schedule
from tests.core.batch_views import revealed_at, row_logits, sequence_ids
from tests.core.sampling.reference import llada_generate, num_transfer_tokens

PROMPTS = ["What is 2+3?", "Sort: c a b", "x"]


@pytest.fixture(scope="module")
def prompts(tokenizer):
    return encode_prompts(tokenizer, PROMPTS)  # left-padded batch with attention mask


class Spy(torch.nn.Module):
    """Wraps a model and keeps every input it is given (to compare with replayed states)."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.inputs = inner, []

    def forward(self, input_ids, attention_mask=None):
        self.inputs.append(input_ids.clone())
        return self.inner(input_ids, attention_mask=attention_mask)


def spy_on(predictor):
    return MaskPredictor(model=Spy(predictor.model), mask_id=predictor.mask_id, eos_id=predictor.eos_id,
                         eot_id=predictor.eot_id, pad_id=predictor.pad_id)


@pytest.mark.parametrize("gen_length, steps, block_length", [
    (16, 16, 16),   # one block, one token per step
    (16, 8, 4),     # four blocks, two steps each
    (24, 12, 8),    # three blocks, 4 steps each, 2 tokens per step
    (8, 16, 8),     # more steps than tokens: half the steps commit nothing
    (12, 6, 12),    # one block, 2 tokens per step
])
def test_greedy_equals_reference_loop_token_for_token(predictor, prompts, gen_length, steps, block_length):
    ids, mask = prompts
    ours = generate(predictor, ids, mask, gen_length=gen_length, steps=steps, block_length=block_length)
    ref = llada_generate(predictor, ids, mask, steps=steps, gen_length=gen_length, block_length=block_length)
    assert torch.equal(sequence_ids(ours), ref)


def test_greedy_with_cfg_equals_reference(predictor, prompts):
    ids, mask = prompts
    kw = dict(gen_length=16, steps=8, block_length=8, cfg_scale=1.5)
    ours = generate(predictor, ids, mask, **kw)
    assert torch.equal(sequence_ids(ours), llada_generate(predictor, ids, mask, **kw))


@pytest.mark.parametrize("remasking", ["low_confidence", "random"])
def test_llada_rng_is_token_exact_at_temperature(predictor, prompts, remasking):
    ids, mask = prompts
    kw = dict(gen_length=16, steps=8, block_length=8, temperature=0.9, remasking=remasking)
    torch.manual_seed(7)
    ours = generate(predictor, ids, mask, llada_rng=True, **kw)
    torch.manual_seed(7)
    ref = llada_generate(predictor, ids, mask, **kw)
    assert torch.equal(sequence_ids(ours), ref)


def test_unpadded_single_prompt_without_mask(predictor, tokenizer):
    ids, _ = encode_prompts(tokenizer, ["hello"])
    kw = dict(gen_length=8, steps=8, block_length=4)
    assert torch.equal(sequence_ids(generate(predictor, ids, **kw)), llada_generate(predictor, ids, **kw))


@pytest.mark.parametrize("cfg_scale", [0.0, 1.0])
def test_replaying_reveal_steps_reproduces_every_visited_state(predictor, prompts, cfg_scale):
    ids, mask = prompts
    spy = spy_on(predictor)
    batch = generate(spy, ids, mask, gen_length=16, steps=8, block_length=8, temperature=0.8, cfg_scale=cfg_scale,
                     generator=torch.Generator().manual_seed(0))
    visited = [x[: len(PROMPTS)] for x in spy.model.inputs]  # CFG doubles the batch: keep the conditional half
    assert len(visited) == batch.steps
    for s, state in enumerate(visited):
        assert torch.equal(batch.state_at(s), state)
    assert torch.equal(batch.state_at(batch.steps), sequence_ids(batch))
    assert (batch.reveal_step >= 0).all() and (batch.completion_ids != predictor.mask_id).all()


def test_same_seed_same_output_different_seed_different(predictor, prompts):
    ids, mask = prompts

    def run(seed):
        return generate(predictor, ids, mask, gen_length=16, steps=16, block_length=8, temperature=1.0,
                        generator=torch.Generator().manual_seed(seed))

    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a.completion_ids, b.completion_ids) and torch.equal(a.behaviour_logp, b.behaviour_logp)
    assert not torch.equal(a.completion_ids, c.completion_ids)


def recompute(predictor, batch, s):
    """Logits of the completion part at the state before step s."""
    P = batch.prompt_ids.shape[1]
    return predictor(batch.state_at(s), batch.attention_mask)[:, P:]


def test_recorded_logps_and_entropy_match_a_recompute(predictor, prompts):
    ids, mask = prompts
    T = 0.7
    batch = generate(predictor, ids, mask, gen_length=16, steps=8, block_length=8, temperature=T,
                     generator=torch.Generator().manual_seed(3))
    for s in range(batch.steps):
        logits = recompute(predictor, batch, s)
        logits[..., predictor.mask_id] = -float("inf")
        where = revealed_at(batch, s)
        tok = batch.completion_ids[..., None]
        behaviour = F.log_softmax(logits / T, -1).gather(-1, tok).squeeze(-1)
        model = F.log_softmax(logits, -1).gather(-1, tok).squeeze(-1)
        entropy = torch.special.entr(F.softmax(logits, -1)).sum(-1)
        torch.testing.assert_close(batch.behaviour_logp[where], behaviour[where], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(batch.model_logp[where], model[where], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(batch.token_entropy[where], entropy[where], atol=1e-5, rtol=1e-5)


def test_top_p_rules_hand_computed():
    from dllmrl_core.sampling.draw import support_mask
    from dllmrl_core.sampling.config import SamplerConfig

    def kept(probs, **knobs):
        logits = torch.tensor(probs).log()[None]                           # T = 1: softmax(ℓ) = probs
        return support_mask(logits, SamplerConfig(temperature=1.0, **knobs))[0].nonzero().flatten().tolist()

    p = [0.15, 0.5, 0.05, 0.3]        # sorted: ids 1, 3, 0, 2 with p (.5, .3, .15, .05), c (.5, .8, .95, 1)
    # AGRPO (the default): keep c ≤ .7 -> {1};  nucleus: keep c − p = (0, .5, .8, .95) < .7 -> {1, 3}
    assert kept(p, top_p=0.7) == kept(p, top_p=0.7, top_p_rule="agrpo") == [1]
    assert kept(p, top_p=0.7, top_p_rule="nucleus") == [1, 3]
    # top_p .4 below the first token's .5: AGRPO still keeps the first
    assert kept(p, top_p=0.4) == kept(p, top_p=0.4, top_p_rule="nucleus") == [1]
    # top-k 3 first, renormalised: (.5, .3, .15) / .95 -> c = (.526, .842, 1); top_p .85:
    # AGRPO keeps c ≤ .85 -> {1, 3};  nucleus keeps c − p = (0, .526, .842) < .85 -> {1, 3, 0}
    assert kept(p, top_k=3, top_p=0.85) == [1, 3]
    assert kept(p, top_k=3, top_p=0.85, top_p_rule="nucleus") == [0, 1, 3]


@pytest.mark.parametrize("rule", ["agrpo", "nucleus"])
def test_top_k_top_p_support_is_recorded_and_contains_the_token(predictor, prompts, rule):
    ids, mask = prompts
    batch = generate(predictor, ids, mask, gen_length=16, steps=16, block_length=8, temperature=1.0, top_k=6,
                     top_p=0.5, top_p_rule=rule, record_support=True, generator=torch.Generator().manual_seed(4))
    support = batch.support_ids                                     # [B, L, W]
    assert support.shape[:2] == batch.completion_ids.shape and 1 <= support.shape[-1] <= 6
    assert (support == batch.completion_ids[..., None]).any(-1).all()
    for s in range(batch.steps):
        tempered = recompute(predictor, batch, s) / 1.0
        tempered[..., predictor.mask_id] = -float("inf")
        for b, j in revealed_at(batch, s).nonzero().tolist():
            ids_bj = support[b, j][support[b, j] >= 0]
            top = tempered[b, j].topk(len(ids_bj)).indices
            assert set(ids_bj.tolist()) == set(top.tolist())
            # top-p acts on the top-k-renormalised distribution (AGRPO's order)
            top6 = tempered[b, j].topk(6)
            probs = top6.values.softmax(-1)                               # most likely first
            mass, n = probs.cumsum(-1), len(ids_bj)
            if rule == "agrpo":     # the longest prefix with mass ≤ 0.5, at least one token
                assert (n == 1 or mass[n - 1] <= 0.5 + 1e-6) and (n == 6 or mass[n] > 0.5 - 1e-6)
            else:                   # the smallest prefix with mass ≥ 0.5
                assert mass[n - 1] >= 0.5 - 1e-6 and (n == 1 or mass[n - 2] < 0.5 + 1e-6)
            logp = F.log_softmax(tempered[b, j][ids_bj], -1)[(ids_bj == batch.completion_ids[b, j]).nonzero()[0, 0]]
            torch.testing.assert_close(batch.behaviour_logp[b, j], logp, atol=1e-5, rtol=1e-5)


def test_greedy_fills_and_kept_logits_match_the_visited_state(predictor, prompts):
    ids, mask = prompts
    keep = torch.tensor([2, -1, 5])
    batch = generate(predictor, ids, mask, gen_length=16, steps=8, block_length=8, temperature=0.9,
                     record_greedy_fills=True, keep_logits_steps=keep, generator=torch.Generator().manual_seed(5))
    for s in range(batch.steps):
        logits, state = recompute(predictor, batch, s), batch.completion_at(s)
        logits[..., predictor.mask_id] = -float("inf")
        masked = state == predictor.mask_id
        assert torch.equal(batch.greedy_fills[:, s], torch.where(masked, logits.argmax(-1), state))
    kept = batch.step_logits
    assert kept.step.tolist() == [2, -1, 5] and not kept.masked[1].any()
    for b in (0, 2):
        logits = recompute(predictor, batch, int(keep[b]))[b]
        logits[..., predictor.mask_id] = -float("inf")
        assert torch.equal(kept.masked[b], batch.completion_at(int(keep[b]))[b] == predictor.mask_id)
        torch.testing.assert_close(row_logits(kept, b), logits[kept.masked[b]], atol=1e-6, rtol=1e-6)


class FixedLogits(torch.nn.Module):
    """Ignores its input: EOS peaks (p≈1) at even positions, a weaker letter at odd ones."""

    def __init__(self, vocab, eos, letter):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.vocab, self.eos, self.letter = vocab, eos, letter

    def forward(self, input_ids, attention_mask=None):
        B, T = input_ids.shape
        logits = torch.zeros(B, T, self.vocab)
        even = torch.arange(T) % 2 == 0
        logits[:, even, self.eos] = 12.0
        logits[:, ~even, self.letter] = 3.0
        return type("Out", (), {"logits": logits})()


def test_confidence_eos_eot_inf_commits_eos_last_in_each_block(predictor, tokenizer):
    letter = tokenizer.convert_tokens_to_ids("a")
    stub = MaskPredictor(model=FixedLogits(len(tokenizer), predictor.eos_id, letter), mask_id=predictor.mask_id,
                         eos_id=predictor.eos_id, eot_id=predictor.eot_id, pad_id=predictor.pad_id)
    ids = torch.tensor([[letter, letter]])  # prompt length 2: even completion positions see EOS
    kw = dict(gen_length=8, steps=8, block_length=4)
    plain = generate(stub, ids, **kw)
    fixed = generate(stub, ids, confidence_eos_eot_inf=True, **kw)
    is_eos = fixed.completion_ids[0] == predictor.eos_id
    assert torch.equal(plain.completion_ids, fixed.completion_ids) and is_eos.sum() == 4
    for block in (slice(0, 4), slice(4, 8)):
        step, eos = fixed.reveal_step[0, block], is_eos[block]
        assert step[eos].min() > step[~eos].max()                  # EOS committed after everything else
        step_plain = plain.reveal_step[0, block]
        assert step_plain[eos].max() < step_plain[~eos].min()      # without the option: EOS first
    no_eos = generate(stub, ids, logits_eos_inf=True, **kw)
    assert not (no_eos.completion_ids == predictor.eos_id).any()


def test_transfer_schedule_matches_llada_and_resumes_mid_block():
    for m, k in [(32, 16), (7, 3), (4, 8), (5, 5)]:
        sched = transfer_schedule(torch.tensor([[m]]), k)
        assert torch.equal(sched, num_transfer_tokens(torch.ones(1, m, dtype=torch.bool), k))
    # two blocks of 2 steps; row 1 resumes at step 1 with 3 masks left in block 0 -> 2 then 1
    sched = transfer_schedule(torch.tensor([[4, 4], [3, 4]]), 2, start_step=torch.tensor([0, 1]))
    assert sched.tolist() == [[2, 2, 2, 2], [0, 3, 2, 2]]


@pytest.mark.parametrize("kwargs, needle", [
    (dict(gen_length=30, block_length=8, steps=8), "gen_length"),
    (dict(gen_length=32, block_length=8, steps=6), "steps"),
    (dict(gen_length=16, block_length=8, steps=8, temperature=-1.0), "temperature"),
    (dict(gen_length=16, block_length=8, steps=8, remasking="entropy"), "remasking"),
])
def test_bad_sampler_arguments_raise_one_line_naming_the_argument(predictor, prompts, kwargs, needle):
    ids, mask = prompts
    with pytest.raises(ValueError, match=needle) as err:
        generate(predictor, ids, mask, **kwargs)
    assert "\n" not in str(err.value)


def test_pad_equal_to_mask_and_masked_prompts_are_rejected(predictor, prompts):
    ids, mask = prompts
    padded_with_mask = ids.masked_fill(~mask, predictor.mask_id)
    with pytest.raises(ValueError, match="pad id must differ from the mask id"):
        generate(predictor, padded_with_mask, mask, gen_length=8, steps=8, block_length=8)
    with pytest.raises(ValueError, match="contain the mask id"):
        generate(predictor, ids.masked_fill(mask, predictor.mask_id), mask, gen_length=8, steps=8, block_length=8)
    with pytest.raises(ValueError, match="keep_logits_steps"):
        generate(predictor, ids, mask, gen_length=8, steps=8, block_length=8, keep_logits_steps=torch.tensor([9, 0, 0]))
