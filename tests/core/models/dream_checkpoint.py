"""A tiny checkpoint in Dream's hub layout, and Dream's forward pass computed by hand.

The layout is Dream-org/Dream-v0-Instruct-7B's with the sizes shrunk: config.json (Dream's keys,
`auto_map` to the checkpoint's own code, rope_theta 1e6, no rope_scaling), generation_config.json,
model.safetensors under Dream's parameter names, tokenizer_config.json (`auto_map` to its own slow
tokenizer, Dream's special tokens, ChatML turns ending in `<|im_end|>`) + vocab.json. The code is
`dream_code/`, dllmrl's own minimal stand-in for Dream's files (their docstrings say what they keep):
Dream's files are not vendored.
"""

import json
import shutil
import string
from pathlib import Path

import torch
from safetensors.torch import save_file

D, H, KV, LAYERS, MLP = 32, 4, 2, 2, 48
HEAD_DIM = D // H
THETA = 1_000_000.0
CHARS = string.digits + string.ascii_letters + string.punctuation + " \n\t"
# Added tokens after the base vocabulary, as Dream's sit after Qwen's BPE ids.
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|beginoftext|>", "<|mask|>"]
EOS, IM_START, IM_END, BOS, MASK = range(len(CHARS), len(CHARS) + len(SPECIALS))
V = len(CHARS) + len(SPECIALS) + 2  # the head is wider than the tokenizer, as Dream's (152064 > 151667)
CODE = Path(__file__).parent / "dream_code"

CONFIG = {
    "architectures": ["DreamModel"], "attention_dropout": 0.0,
    "auto_map": {"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"},
    "bos_token_id": EOS, "eos_token_id": EOS, "hidden_act": "silu", "hidden_size": D, "initializer_range": 0.02,
    "intermediate_size": MLP, "mask_token_id": MASK, "max_position_embeddings": 131072, "max_window_layers": 28,
    "model_type": "Dream", "num_attention_heads": H, "num_hidden_layers": LAYERS, "num_key_value_heads": KV,
    "pad_token_id": EOS, "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": THETA, "sliding_window": None,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.46.2", "use_cache": False,
    "use_sliding_window": False, "vocab_size": V,
}
GENERATION_CONFIG = {"bos_token_id": EOS, "eos_token_id": EOS, "pad_token_id": EOS, "mask_token_id": MASK,
                     "transformers_version": "4.46.2"}
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
TOKENIZER_CONFIG = {
    "added_tokens_decoder": {str(EOS + i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                            "single_word": False, "special": True} for i, t in enumerate(SPECIALS)},
    "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
    "auto_map": {"AutoTokenizer": ["tokenization_dream.DreamTokenizer", None]},
    "bos_token": "<|beginoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
    "unk_token": "<|endoftext|>", "mask_token": "<|mask|>", "chat_template": CHAT_TEMPLATE,
    "clean_up_tokenization_spaces": False, "model_max_length": 131072, "tokenizer_class": "DreamTokenizer",
}


def dream_weights(seed=0):
    """Random tensors under Dream's parameter names and shapes (q/k/v with bias, o_proj without)."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    w = {"model.embed_tokens.weight": rnd(V, D, scale=1.0), "model.norm.weight": 1 + rnd(D),
         "lm_head.weight": rnd(V, D)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        w |= {p + "input_layernorm.weight": 1 + rnd(D), p + "post_attention_layernorm.weight": 1 + rnd(D),
              p + "self_attn.q_proj.weight": rnd(D, D), p + "self_attn.q_proj.bias": rnd(D),
              p + "self_attn.k_proj.weight": rnd(KV * HEAD_DIM, D), p + "self_attn.k_proj.bias": rnd(KV * HEAD_DIM),
              p + "self_attn.v_proj.weight": rnd(KV * HEAD_DIM, D), p + "self_attn.v_proj.bias": rnd(KV * HEAD_DIM),
              p + "self_attn.o_proj.weight": rnd(D, D), p + "mlp.gate_proj.weight": rnd(MLP, D),
              p + "mlp.up_proj.weight": rnd(MLP, D), p + "mlp.down_proj.weight": rnd(D, MLP)}
    return w


def write_dream_dir(path, weights):
    """The checkpoint directory (model, generation config, tokenizer, and the fixture's code)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(CONFIG))
    (path / "generation_config.json").write_text(json.dumps(GENERATION_CONFIG))
    save_file(weights, str(path / "model.safetensors"))
    (path / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG))
    (path / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(CHARS)}))
    for source in CODE.glob("*.py"):
        shutil.copy(source, path / source.name)
    return path


def rotary_frequencies():
    """inv_freq [HEAD_DIM / 2] as a freshly built Dream model has it: θ^(-2i/d)."""
    return 1.0 / THETA ** (torch.arange(0, HEAD_DIM, 2).float() / HEAD_DIM)


def reference_logits(w, ids, keep=None):
    """Dream's forward by hand [B, T, V], logits shifted right by one position as Dream's
    diffusion_generate shifts them. keep [B, T] bool (None = nothing padded): Dream's padding, a
    pairwise mask and position ids that count real tokens only (pads get 1). Rows of padded query
    positions are not meaningful (nothing may attend to them)."""
    B, T = ids.shape
    if keep is None:
        keep = torch.ones(B, T, dtype=torch.bool)
    positions = (keep.long().cumsum(-1) - 1).masked_fill(~keep, 1)                    # [B, T]
    angles = positions[..., None].float() * rotary_frequencies()                       # [B, T, d/2]
    cos, sin = torch.cat([angles.cos()] * 2, -1)[:, None], torch.cat([angles.sin()] * 2, -1)[:, None]
    pair = keep[:, None, :, None] & keep[:, None, None, :]                              # [B, 1, T, T]

    def rms(x, weight):
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))

    def heads(x, n):
        return x.view(B, T, n, HEAD_DIM).transpose(1, 2)

    def rope(x):
        half = HEAD_DIM // 2
        return x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin

    h = w["model.embed_tokens.weight"][ids]
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        x = rms(h, w[p + "input_layernorm.weight"])
        q, k, v = (x @ w[f"{p}self_attn.{n}_proj.weight"].T + w[f"{p}self_attn.{n}_proj.bias"] for n in "qkv")
        q, k, v = rope(heads(q, H)), rope(heads(k, KV)), heads(v, KV)
        k, v = k.repeat_interleave(H // KV, dim=1), v.repeat_interleave(H // KV, dim=1)
        scores = (q @ k.transpose(-1, -2) / HEAD_DIM ** 0.5).masked_fill(~pair, float("-inf"))
        attn = torch.nan_to_num(scores.softmax(-1)) @ v                                   # pad rows: all -inf
        h = h + attn.transpose(1, 2).reshape(B, T, D) @ w[p + "self_attn.o_proj.weight"].T
        x = rms(h, w[p + "post_attention_layernorm.weight"])
        gate, up = x @ w[p + "mlp.gate_proj.weight"].T, x @ w[p + "mlp.up_proj.weight"].T
        h = h + (torch.nn.functional.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
    logits = rms(h, w["model.norm.weight"]) @ w["lm_head.weight"].T
    return torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
