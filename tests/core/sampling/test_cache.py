"""Fast-dLLM KV caching and threshold decoding (sampling/cached.py, arXiv 2505.22618).

Where the cache is exact: attention is bidirectional, so the cached K/V of layers >= 1 go stale as
soon as a token is committed after the block start, even with a single block (the prompt's deeper
K/V see the completion). The first layer's K/V depend only on token and position, and during a
block the prefix is committed and the suffix all-mask, so a one-layer model decodes exactly as
without a cache; so does any depth when each block has one step (every step is a full forward).
"""

import subprocess
import sys

import pytest
import torch

from dllmrl_core.contract.types import RolloutBatch
from dllmrl_core.models import MaskPredictor, encode_prompts, load_mask_predictor
from dllmrl_core.models.llada import KVCache
from dllmrl_core.models.tiny import TinySpec, write_tiny
from dllmrl_core.sampling import SamplerConfig, generate
from dllmrl_core.sampling.cached import native_module, step_logits
from tests.core.batch_views import revealed_at
from tests.core.sampling.test_sampler import FixedLogits, spy_on

PROMPTS = ["What is 2+3?", "Sort: c a b", "x"]  # different lengths: left padded


@pytest.fixture(scope="module")
def prompts(tokenizer):
    return encode_prompts(tokenizer, PROMPTS)


@pytest.fixture(scope="module")
def one_layer(tmp_path_factory, tokenizer):
    """The conftest model's shape with a single layer (GQA on), where caching is exact."""
    spec = TinySpec(d_model=32, n_heads=4, n_kv_heads=2, n_layers=1, mlp_hidden_size=64)
    return load_mask_predictor(write_tiny(tmp_path_factory.mktemp("one_layer"), seed=1, spec=spec), device="cpu",
                               tokenizer=tokenizer)


def assert_same_rollout(a, b):
    assert torch.equal(a.completion_ids, b.completion_ids)
    assert torch.equal(a.reveal_step, b.reveal_step)
    assert a.steps == b.steps


@pytest.mark.parametrize("cache", ["prefix", "dual"])
@pytest.mark.parametrize("kw", [
    dict(gen_length=16, steps=16, block_length=16),                    # one block, greedy
    dict(gen_length=16, steps=8, block_length=16, temperature=0.9),    # one block, sampled
    dict(gen_length=24, steps=12, block_length=8, temperature=0.7),    # three blocks
    dict(gen_length=16, steps=8, block_length=8, cfg_scale=1.0),       # CFG: the cache holds both halves
    dict(gen_length=8, steps=16, block_length=4),                      # steps that commit nothing
])
def test_one_layer_cached_equals_uncached(one_layer, prompts, cache, kw):
    ids, mask = prompts

    def run(**extra):
        return generate(one_layer, ids, mask, generator=torch.Generator().manual_seed(3), **kw, **extra)

    assert_same_rollout(run(cache=cache), run())


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_one_step_per_block_is_exact_at_any_depth(predictor, prompts, cache):
    ids, mask = prompts
    kw = dict(gen_length=24, steps=3, block_length=8, temperature=0.8)
    runs = [generate(predictor, ids, mask, generator=torch.Generator().manual_seed(0), cache=c, **kw)
            for c in ("none", cache)]
    assert_same_rollout(*runs)
    torch.testing.assert_close(runs[0].behaviour_logp, runs[1].behaviour_logp, atol=0, rtol=0)


@pytest.mark.parametrize("threshold", [None, 0.0134])
@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_batched_cached_equals_each_row_alone(predictor, prompts, cache, threshold):
    ids, mask = prompts
    kw = dict(gen_length=24, steps=12, block_length=8, cache=cache, threshold=threshold)
    batch = generate(predictor, ids, mask, **kw)
    for b in range(len(PROMPTS)):
        row = generate(predictor, ids[b:b + 1], mask[b:b + 1], **kw)  # same padding: same absolute positions
        assert torch.equal(row.completion_ids[0], batch.completion_ids[b])
        if threshold is None:  # adaptive steps are numbered across the batch, fixed ones are not
            assert torch.equal(row.reveal_step[0], batch.reveal_step[b])


def test_span_forward_against_cache_equals_the_full_forward(predictor, prompts):
    ids, mask = prompts
    core = predictor.model.model
    B, P = ids.shape
    x = torch.cat([ids, torch.full((B, 16), predictor.mask_id)], dim=1)
    x[:, P:P + 5] = torch.randint(10, 60, (B, 5), generator=torch.Generator().manual_seed(0))  # a committed block
    attn = torch.cat([mask, torch.ones(B, 16, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        full, layers = core.forward_span(x, attn)
        cache = KVCache([k for k, _ in layers], [v for _, v in layers], weights_version=0)
        lo, hi = P + 8, P + 12
        dual = core.forward_span(x[:, lo:hi], attn, start=lo, past=cache)[0]
        prefix = core.forward_span(x[:, lo:], attn, start=lo, past=cache.prefix(lo))[0]
    torch.testing.assert_close(dual, full[:, lo:hi], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(prefix, full[:, lo:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(predictor(x, attn), full, atol=0, rtol=0)  # plain forward is the same code path


def eos_stub(predictor, tokenizer):
    """Non-native predictor: EOS with p≈1 at even positions, a letter with p≈0.16 at odd ones."""
    letter = tokenizer.convert_tokens_to_ids("a")
    return MaskPredictor(model=FixedLogits(len(tokenizer), predictor.eos_id, letter), mask_id=predictor.mask_id,
                         eos_id=predictor.eos_id, pad_id=predictor.pad_id), torch.tensor([[letter, letter]])


def test_threshold_commits_all_confident_positions_plus_the_top_one(predictor, tokenizer):
    stub, ids = eos_stub(predictor, tokenizer)
    batch = generate(stub, ids, gen_length=8, steps=8, block_length=4, threshold=0.5)
    # per block: both EOS (p≈1) at once, then the letters (p≈0.16 < 0.5) one per step, leftmost first
    assert batch.reveal_step[0].tolist() == [0, 1, 0, 2, 3, 4, 3, 5] and batch.steps == 6
    assert batch.sampler_mode == "uncached+threshold=0.5"
    everything = generate(stub, ids, gen_length=8, steps=8, block_length=4, threshold=0.0)
    assert everything.reveal_step[0].tolist() == [0] * 4 + [1] * 4 and everything.steps == 2


@pytest.mark.parametrize("cache", ["none", "prefix", "dual"])
def test_threshold_above_one_is_one_token_per_step(predictor, prompts, cache):
    ids, mask = prompts
    kw = dict(gen_length=16, block_length=8, cache=cache)
    never = generate(predictor, ids, mask, steps=8, threshold=1.5, **kw)
    one_per_step = generate(predictor, ids, mask, steps=16, **kw)
    assert_same_rollout(never, one_per_step)


@pytest.mark.parametrize("cache", ["none", "prefix", "dual"])
def test_threshold_steps_commit_at_least_one_masked_position_per_row(predictor, prompts, cache):
    ids, mask = prompts
    threshold = 0.0134  # between the rows' typical confidences: rows finish blocks at different steps
    batch = generate(predictor, ids, mask, gen_length=16, steps=16, block_length=8, cache=cache, threshold=threshold)
    B, S, bl = batch.batch_size, batch.steps, batch.block_length
    assert 2 <= S <= batch.gen_length and set(batch.reveal_step.unique().tolist()) == set(range(S))
    counts = torch.zeros(B, S, dtype=torch.long).scatter_add_(1, batch.reveal_step, torch.ones_like(batch.reveal_step))
    assert len(set(counts.sum(1).tolist())) == 1 and len({tuple(c.tolist()) for c in counts}) > 1
    for s in range(S):
        state = batch.completion_at(s)
        block = int((state != predictor.mask_id).sum(1).min()) // bl  # every row is in the same block
        has_masks = (state[:, block * bl:(block + 1) * bl] == predictor.mask_id).any(1)
        assert torch.equal(counts[:, s] >= 1, has_masks)
        # at temperature 0 the confidence is the committed token's probability: all but one pass the threshold
        low = (revealed_at(batch, s) & (batch.model_logp.exp() < threshold)).sum(1)
        assert (low <= 1).all()


def test_threshold_trajectory_replays_the_visited_states(predictor, prompts):
    ids, mask = prompts
    spy = spy_on(predictor)
    batch = generate(spy, ids, mask, gen_length=16, steps=16, block_length=8, threshold=0.0134, temperature=0.5,
                     record_greedy_fills=True, generator=torch.Generator().manual_seed(0))
    assert len(spy.model.inputs) == batch.steps and batch.greedy_fills.shape[1] == batch.steps
    for s, state in enumerate(spy.model.inputs):
        assert torch.equal(batch.state_at(s), state)


def test_one_layer_prefix_cache_records_the_same_per_step_logits(one_layer, prompts):
    ids, mask = prompts
    kw = dict(gen_length=16, steps=8, block_length=8, temperature=0.9, record_greedy_fills=True,
              keep_logits_steps=torch.tensor([1, 5, -1]))
    runs = [generate(one_layer, ids, mask, generator=torch.Generator().manual_seed(2), cache=c, **kw)
            for c in ("none", "prefix")]
    assert torch.equal(runs[0].greedy_fills, runs[1].greedy_fills)
    assert torch.equal(runs[0].step_logits.masked, runs[1].step_logits.masked)
    torch.testing.assert_close(runs[0].step_logits.logits, runs[1].step_logits.logits, atol=1e-5, rtol=1e-5)


def test_cache_refuses_a_new_weight_version(predictor, prompts):
    ids, mask = prompts
    B, P = ids.shape
    pred = MaskPredictor(model=predictor.model, mask_id=predictor.mask_id, eos_id=predictor.eos_id,
                         pad_id=predictor.pad_id, version=3)
    cfg = SamplerConfig.parse(dict(gen_length=16, steps=16, block_length=8, cache="dual"))
    x = torch.cat([ids, torch.full((B, 16), pred.mask_id)], dim=1)
    attn = torch.cat([mask, torch.ones(B, 16, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        _, _, cache = step_logits(pred, pred.model.model, x, attn, P, P, P + 8, cfg, None)
        assert cache.weights_version == 3
        step_logits(pred, pred.model.model, x, attn, P, P, P + 8, cfg, cache)  # same version: fine
        pred.version = 4
        with pytest.raises(ValueError, match="weights version 3 used at version 4"):
            step_logits(pred, pred.model.model, x, attn, P, P, P + 8, cfg, cache)


def test_weight_update_during_generation_invalidates_the_cache(predictor, prompts):
    ids, mask = prompts
    pred = MaskPredictor(model=predictor.model, mask_id=predictor.mask_id, eos_id=predictor.eos_id,
                         pad_id=predictor.pad_id, version=0)

    def adapter_update(*_):  # what a weight sync does between two forward passes
        pred.version += 1

    hook = predictor.model.model.transformer["blocks"][0].register_forward_hook(adapter_update)
    try:
        with pytest.raises(ValueError, match="never survive a weight update"):
            generate(pred, ids, mask, gen_length=16, steps=8, block_length=8, cache="prefix")
    finally:
        hook.remove()


def test_mode_is_recorded_and_carried_by_cat(predictor, prompts):
    ids, mask = prompts
    kw = dict(gen_length=8, steps=8, block_length=8)
    assert generate(predictor, ids, mask, **kw).sampler_mode == "uncached"
    assert generate(predictor, ids, mask, cache="prefix", **kw).sampler_mode == "prefix"
    slow, fast = (generate(predictor, ids[r], mask[r], cache="dual", threshold=0.0134, **kw) for r in ([0], [2]))
    assert slow.sampler_mode == "dual+threshold=0.0134" and slow.adaptive_steps
    assert (slow.steps, fast.steps) == (8, 1)  # chunks of one adaptive run can differ in step count
    joined = RolloutBatch.cat([slow, fast])
    assert joined.sampler_mode == "dual+threshold=0.0134" and joined.steps == 8
    assert joined.to("cpu").sampler_mode == "dual+threshold=0.0134"
    with pytest.raises(ValueError, match="sampler mode"):
        RolloutBatch.cat([generate(predictor, ids, mask, **kw), generate(predictor, ids, mask, cache="dual", **kw)])


def test_cache_on_a_non_native_predictor_is_one_line_naming_the_option(predictor, tokenizer):
    stub, ids = eos_stub(predictor, tokenizer)
    for cache in ("prefix", "dual"):
        with pytest.raises(ValueError, match=f"sampler.cache='{cache}'") as err:
            generate(stub, ids, gen_length=8, steps=8, block_length=4, cache=cache)
        assert "\n" not in str(err.value)
    generate(stub, ids, gen_length=8, steps=8, block_length=4, threshold=0.5)  # threshold alone needs no cache


def test_cache_through_a_peft_adapter(tiny_dir, predictor, prompts):
    from peft import LoraConfig, get_peft_model

    from dllmrl_core.models.llada import LLaDAModelLM

    lora = get_peft_model(LLaDAModelLM.from_pretrained(tiny_dir),
                          LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    pred = MaskPredictor(model=lora.eval(), mask_id=predictor.mask_id, eos_id=predictor.eos_id, pad_id=predictor.pad_id)
    ids, mask = prompts
    with torch.no_grad():
        cached_path = native_module(pred, "dual").forward_span(ids, mask)[0]
        torch.testing.assert_close(cached_path, pred(ids, mask), atol=0, rtol=0)  # the adapter is in the path
        assert not torch.allclose(cached_path, predictor(ids, mask))
    kw = dict(gen_length=24, steps=3, block_length=8)
    assert_same_rollout(generate(pred, ids, mask, cache="dual", **kw), generate(pred, ids, mask, **kw))


@pytest.mark.parametrize("kwargs, needle", [
    (dict(cache="dual", record_greedy_fills=True), "sampler.cache='dual'"),
    (dict(threshold=0.5, keep_logits_steps=torch.tensor([0, 1, 2])), "sampler.threshold"),
    (dict(cache="prefix", llada_rng=True), "llada_rng"),
    (dict(cache="full"), "cache"),
])
def test_unsupported_combinations_are_one_line(predictor, prompts, kwargs, needle):
    ids, mask = prompts
    with pytest.raises(ValueError, match=needle) as err:
        generate(predictor, ids, mask, gen_length=8, steps=8, block_length=8, **kwargs)
    assert "\n" not in str(err.value)


def test_cli_exposes_cache_and_threshold(tiny_dir):
    out = subprocess.run([sys.executable, "-m", "dllmrl_core.cli", "generate", "--model", str(tiny_dir), "--prompt",
                          "2+3=", "--gen-length", "16", "--steps", "8", "--block-length", "8", "--cache", "dual",
                          "--threshold", "0.5"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
