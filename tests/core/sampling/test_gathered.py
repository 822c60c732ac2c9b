"""Gathered logits change nothing: the sampler asks the model only for the positions a step needs
(the block; the whole completion where a per-step record needs it), and every output and
trajectory record equals the reference path that computes every position's logits and selects
afterwards (`MaskPredictor.gather_logits=False`)."""

import dataclasses

import pytest
import torch

from dllmrl_core.models import encode_prompts
from dllmrl_core.sampling import draw, generate
from dllmrl_core.sampling.branching import continue_from, fill_from_logits, greedy_branches, select_steps
from dllmrl_core.sampling.config import SamplerConfig

PROMPTS = ["What is 2+3?", "Sort: c a b", "x"]  # different lengths: left padded
RECORDS = ("completion_ids", "reveal_step", "behaviour_logp", "model_logp", "token_entropy", "support_ids",
           "greedy_fills")
BASE = dict(gen_length=24, steps=12, block_length=8)


@pytest.fixture(scope="module")
def prompts(tokenizer):
    return encode_prompts(tokenizer, PROMPTS)


def reference(predictor):
    return dataclasses.replace(predictor, gather_logits=False)


def assert_same_batch(a, b):
    """Every trajectory record identical, bit for bit."""
    for name in RECORDS:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        assert x is None or torch.equal(x, y), name
    assert (a.steps, a.sampler_mode) == (b.steps, b.sampler_mode)
    assert (a.step_logits is None) == (b.step_logits is None)
    if a.step_logits is not None:
        for name in ("step", "masked", "logits"):
            assert torch.equal(getattr(a.step_logits, name), getattr(b.step_logits, name)), name


def both(predictor, ids, mask, seed=0, **kw):
    """The same call on the gathering predictor and on the reference, each with a fresh generator."""
    return [generate(p, ids, mask, generator=torch.Generator().manual_seed(seed), **{**BASE, **kw})
            for p in (predictor, reference(predictor))]


MODES = {
    "greedy": dict(),                                                          # low confidence
    "sampled": dict(temperature=0.9),
    "random": dict(temperature=0.9, remasking="random"),
    "top-k-top-p": dict(temperature=1.0, top_k=6, top_p=0.8, record_support=True),
    "cfg": dict(temperature=0.8, cfg_scale=1.5),
    "eos-options": dict(temperature=0.7, logits_eos_inf=True, confidence_eos_eot_inf=True),
}
LLADA_RNG = {"llada-rng": dict(temperature=0.9, llada_rng=True),                # uncached only
             "llada-rng-random": dict(temperature=0.9, llada_rng=True, remasking="random")}


@pytest.mark.parametrize("name, cache", [(m, c) for m in MODES for c in ("none", "prefix", "dual")]
                         + [(m, "none") for m in LLADA_RNG])
def test_fixed_schedule_records_equal_the_reference(predictor, prompts, name, cache):
    assert_same_batch(*both(predictor, *prompts, cache=cache, **{**MODES, **LLADA_RNG}[name]))


@pytest.mark.parametrize("cache", ["none", "prefix", "dual"])
@pytest.mark.parametrize("kw", [dict(), dict(temperature=0.8, cfg_scale=1.0), dict(temperature=0.6, top_k=5)])
def test_threshold_records_equal_the_reference(predictor, prompts, cache, kw):
    assert_same_batch(*both(predictor, *prompts, cache=cache, threshold=0.0134, **kw))


@pytest.mark.parametrize("kw", [
    dict(cache="none"), dict(cache="prefix"), dict(cache="none", cfg_scale=1.0),
    dict(cache="prefix", threshold=0.0134),                                     # greedy fills only
])
def test_greedy_fills_and_kept_logits_equal_the_reference(predictor, prompts, kw):
    keep = None if "threshold" in kw else torch.tensor([3, -1, 9])
    runs = both(predictor, *prompts, temperature=0.9, record_greedy_fills=True, keep_logits_steps=keep, **kw)
    assert runs[0].greedy_fills is not None and (keep is None or runs[0].step_logits.logits.shape[0] > 0)
    assert_same_batch(*runs)


def test_branches_equal_the_reference(predictor, prompts):
    """SAPO continuations (denoised from visited states, extra masks appended), DiSPO fillings from
    the kept logits and EGSPO greedy fills: the same branches either way."""
    ids, mask = prompts
    keep = torch.tensor([2, 7, 5])
    out = []
    for p in (predictor, reference(predictor)):
        gen = torch.Generator().manual_seed(11)
        batch = generate(p, ids, mask, generator=gen, temperature=0.9, top_k=8, record_support=True,
                         record_greedy_fills=True, keep_logits_steps=keep, **BASE)
        cfg = SamplerConfig.parse(dict(temperature=0.9, top_k=8, **BASE))
        rows, steps = torch.tensor([0, 0, 1, 2]), torch.tensor([1, 4, 6, 11])
        sapo = continue_from(p, batch, rows, steps, cfg, extra_masks=8, generator=gen)
        dispo = fill_from_logits(batch, 3, cfg, gen)
        egspo = greedy_branches(batch, select_steps(batch, 4, "high_entropy", None, gen))
        out.append((batch, sapo, dispo, egspo))
    (a, *branches_a), (b, *branches_b) = out
    assert_same_batch(a, b)
    assert torch.equal(branches_a[0], branches_b[0]) and (branches_a[0] != predictor.mask_id).all()
    for x, y in zip(branches_a[1:], branches_b[1:]):
        for field in ("source_row", "step", "completion_ids", "filled"):
            u, v = getattr(x, field), getattr(y, field)
            assert (u is None and v is None) or torch.equal(u, v), (x.kind, field)


class HeadRows:
    """Counts the positions that reach the LM head (the input rows of ln_f) per forward."""

    def __init__(self, predictor):
        self.sizes = []
        ln_f = predictor.model.model.transformer["ln_f"]
        self.handle = ln_f.register_forward_pre_hook(lambda _, args: self.sizes.append(args[0].shape[:-1].numel()))

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.handle.remove()


@pytest.mark.parametrize("cache", ["none", "prefix", "dual"])
def test_the_head_sees_only_the_block(predictor, prompts, cache):
    ids, mask = prompts
    B, W = ids.shape[0], BASE["block_length"]
    with HeadRows(predictor) as head:
        batch = generate(predictor, ids, mask, cache=cache, temperature=0.9, cfg_scale=1.0,
                         generator=torch.Generator().manual_seed(0), **BASE)
    assert head.sizes == [2 * B * W] * batch.steps  # CFG: both halves, the block only, every step


@pytest.mark.parametrize("cache", ["none", "prefix"])
def test_the_head_sees_the_completion_only_when_a_record_needs_it(predictor, prompts, cache):
    ids, mask = prompts
    B, L, W = ids.shape[0], BASE["gen_length"], BASE["block_length"]
    spb = BASE["steps"] // (L // W)
    with HeadRows(predictor) as head:
        generate(predictor, ids, mask, cache=cache, temperature=0.9, keep_logits_steps=torch.tensor([1, -1, 6]),
                 generator=torch.Generator().manual_seed(0), **BASE)
    # steps 1 and 6 keep logits: the whole completion (for the prefix cache's span steps, what the
    # span covers: from the block to the end); every other step: the block
    wide = {s: B * (L if cache == "none" or s % spb == 0 else L - (s // spb) * W) for s in (1, 6)}
    assert head.sizes == [wide.get(s, B * W) for s in range(BASE["steps"])]


@pytest.mark.parametrize("kw", [
    dict(), dict(temperature=0.9), dict(temperature=0.9, remasking="random"),
    dict(temperature=1.0, top_k=6, top_p=0.8, record_support=True), dict(temperature=0.7, top_p=0.6, record_support=True),
    dict(temperature=0.9, llada_rng=True),
], ids=["greedy", "sampled", "random", "top-k-top-p", "top-p", "llada-rng"])
@pytest.mark.parametrize("rows", [1, 3])
def test_vocabulary_work_in_row_chunks_changes_nothing(predictor, prompts, monkeypatch, kw, rows):
    """The full-vocabulary ops of a step run over chunks of rows (draw.ROW_CHUNK entries): any chunk
    size gives the records of one pass over the block (here: 1 or 3 rows per chunk vs all at once)."""
    ids, mask = prompts

    def run():
        return generate(predictor, ids, mask, generator=torch.Generator().manual_seed(5), **kw, **BASE)

    whole = run()
    V = predictor.model.config.vocab_size
    monkeypatch.setattr(draw, "ROW_CHUNK", rows * V)
    assert len(draw.row_chunks(ids.shape[0] * BASE["block_length"], V)) > 1
    assert_same_batch(run(), whole)
