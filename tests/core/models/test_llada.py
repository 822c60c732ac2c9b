"""The native LLaDA module: real on-disk layout, reference forward, save/load, PEFT, errors."""

import json

import pytest
import torch
from safetensors.torch import save_file

from dllmrl_core.models import MaskPredictor, load_mask_predictor
from dllmrl_core.models.llada import LLaDAConfig, LLaDAModelLM
from dllmrl_core.models.loading import default_dtype

D, H, KV, LAYERS, MLP, V = 32, 4, 2, 2, 48, 40
MASK, EOS = 39, 1

# config.json as shipped with LLaDA-8B-Instruct, sizes shrunk (keys and remote-code map kept).
LLADA_CONFIG = {
    "activation_type": "silu", "alibi": False, "alibi_bias_max": 8.0, "architectures": ["LLaDAModelLM"],
    "attention_dropout": 0.0, "attention_layer_norm": False, "attention_layer_norm_with_affine": True,
    "auto_map": {"AutoConfig": "configuration_llada.LLaDAConfig", "AutoModel": "modeling_llada.LLaDAModelLM",
                 "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM"},
    "bias_for_layer_norm": False, "block_group_size": 1, "block_type": "llama", "d_model": D,
    "embedding_dropout": 0.0, "embedding_size": V, "eos_token_id": EOS, "flash_attention": False,
    "include_bias": False, "include_qkv_bias": False, "init_cutoff_factor": None, "init_device": "meta",
    "init_fn": "mitchell", "init_std": 0.02, "input_emb_norm": False, "layer_norm_type": "rms",
    "layer_norm_with_affine": True, "mask_token_id": MASK, "max_sequence_length": 4096,
    "mlp_hidden_size": MLP, "mlp_ratio": 4, "model_type": "llada", "multi_query_attention": None,
    "n_heads": H, "n_kv_heads": KV, "n_layers": LAYERS, "pad_token_id": EOS, "precision": "amp_bf16",
    "residual_dropout": 0.0, "rms_norm_eps": 1e-05, "rope": True, "rope_full_precision": True,
    "rope_theta": 500000.0, "scale_logits": False, "transformers_version": "4.46.3", "use_cache": False,
    "vocab_size": V, "weight_tying": False,
}


def llada_weights(seed=0):
    """Random tensors under LLaDA's own parameter names and shapes."""
    g = torch.Generator().manual_seed(seed)
    hd = D // H

    def rnd(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    w = {"model.transformer.wte.weight": rnd(V, D, scale=1.0), "model.transformer.ln_f.weight": 1 + rnd(D),
         "model.transformer.ff_out.weight": rnd(V, D)}
    for i in range(LAYERS):
        p = f"model.transformer.blocks.{i}."
        w |= {p + "attn_norm.weight": 1 + rnd(D), p + "ff_norm.weight": 1 + rnd(D),
              p + "q_proj.weight": rnd(D, D), p + "k_proj.weight": rnd(KV * hd, D), p + "v_proj.weight": rnd(KV * hd, D),
              p + "attn_out.weight": rnd(D, D), p + "ff_proj.weight": rnd(MLP, D), p + "up_proj.weight": rnd(MLP, D),
              p + "ff_out.weight": rnd(D, MLP)}
    return w


def write_llada_dir(path, weights):
    """config.json + two safetensors shards + model.safetensors.index.json, as LLaDA ships them."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(LLADA_CONFIG))
    names = sorted(weights)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    for file, keys in shards.items():
        save_file({k: weights[k].contiguous() for k in keys}, str(path / file), metadata={"format": "pt"})
    index = {"metadata": {"total_size": sum(t.numel() * 4 for t in weights.values())},
             "weight_map": {k: f for f, ks in shards.items() for k in ks}}
    (path / "model.safetensors.index.json").write_text(json.dumps(index))
    return path


def reference_forward(w, ids, attention_mask=None):
    """LLaDA's forward written from llada-format.md with plain tensor ops."""
    B, T = ids.shape
    hd = D // H

    def rms(x, weight):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * weight

    def rope(x):  # x [B, h, T, hd]
        inv = 1.0 / (500000.0 ** (torch.arange(0, hd, 2).float() / hd))
        ang = torch.arange(T).float()[:, None] * inv[None, :]
        ang = torch.cat([ang, ang], -1)
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * ang.cos() + torch.cat([-x2, x1], -1) * ang.sin()

    x = w["model.transformer.wte.weight"][ids]
    bias = torch.zeros(B, 1, 1, T)
    if attention_mask is not None:
        bias = (1.0 - attention_mask.float())[:, None, None, :] * torch.finfo(torch.float32).min
    for i in range(LAYERS):
        p = f"model.transformer.blocks.{i}."
        h = rms(x, w[p + "attn_norm.weight"])
        q = (h @ w[p + "q_proj.weight"].T).view(B, T, H, hd).transpose(1, 2)
        k = (h @ w[p + "k_proj.weight"].T).view(B, T, KV, hd).transpose(1, 2).repeat_interleave(H // KV, 1)
        v = (h @ w[p + "v_proj.weight"].T).view(B, T, KV, hd).transpose(1, 2).repeat_interleave(H // KV, 1)
        att = torch.softmax(rope(q) @ rope(k).transpose(-1, -2) / hd ** 0.5 + bias, -1) @ v
        x = x + att.transpose(1, 2).reshape(B, T, D) @ w[p + "attn_out.weight"].T
        h = rms(x, w[p + "ff_norm.weight"])
        gate, up = h @ w[p + "ff_proj.weight"].T, h @ w[p + "up_proj.weight"].T
        x = x + (torch.nn.functional.silu(gate) * up) @ w[p + "ff_out.weight"].T
    return rms(x, w["model.transformer.ln_f.weight"]) @ w["model.transformer.ff_out.weight"].T


@pytest.fixture(scope="module")
def llada_dir(tmp_path_factory):
    weights = llada_weights()
    return write_llada_dir(tmp_path_factory.mktemp("llada") / "LLaDA-8B-Instruct-shrunk", weights), weights


def test_loads_llada_checkpoint_layout_without_remote_code(llada_dir):
    path, weights = llada_dir
    pred = load_mask_predictor(path, device="cpu")
    assert isinstance(pred.model, LLaDAModelLM)
    assert (pred.mask_id, pred.eos_id, pred.pad_id, pred.shift_logits) == (MASK, EOS, EOS, False)
    assert pred.model.dtype == torch.float32  # fp32 on CPU
    ids = torch.randint(0, V - 1, (3, 11), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(pred(ids), reference_forward(weights, ids), atol=1e-4, rtol=1e-4)


def test_left_padded_attention_mask_matches_reference(llada_dir):
    path, weights = llada_dir
    pred = load_mask_predictor(path, device="cpu")
    ids = torch.randint(0, V - 1, (2, 9), generator=torch.Generator().manual_seed(2))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[0, :4] = 0
    got = pred(ids, mask)
    torch.testing.assert_close(got, reference_forward(weights, ids, mask), atol=1e-4, rtol=1e-4)
    # padded keys are invisible: changing a padded token leaves every real position unchanged
    ids2 = ids.clone()
    ids2[0, :4] = (ids2[0, :4] + 7) % (V - 1)
    torch.testing.assert_close(pred(ids2, mask)[0, 4:], got[0, 4:], atol=1e-5, rtol=1e-5)


def test_save_pretrained_roundtrip_keeps_llada_parameter_names(llada_dir, tmp_path):
    path, weights = llada_dir
    model = load_mask_predictor(path, device="cpu").model
    model.save_pretrained(tmp_path / "copy")
    assert set(model.state_dict()) == set(weights)
    reloaded = LLaDAModelLM.from_pretrained(tmp_path / "copy")
    ids = torch.randint(0, V - 1, (2, 7))
    torch.testing.assert_close(reloaded(ids).logits, model(ids).logits, atol=0, rtol=0)


def test_peft_lora_save_and_reload_gives_identical_logits(tiny_dir, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model

    base = LLaDAModelLM.from_pretrained(tiny_dir)
    targets = r".*blocks\.\d+\.(q_proj|k_proj|v_proj|attn_out|ff_proj|up_proj|ff_out)"
    lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False))
    ids = torch.randint(0, 100, (2, 12))
    before = lora(input_ids=ids).logits
    with lora.disable_adapter():
        assert not torch.allclose(lora(input_ids=ids).logits, before)  # the adapter does something
    lora.save_pretrained(tmp_path / "adapter")
    fresh = PeftModel.from_pretrained(LLaDAModelLM.from_pretrained(tiny_dir), tmp_path / "adapter")
    torch.testing.assert_close(fresh(input_ids=ids).logits, before, atol=0, rtol=0)


@pytest.mark.parametrize("damage, needle", [
    (lambda p: (p / "model-00002-of-00002.safetensors").unlink(), "model-00002-of-00002.safetensors"),
    (lambda p: (p / "config.json").unlink(), "config.json"),
])
def test_missing_checkpoint_file_names_the_file(llada_dir, tmp_path, damage, needle):
    path = write_llada_dir(tmp_path / "ckpt", llada_dir[1])
    damage(path)
    with pytest.raises(FileNotFoundError, match=needle):
        load_mask_predictor(path, device="cpu")


def test_missing_directory_and_unsupported_variant_are_clear(tmp_path, llada_dir):
    with pytest.raises(FileNotFoundError, match="model directory not found"):
        load_mask_predictor(tmp_path / "nope", device="cpu")
    with pytest.raises(ValueError, match="config.alibi"):
        LLaDAModelLM(LLaDAConfig(**{**LLADA_CONFIG, "alibi": True}))


def test_missing_weight_is_an_error_not_a_silent_reinit(tmp_path, llada_dir):
    weights = dict(llada_dir[1])
    del weights["model.transformer.blocks.1.up_proj.weight"]
    with pytest.raises(ValueError, match="missing_keys"):
        load_mask_predictor(write_llada_dir(tmp_path / "ckpt", weights), device="cpu")


def test_pad_equal_to_mask_is_rejected():
    with pytest.raises(ValueError, match="pad_id"):
        MaskPredictor(model=torch.nn.Linear(1, 1), mask_id=5, pad_id=5)


def test_precision_policy():
    assert default_dtype(torch.device("cpu")) == torch.float32
    assert default_dtype(torch.device("cuda")) == torch.bfloat16
