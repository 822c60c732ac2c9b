"""On-policy means ratio exactly 1: the log-probs the sampler records (AGRPO: the behaviour policy,
EGSPO: the untempered model) equal, bit for bit, what the learner computes for the same tokens at its
first step, through a non-zero LoRA adapter (dropout 0), in train mode, with gradients, in
micro-batches of rows and with the LM head applied to the scored positions only.

Shapes: each learner micro-batch scores at least 4 tokens (2 per row and step, micro_rows >= 2).
On CPU a GEMM of 1-3 rows runs another kernel than one of >= 4 rows, and its results can differ in
the last bit: with micro_rows = 1 the learner's LM head multiplies only the 2 scored rows and the
ratios come out as 1 ± 2.4e-7 (measured), while the same run with the head over every position
(gather_logits=False) is exact again. Real runs score more than 3 tokens per micro-batch (AGRPO's
recipe reveals 3 per step, so any micro_rows >= 2)."""

import pytest
import torch

from dllmrl_core.sampling import SamplerConfig
from dllmrl_core.training.optim import OptimConfig, build_optimizer
from dllmrl_core.training.step import freeze_old_and_ref, train_step
from tests.core.objectives.helpers import lora_policy, prepared_terms

# AGRPO's sampler shape (temperature, top-k, top-p) at the tiny model's lengths: 2 tokens per step.
SAMPLER = SamplerConfig(gen_length=16, steps=8, block_length=8, temperature=0.9, top_k=20, top_p=0.95)
ALGO = {"agrpo": dict(mc_samples=3), "egspo": dict(num_steps=3)}
PROMPTS = ["2+3=", "17-1=", "4*4="]  # different lengths: left padded, the attention mask matters


@pytest.fixture()
def policy(tiny_dir):
    return lora_policy(tiny_dir)


@pytest.mark.parametrize("name", ["agrpo", "egspo"])
@pytest.mark.parametrize("micro_rows", [2, 4, None])
def test_first_learner_step_has_every_ratio_exactly_one(policy, tokenizer, name, micro_rows):
    objective, cfg, batch, terms = prepared_terms(policy, tokenizer, name, ALGO[name], SAMPLER, PROMPTS, 2)
    freeze_old_and_ref(policy, [terms], objective.needs_ref(cfg), micro_rows)
    recorded = batch.behaviour_logp if name == "agrpo" else batch.model_logp
    pairs = []

    def loss(term, logp, entropy):  # the learner's own log-probs of this micro-batch, next to the recorded ones
        pairs.append((logp.detach(), term.old_logp, term.query.target_mask))
        return objective.loss(term, logp, entropy, cfg)

    opt, sched = build_optimizer(policy.model.parameters(), OptimConfig(lr=1e-2), total_steps=1)
    metrics = train_step(policy, opt, sched, terms, loss, max_grad_norm=1.0, micro_rows=micro_rows)
    assert metrics.ratio_mean == 1.0 and metrics.ratio_max == 1.0
    assert sum(int(m.sum()) for _, _, m in pairs) > 0 and metrics.tokens > 0
    for logp, old, target in pairs:
        assert torch.equal(logp[target], old[target])
    # and those old log-probs are the sampler's records, token for token
    learner = torch.cat([logp for logp, _, _ in pairs])
    source = torch.arange(batch.batch_size).repeat_interleave(cfg.mc_samples) if name == "agrpo" \
        else batch.branches.source_row
    target = terms[0].query.target_mask
    assert torch.equal(learner[target], recorded[source][target])
