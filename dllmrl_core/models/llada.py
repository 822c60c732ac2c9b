"""Native LLaDA-architecture mask predictor (block_type "llama"), loadable without remote code.

Module names, config keys and on-disk parameter names follow the released LLaDA-8B checkpoints
(`model.transformer.blocks.{i}.q_proj.weight`, ...), so a real LLaDA-8B-Instruct directory loads
with `LLaDAModelLM.from_pretrained(dir)` and PEFT LoRA targets the same names as for LLaDA's own
code. Forward pass, as in LLaDA's released `modeling_llada.py` (GSAI-ML/LLaDA-8B-Instruct; arXiv 2502.09992):

    x = wte(ids)
    per block (pre-norm):  x += attn_out(SDPA(RoPE(q_proj(h)), RoPE(k_proj(h)), v_proj(h))),  h = attn_norm(x)
                           x += ff_out(silu(ff_proj(h)) * up_proj(h)),                         h = ff_norm(x)
    logits = ff_out(ln_f(x))            # untied LM head ([B, T, embedding_size])

Attention is bidirectional; an attention mask only hides padded *keys*. RoPE uses the absolute
positions 0..T-1 of the input (left padding is not skipped), exactly like LLaDA.

KV cache (Fast-dLLM, arXiv 2505.22618): `LLaDAModel.forward_span` runs only the tokens of a span
[start, start+n) of the sequence, at their absolute positions, against the cached keys/values of
the other positions (`KVCache`), and returns the span's fresh keys/values. Because attention is
bidirectional, cached K/V of layers >= 1 go stale once other tokens change: the cache is an
approximation except in the first layer (see sampling/cached.py).

Memory (docs/gpu.md, Memory): `logits_at` applies ln_f and the LM head only to the positions a
caller needs (a column slice or a boolean mask), so the [B, T, 126464] logits of LLaDA-8B are never
built when a learner scores a few targets or a sampler commits one block; RMSNorm and the head act
per position, so the selected rows equal those of the full output. `set_activation_checkpointing`
recomputes each block in the backward pass (torch.utils.checkpoint, non-reentrant) instead of
keeping its activations; it works through PEFT wrappers, as LoRA layers live inside the blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput

# (config key, value LLaDA's "llama" block requires) — anything else would need code we don't have.
_REQUIRED = {
    "block_type": "llama",
    "layer_norm_type": "rms",
    "activation_type": "silu",
    "alibi": False,
    "rope": True,
    "scale_logits": False,
    "input_emb_norm": False,
    "attention_layer_norm": False,
    "clip_qkv": None,
    "multi_query_attention": None,
    "block_group_size": 1,
}


class LLaDAConfig(PreTrainedConfig):
    """LLaDA's config.json keys (the subset that shapes the forward pass; others are kept as-is)."""

    model_type = "llada"

    def __init__(
        self,
        d_model: int = 4096,
        n_heads: int = 32,
        n_kv_heads: int | None = None,
        n_layers: int = 32,
        mlp_hidden_size: int = 12288,
        vocab_size: int = 126464,
        embedding_size: int | None = 126464,
        max_sequence_length: int = 4096,
        rope_theta: float = 500000.0,
        rms_norm_eps: float = 1e-5,
        include_bias: bool = False,
        include_qkv_bias: bool = False,
        weight_tying: bool = False,
        mask_token_id: int = 126336,
        eos_token_id: int | None = 126081,
        pad_token_id: int | None = 126081,
        **kwargs,
    ):
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads if n_kv_heads is not None else n_heads
        self.n_layers = n_layers
        self.mlp_hidden_size = mlp_hidden_size
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size or vocab_size
        self.max_sequence_length = max_sequence_length
        self.rope_theta = rope_theta
        self.rms_norm_eps = rms_norm_eps
        self.include_bias = include_bias
        self.include_qkv_bias = include_qkv_bias
        self.weight_tying = weight_tying
        self.mask_token_id = mask_token_id
        kwargs.setdefault("use_cache", False)
        kwargs.setdefault("tie_word_embeddings", weight_tying)
        super().__init__(eos_token_id=eos_token_id, pad_token_id=pad_token_id, **kwargs)

    def check_supported(self) -> None:
        """Raise one clear error if this config asks for a LLaDA variant the native module lacks."""
        for key, want in _REQUIRED.items():
            got = getattr(self, key, want)
            if key == "multi_query_attention" and not got:
                continue
            if got != want:
                raise ValueError(
                    f"config.{key}={got!r} is not supported by the native LLaDA module (needs {want!r}); "
                    "load this checkpoint with native=False (its own modeling code)"
                )
        if self.d_model % self.n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"config: d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads}) "
                f"and n_heads by n_kv_heads ({self.n_kv_heads})"
            )


class RMSNorm(nn.Module):
    """x * rsqrt(mean(x^2) + eps) in fp32, cast back to the input dtype, then times weight."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return h.to(x.dtype) * self.weight


def rope_cos_sin(seq_len: int, head_dim: int, theta: float, device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [T, head_dim] in fp32 for absolute positions 0..T-1 ("rotate half" layout)."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, device=device, dtype=torch.float32), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, H, T, D]; rotation in fp32 (LLaDA's rope_full_precision), result in x's dtype."""
    h = x.float()
    first, second = h.chunk(2, dim=-1)
    rotated = torch.cat([-second, first], dim=-1)
    return (h * cos + rotated * sin).to(x.dtype)


@dataclass
class KVCache:
    """Keys (after RoPE) and values of positions 0..T_c-1, one [B, n_kv_heads, T_c, head_dim] pair per
    layer, computed by the weights at `weights_version` (Fast-dLLM's prefix / dual cache, arXiv 2505.22618).

    A cache never outlives a weight update: `check` refuses any other version. A span forward against
    a cache that covers the span writes the span's fresh keys/values into it (`splice`).
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    weights_version: int

    @property
    def length(self) -> int:
        return self.keys[0].shape[2]

    def prefix(self, n: int) -> KVCache:
        """The first n positions (views, no copy)."""
        return KVCache([k[:, :, :n] for k in self.keys], [v[:, :, :n] for v in self.values], self.weights_version)

    def check(self, weights_version: int) -> None:
        if weights_version != self.weights_version:
            raise ValueError(f"KV cache built at weights version {self.weights_version} used at version "
                             f"{weights_version}: caches never survive a weight update, rebuild it")


def splice(cached: torch.Tensor, fresh: torch.Tensor, start: int) -> torch.Tensor:
    """[B, h, T, D]: cached positions before `start`, the fresh span, cached positions after it.
    A cache that covers the span (dual cache) takes the fresh keys/values in place, as Fast-dLLM's
    does, instead of being copied around them; a shorter one (prefix cache) is concatenated."""
    end = start + fresh.shape[2]
    if cached.shape[2] < end:
        return torch.cat([cached[:, :, :start], fresh], dim=2)
    cached[:, :, start:end] = fresh
    return cached


class LLaDABlock(nn.Module):
    """One pre-norm "llama" block with LLaDA's parameter names."""

    def __init__(self, cfg: LLaDAConfig):
        super().__init__()
        d, hd = cfg.d_model, cfg.d_model // cfg.n_heads
        qkv_bias = cfg.include_bias or cfg.include_qkv_bias
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, hd
        self.attn_norm = RMSNorm(d, cfg.rms_norm_eps)
        self.ff_norm = RMSNorm(d, cfg.rms_norm_eps)
        self.q_proj = nn.Linear(d, d, bias=qkv_bias)
        self.k_proj = nn.Linear(d, cfg.n_kv_heads * hd, bias=qkv_bias)
        self.v_proj = nn.Linear(d, cfg.n_kv_heads * hd, bias=qkv_bias)
        self.attn_out = nn.Linear(d, d, bias=cfg.include_bias)
        self.ff_proj = nn.Linear(d, cfg.mlp_hidden_size, bias=cfg.include_bias)  # gated branch
        self.up_proj = nn.Linear(d, cfg.mlp_hidden_size, bias=cfg.include_bias)  # linear branch
        self.ff_out = nn.Linear(cfg.mlp_hidden_size, d, bias=cfg.include_bias)

    def forward(self, x, cos, sin, attn_bias, past=None, start=0):
        """x [B, T, d] -> (x, k, v); k, v [B, n_kv_heads, T, head_dim] are this input's own keys/values.
        past: (keys, values) of other positions; the input then sits at positions start..start+T-1."""
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = self.q_proj(h).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        fresh = k, v
        if past is not None:
            k, v = splice(past[0], k, start), splice(past[1], v, start)
        if self.n_kv_heads != self.n_heads:  # grouped-query attention: repeat each kv head
            rep = self.n_heads // self.n_kv_heads
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias, is_causal=False)
        x = x + self.attn_out(att.transpose(1, 2).reshape(B, T, -1))
        h = self.ff_norm(x)
        return x + self.ff_out(F.silu(self.ff_proj(h)) * self.up_proj(h)), *fresh


LogitsAt = slice | torch.Tensor | None  # columns of every row, or a [B, n] bool mask; None = every position


def select_positions(x: torch.Tensor, logits_at: LogitsAt) -> torch.Tensor:
    """x [B, n, ...] at the chosen positions: [B, n, ...] (None), [B, w, ...] (slice), [k, ...] (mask,
    row-major order, as `x[mask]`)."""
    if logits_at is None:
        return x
    if isinstance(logits_at, slice):
        return x[:, logits_at]
    if logits_at.dtype != torch.bool or logits_at.shape != x.shape[:2]:
        raise ValueError(f"logits_at: a bool mask of shape {tuple(x.shape[:2])} or a slice, got "
                         f"{logits_at.dtype} {tuple(logits_at.shape)}")
    return x[logits_at]


class LLaDAModel(nn.Module):
    """Holds `transformer` (wte, blocks, ln_f, ff_out) so parameter names read `transformer.*`."""

    # Set by `set_activation_checkpointing` or transformers' `activation_checkpointing_enable()`.
    gradient_checkpointing = False

    def __init__(self, cfg: LLaDAConfig):
        super().__init__()
        self.cfg = cfg
        self._gradient_checkpointing_func = partial(checkpoint, use_reentrant=False)
        parts = dict(
            wte=nn.Embedding(cfg.embedding_size, cfg.d_model),
            blocks=nn.ModuleList(LLaDABlock(cfg) for _ in range(cfg.n_layers)),
            ln_f=RMSNorm(cfg.d_model, cfg.rms_norm_eps),
        )
        if not cfg.weight_tying:
            parts["ff_out"] = nn.Linear(cfg.d_model, cfg.embedding_size, bias=cfg.include_bias)
        self.transformer = nn.ModuleDict(parts)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                logits_at: LogitsAt = None, hidden: bool = False) -> torch.Tensor:
        return self.forward_span(input_ids, attention_mask, logits_at=logits_at, keep_kv=False, hidden=hidden)[0]

    def forward_span(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *, start: int = 0,
                     past: KVCache | None = None, logits_at: LogitsAt = None, keep_kv: bool = True,
                     hidden: bool = False) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """(logits [B, n, V] or at `logits_at` — with `hidden`, the final-norm hidden states there
        instead —, fresh per-layer (k, v) of the input, empty unless keep_kv) for `input_ids` [B, n].

        Without `past` the input is the whole sequence. With `past`, the input is the span of absolute
        positions start..start+n-1 (RoPE uses those positions) and attends to the cached keys/values
        spliced around it: past[:start] + span + past[start+n:] (Fast-dLLM prefix cache: past holds
        exactly the positions before `start`; dual cache: past covers the whole sequence).
        attention_mask [B, T] covers every key position of that spliced sequence.
        """
        t = self.transformer
        x = t["wte"](input_ids)
        B, n = input_ids.shape
        T = n if past is None else max(past.length, start + n)
        if past is not None and past.length < start:
            raise ValueError(f"forward_span: the cache holds {past.length} positions, the span starts at {start}")
        if attention_mask is not None and attention_mask.shape != (B, T):
            raise ValueError(f"forward_span: attention_mask {tuple(attention_mask.shape)} must cover {(B, T)} keys")
        cos, sin = rope_cos_sin(start + n, self.cfg.d_model // self.cfg.n_heads, self.cfg.rope_theta, x.device)
        cos, sin = cos[start:], sin[start:]
        attn_bias = None
        if attention_mask is not None and not bool(attention_mask.all()):
            # key padding only: [B, 1, 1, T] boolean, True = may attend
            attn_bias = attention_mask.bool()[:, None, None, :]
        recompute = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        fresh = []
        for i, block in enumerate(t["blocks"]):
            if recompute and past is None:  # keep only the block's input; rerun it in the backward pass
                x, k, v = self._gradient_checkpointing_func(block, x, cos, sin, attn_bias)
            else:
                x, k, v = block(x, cos, sin, attn_bias, None if past is None else (past.keys[i], past.values[i]),
                                start)
            if keep_kv:
                fresh.append((k, v))
        x = self.transformer["ln_f"](select_positions(x, logits_at))
        return (x if hidden else F.linear(x, *self.head_params())), fresh

    def head(self, x: torch.Tensor, logits_at: LogitsAt = None) -> torch.Tensor:
        """ln_f and the LM head of the final hidden states x [B, n, d], at `logits_at` only."""
        return F.linear(self.transformer["ln_f"](select_positions(x, logits_at)), *self.head_params())

    def head_params(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(weight [V, d], bias [V] | None) of the LM head (the embedding when tied)."""
        t = self.transformer
        return (t["ff_out"].weight, t["ff_out"].bias) if "ff_out" in t else (t["wte"].weight, None)


class LLaDAModelLM(PreTrainedModel):
    """`transformers` wrapper: save_pretrained / from_pretrained / PEFT work; returns `.logits`."""

    config_class = LLaDAConfig
    base_model_prefix = "model"
    _no_split_modules = ["LLaDABlock"]
    supports_gradient_checkpointing = True

    def __init__(self, config: LLaDAConfig):
        config.check_supported()
        super().__init__(config)
        self.model = LLaDAModel(config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        std = getattr(self.config, "init_std", 0.02)
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
        elif isinstance(module, RMSNorm):
            nn.init.ones_(module.weight)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.transformer["wte"]

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.transformer["wte"] = value

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                logits_at: LogitsAt = None, hidden: bool = False, **_) -> MaskedLMOutput:
        """`.logits` [B, T, V], or only at `logits_at` (see `select_positions`); with `hidden`, the
        final-norm hidden states there as `.hidden_states` instead (the head left to the caller)."""
        out = self.model(input_ids, attention_mask, logits_at, hidden)
        return MaskedLMOutput(hidden_states=out) if hidden else MaskedLMOutput(logits=out)


def set_activation_checkpointing(model: nn.Module, enabled: bool = True) -> int:
    """Switch per-block activation checkpointing of every native LLaDA module inside `model` (through
    PEFT and DDP wrappers); returns how many modules were switched (0: not a native LLaDA model)."""
    found = [m for m in model.modules() if isinstance(m, LLaDAModel)]
    for m in found:
        m.gradient_checkpointing = enabled
    return len(found)



# Every checkpoint this module saves (the tiny default, an SFT warm start, `dllmrl export --merged`)
# gets this file beside its weights and an `auto_map` in config.json, so it also opens without
# dllmrl: AutoModel.from_pretrained(dir, trust_remote_code=True). The file imports torch and
# transformers only, which is what remote code may rely on.
LLaDAConfig.register_for_auto_class()
LLaDAModelLM.register_for_auto_class("AutoModel")
