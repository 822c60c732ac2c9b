"""Dream's own loop (`sampler.style: dream`) against Dream's diffusion_generate on a tiny checkpoint in
Dream's layout (tests/core/models/dream_checkpoint.py), its trajectory records, and its options."""

import pytest
import torch
import torch.nn.functional as F

from dllmrl_core.likelihood import token_logp
from dllmrl_core.likelihood.stepwise import step_query
from dllmrl_core.models import MaskPredictor, encode_prompts, load_mask_predictor, load_tokenizer
from dllmrl_core.sampling import SamplerConfig, generate
from dllmrl_core.sampling.branching import continue_from
from tests.core.batch_views import sequence_ids
from tests.core.models.dream_checkpoint import MASK, dream_weights, write_dream_dir

PROMPTS = ["What is 2+3?", "Sort: c a b", "x"]  # different lengths: the batch is left-padded
ALGS = ["maskgit_plus", "topk_margin", "entropy"]


@pytest.fixture(scope="module")
def dream(tmp_path_factory):
    path = write_dream_dir(tmp_path_factory.mktemp("dream"), dream_weights(seed=1))
    return load_mask_predictor(path, device="cpu", tokenizer=load_tokenizer(path))


@pytest.fixture(scope="module")
def prompts(dream):
    return encode_prompts(load_tokenizer(dream.model.name_or_path), PROMPTS)


def forbid_mask(step, x, logits):
    """Dream's logits hook carrying the project's one rule Dream lacks: the mask token is never drawn."""
    logits[..., MASK] = float("-inf")
    return logits


def dream_generate(dream, ids, mask, *, gen_length, steps, **kw):
    """Dream's diffusion_generate, called as Dream's README calls it (the mask rule as its logits hook)."""
    model = dream.model
    return model.diffusion_generate(ids, attention_mask=None if mask is None else mask.long(),
                                    generation_config=model.generation_config, max_new_tokens=gen_length,
                                    steps=steps, generation_logits_hook_func=forbid_mask, **kw)


def ours(dream, ids, mask, *, gen_length, steps, alg="entropy", alg_temp=0.0, **kw):
    return generate(dream, ids, mask, gen_length=gen_length, steps=steps, block_length=gen_length, style="dream",
                    dream={"alg": alg, "alg_temp": alg_temp}, **kw)


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("gen_length, steps", [
    (16, 16),   # one step per token: Dream's schedule commits 0 at the first step and catches up later
    (12, 5),    # several tokens per step
    (8, 12),    # more steps than tokens
])
def test_greedy_equals_dreams_diffusion_generate(dream, prompts, alg, gen_length, steps):
    ids, mask = prompts
    batch = ours(dream, ids, mask, gen_length=gen_length, steps=steps, alg=alg)
    reference = dream_generate(dream, ids, mask, gen_length=gen_length, steps=steps, alg=alg, temperature=0.0)
    assert torch.equal(sequence_ids(batch), reference)
    assert batch.sampler_mode == f"dream-{alg}" and batch.steps == steps and batch.block_length == gen_length


@pytest.mark.parametrize("alg", ALGS)
def test_greedy_with_truncation_and_no_padding(dream, prompts, alg):
    """At T = 0 Dream still truncates (top-p, then top-k) before its confidences; one unpadded prompt."""
    ids, mask = prompts
    row = ids[:1, int((~mask[0]).sum()):]
    kw = dict(gen_length=10, steps=4, top_p=0.9, top_k=3)
    batch = ours(dream, row, None, alg=alg, **kw)
    assert torch.equal(sequence_ids(batch), dream_generate(dream, row, None, alg=alg, temperature=0.0, **kw))


@pytest.mark.parametrize("alg, alg_temp", [("maskgit_plus", 0.0), ("entropy", 0.0), ("topk_margin", 0.5)])
def test_same_seed_same_draws_at_temperature(dream, prompts, alg, alg_temp):
    """Dream's calls in Dream's order: with torch's global RNG the draws match Dream's under one seed."""
    ids, mask = prompts
    kw = dict(gen_length=12, steps=6, temperature=0.8, top_p=0.95, top_k=20)
    torch.manual_seed(11)
    batch = ours(dream, ids, mask, alg=alg, alg_temp=alg_temp, **kw)
    torch.manual_seed(11)
    reference = dream_generate(dream, ids, mask, alg=alg, alg_temp=alg_temp, **kw)
    assert torch.equal(sequence_ids(batch), reference)


class Spy(torch.nn.Module):
    """Wraps Dream's model and keeps every input it is given (to compare with replayed states)."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.inputs = inner, []

    def forward(self, input_ids, **kwargs):
        self.inputs.append(input_ids.clone())
        return self.inner(input_ids, **kwargs)


def test_records_replay_every_state_and_score_the_drawn_tokens(dream, prompts):
    """Each position revealed once; state_at(s) is the state step s saw; behaviour_logp is log
    softmax(ℓ / T) and model_logp log softmax(ℓ) of the committed token at its state."""
    ids, mask = prompts
    spy = MaskPredictor(model=Spy(dream.model), mask_id=dream.mask_id, eos_id=dream.eos_id, eot_id=dream.eot_id,
                        pad_id=dream.pad_id, shift_logits=True, dream_inputs=True)
    T, S, L, P = 0.9, 6, 12, ids.shape[1]
    batch = ours(spy, ids, mask, gen_length=L, steps=S, alg="maskgit_plus", temperature=T,
                 generator=torch.Generator().manual_seed(0))
    assert ((batch.reveal_step >= 0) & (batch.reveal_step < S)).all()
    assert (batch.completion_ids != MASK).all()
    for s, seen in enumerate(spy.model.inputs):
        assert torch.equal(seen[:, P:], batch.completion_at(s))
        logits = dream(batch.state_at(s), batch.attention_mask)[:, P:]
        logits[..., MASK] = float("-inf")
        now = batch.reveal_step == s
        token = batch.completion_ids[..., None]
        torch.testing.assert_close(batch.behaviour_logp[now],
                                   F.log_softmax(logits / T, -1).gather(-1, token).squeeze(-1)[now])
        torch.testing.assert_close(batch.model_logp[now], F.log_softmax(logits, -1).gather(-1, token).squeeze(-1)[now])


def test_support_is_dreams_nucleus_and_scores_the_draw(dream, prompts):
    """top-p at T > 0: the recorded support is the smallest most-likely set reaching top_p (Dream's
    rule), contains the drawn token, and behaviour_logp is the log-prob within it."""
    ids, mask = prompts
    T, top_p, P = 1.0, 0.6, ids.shape[1]
    batch = ours(dream, ids, mask, gen_length=8, steps=4, temperature=T, top_p=top_p, record_support=True,
                 generator=torch.Generator().manual_seed(2))
    for s in range(batch.steps):
        logits = dream(batch.state_at(s), batch.attention_mask)[:, P:]
        logits[..., MASK] = float("-inf")
        for b, pos in (batch.reveal_step == s).nonzero().tolist():
            support = batch.support_ids[b, pos][batch.support_ids[b, pos] >= 0]
            probs = F.softmax(logits[b, pos] / T, -1)
            assert probs[support].sum() - probs[support[-1]] <= top_p < probs[support].sum() + 1e-6
            assert batch.completion_ids[b, pos] in support
            within = F.log_softmax(logits[b, pos, support] / T, -1)
            torch.testing.assert_close(batch.behaviour_logp[b, pos],
                                       within[support == batch.completion_ids[b, pos]].squeeze())


def test_the_learner_scores_the_recorded_behaviour_exactly(dream, prompts):
    """AGRPO's per-step log-probs (tempered, restricted to the recorded support) of a Dream rollout equal
    the sampler's behaviour_logp: the first ratio is exactly 1."""
    ids, mask = prompts
    batch = ours(dream, ids, mask, gen_length=12, steps=6, temperature=0.9, top_p=0.9, top_k=30,
                 record_support=True, generator=torch.Generator().manual_seed(4))
    rows = torch.arange(batch.batch_size)
    for s in range(batch.steps):
        query = step_query(batch, rows, torch.full_like(rows, s), behaviour=True)
        logp = token_logp(dream, query).logp
        assert torch.equal(logp[query.target_mask], batch.behaviour_logp[query.target_mask])


def test_greedy_fills_record_every_step(dream, prompts):
    ids, mask = prompts
    batch = ours(dream, ids, mask, gen_length=8, steps=4, temperature=0.7, record_greedy_fills=True,
                 generator=torch.Generator().manual_seed(3))
    P = ids.shape[1]
    for s in range(batch.steps):
        logits = dream(batch.state_at(s), batch.attention_mask)[:, P:]
        logits[..., MASK] = float("-inf")
        state = batch.completion_at(s)
        assert torch.equal(batch.greedy_fills[:, s], torch.where(state == MASK, logits.argmax(-1), state))


@pytest.mark.parametrize("override, message", [
    ({"block_length": 4}, "block_length"),
    ({"cfg_scale": 1.0}, "cfg_scale"),
    ({"cache": "prefix"}, "cache"),
    ({"threshold": 0.9}, "threshold"),
    ({"llada_rng": True}, "llada_rng"),
    ({"dream": {"alg": "origin"}}, "dream.alg"),
])
def test_options_without_a_dream_counterpart_are_errors(override, message):
    with pytest.raises(ValueError, match=message):
        SamplerConfig.parse({"gen_length": 8, "steps": 4, "block_length": 8, "style": "dream", **override})


def test_continuations_refuse_dreams_loop(dream, prompts):
    ids, mask = prompts
    cfg = SamplerConfig.parse({"gen_length": 8, "steps": 4, "block_length": 8, "style": "dream"})
    batch = ours(dream, ids, mask, gen_length=8, steps=4)
    with pytest.raises(ValueError, match="style='dream'"):
        continue_from(dream, batch, torch.tensor([0]), torch.tensor([1]), cfg)
