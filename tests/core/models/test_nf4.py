"""A 4-bit NF4 base (model.quantize: nf4, d1's BitsAndBytesConfig) on CPU: block linears 4-bit, head
in full precision, close to the full model; sampling then learning keeps every LoRA gradient; the
memory plan counts its weights."""

import pytest
import torch

from dllmrl_core.drive.config import RunConfig
from dllmrl_core.models import encode_prompts, load_mask_predictor
from dllmrl_core.sampling import generate
from dllmrl_core.training.policy import ModelConfig, load_policy

bnb = pytest.importorskip("bitsandbytes", reason="the nf4 extra (bitsandbytes) is part of the dev install")


def test_nf4_loads_the_block_linears_in_4_bits_and_keeps_the_head(tiny_dir):
    full = load_mask_predictor(tiny_dir, device="cpu")
    nf4 = load_mask_predictor(tiny_dir, device="cpu", quantize="nf4")
    blocks = nf4.model.model.transformer["blocks"]
    assert all(isinstance(getattr(b, name), bnb.nn.Linear4bit) for b in blocks for name in ("q_proj", "ff_out"))
    assert type(nf4.model.model.transformer["ff_out"]) is torch.nn.Linear  # the LM head stays full precision
    ids = torch.randint(20, 60, (2, 24))
    with torch.no_grad():
        a, b = full(ids), nf4(ids)
    assert 0 < float((a - b).norm() / a.norm()) < 0.5  # 4-bit weights: close, not equal


def test_sampling_in_eval_mode_then_learning_keeps_every_lora_gradient(tiny_dir, tokenizer):
    """bitsandbytes repacks 4-bit weights for CPU inference on its first no-grad eval forward and its
    backward then drops gradients; the loader keeps one layout, so the learner still trains."""
    policy, _ = load_policy(ModelConfig(path=str(tiny_dir), device="cpu", quantize="nf4",
                                        lora={"r": 4, "alpha": 8, "dropout": 0.0}))
    ids, mask = encode_prompts(tokenizer, ["2+3", "7-1"])
    policy.model.eval()
    generate(policy, ids, mask, gen_length=8, steps=4, block_length=8, temperature=0.9,
             generator=torch.Generator().manual_seed(0))
    policy.model.train()
    with torch.no_grad():
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    ids = torch.randint(20, 60, (2, 16))
    policy(ids).float().logsumexp(-1).sum().backward()
    lora = {n: p.grad for n, p in policy.model.named_parameters() if p.requires_grad}
    assert lora and all(g is not None and g.abs().sum() > 0 for g in lora.values())


def test_the_plan_counts_nf4_weights(tiny_dir):
    from dllmrl_core.planning.plan import precision, setting, weights

    task = {"name": "countdown", "train_source": "generate:8", "test_source": "generate:8"}
    cfg = RunConfig.parse({"model": {"path": str(tiny_dir), "device": "cpu", "quantize": "nf4"}, "task": task})
    full = RunConfig.parse({"model": {"path": str(tiny_dir), "device": "cpu"}, "task": task})
    planned = weights(setting(cfg), precision(cfg, 0)).bytes
    model = load_mask_predictor(tiny_dir, device="cpu", quantize="nf4").model
    tensors = [*model.parameters()]
    for m in model.modules():
        state = getattr(getattr(m, "weight", None), "quant_state", None)
        if state is not None:  # per-64 absmax (8-bit) and their fp32 scales; codebooks are constants
            tensors += [state.absmax, state.state2.absmax]
    measured = sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}.values())
    assert planned < weights(setting(full), precision(full, 0)).bytes
    assert planned == pytest.approx(measured, rel=0.05)
