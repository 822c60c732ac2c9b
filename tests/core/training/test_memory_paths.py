"""The learner's memory paths change no number: logits gathered at the scored positions (through the
chunked head) and per-block activation checkpointing give the loss and gradients of the full path
(every position's logits, no checkpointing, all rows at once) bit for bit on CPU, and micro-batches
within 1e-6 (their gradients are summed in another order), for every method."""

import pytest
import torch

from dllmrl_core.likelihood import token_logp
from dllmrl_core.likelihood import head as head_module
from dllmrl_core.models import MaskPredictor
from dllmrl_core.models.llada import set_activation_checkpointing
from dllmrl_core.objectives import OBJECTIVES
from dllmrl_core.sampling import SamplerConfig
from dllmrl_core.training.step import chunks, freeze_old_and_ref
from tests.core.objectives.helpers import cpu_settings, lora_policy, prepared_terms

SAMPLER = SamplerConfig(gen_length=16, steps=8, block_length=8, temperature=0.9, top_k=20)
SETTINGS = {name: cpu_settings(name, beta=0.04, continuation_extra_masks=8) for name in OBJECTIVES}


def build_policy(tiny_dir, dropout: float) -> MaskPredictor:
    return lora_policy(tiny_dir, dropout)


def prepared(policy, tokenizer, name):
    """The method's first-iteration terms, with old/reference log-probs frozen on the full path."""
    objective, cfg, _, terms = prepared_terms(policy, tokenizer, name, SETTINGS[name], SAMPLER, ["2+3", "Sort: c a b"], 3)
    policy.gather_logits = False
    freeze_old_and_ref(policy, [terms], objective.needs_ref(cfg))
    return objective, cfg, terms


def loss_and_grads(policy, terms, objective, cfg, *, gather: bool, checkpointing: bool, micro: int | None):
    policy.gather_logits = gather
    set_activation_checkpointing(policy.model, checkpointing)
    policy.model.train()
    policy.model.zero_grad(set_to_none=True)
    torch.manual_seed(3)  # LoRA dropout draws, identical in every variant (checkpointing restores the RNG)
    total = 0.0
    for term in terms:
        for part in chunks(len(term), micro, term.unit):
            sliced = term.rows(part)
            scored = token_logp(policy, sliced.query)
            out = objective.loss(sliced, scored.logp, scored.entropy, cfg)
            out.loss.backward()
            total += float(out.loss.detach())
    set_activation_checkpointing(policy.model, False)
    grads = {n: p.grad.clone() for n, p in policy.model.named_parameters() if p.requires_grad}
    return total, grads


def assert_same(ref, other, exact: bool = False):
    loss_ref, grads_ref = ref
    loss, grads = other
    if exact:  # the same arithmetic on the same rows: bit for bit on CPU
        assert loss == loss_ref and all(torch.equal(grads[n], g) for n, g in grads_ref.items())
    assert loss == pytest.approx(loss_ref, abs=1e-6, rel=1e-6)
    assert any(g.abs().sum() > 0 for g in grads_ref.values())
    for name, g in grads_ref.items():
        torch.testing.assert_close(grads[name], g, atol=1e-6, rtol=1e-5, msg=name)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_gathered_checkpointed_and_micro_batched_equal_the_full_path(tiny_dir, tokenizer, name):
    policy = build_policy(tiny_dir, dropout=0.0)
    objective, cfg, terms = prepared(policy, tokenizer, name)
    full = loss_and_grads(policy, terms, objective, cfg, gather=False, checkpointing=False, micro=None)
    gathered = loss_and_grads(policy, terms, objective, cfg, gather=True, checkpointing=False, micro=None)
    assert_same(full, gathered, exact=True)
    for gather, ckpt, micro in ((False, True, None), (True, True, None), (True, True, 2)):
        assert_same(full, loss_and_grads(policy, terms, objective, cfg, gather=gather, checkpointing=ckpt,
                                         micro=micro), exact=micro is None)


def test_checkpointing_replays_lora_dropout_exactly(tiny_dir, tokenizer):
    policy = build_policy(tiny_dir, dropout=0.2)
    objective, cfg, terms = prepared(policy, tokenizer, "diffu_grpo")
    plain = loss_and_grads(policy, terms, objective, cfg, gather=True, checkpointing=False, micro=None)
    assert_same(plain, loss_and_grads(policy, terms, objective, cfg, gather=True, checkpointing=True, micro=None))


@pytest.mark.parametrize("name", ["diffu_grpo", "agrpo"])
def test_the_chunked_head_equals_the_full_log_softmax_across_chunk_boundaries(tiny_dir, tokenizer, name,
                                                                             monkeypatch):
    policy = build_policy(tiny_dir, dropout=0.0)
    objective, cfg, terms = prepared(policy, tokenizer, name)
    full = loss_and_grads(policy, terms, objective, cfg, gather=False, checkpointing=False, micro=None)
    vocab = policy.head_params[0].shape[0]
    monkeypatch.setattr(head_module, "CHUNK_BYTES", 4 * vocab * 5)  # 5 positions per chunk
    assert head_module.chunk_size(vocab) == 5
    assert_same(full, loss_and_grads(policy, terms, objective, cfg, gather=True, checkpointing=False, micro=None))


def test_checkpointing_keeps_only_block_inputs(tiny_dir):
    """With checkpointing, autograd keeps each block's input instead of its activations."""
    policy = build_policy(tiny_dir, dropout=0.0)
    ids = torch.randint(20, 60, (4, 30))

    def saved_bytes(on: bool) -> int:
        seen = {}

        def pack(t):
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        set_activation_checkpointing(policy.model, on)
        policy.model.train()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            policy.hidden(ids, None, torch.ones_like(ids, dtype=torch.bool)).sum()
        set_activation_checkpointing(policy.model, False)
        params = {p.untyped_storage().data_ptr() for p in policy.model.parameters()}
        return sum(v for k, v in seen.items() if k not in params)

    assert saved_bytes(True) < saved_bytes(False) / 3
