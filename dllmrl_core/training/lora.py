"""LoRA through peft, and adapter tensors as plain state dicts (what travels between processes)."""

from __future__ import annotations

import hashlib
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from dllmrl_core.contract.configbase import ConfigModel

# Linear layers inside LLaDA blocks; the block-level ff_out is the down projection. The LM head is
# also called ff_out (transformer.ff_out), hence the block-scoped pattern.
LLADA_LINEARS = ("q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out")
# What d1 asked for (q,k,v,o,up,down,gate) that exists in LLaDA: only q, k, v and up get adapted.
D1_LLADA = ("q_proj", "k_proj", "v_proj", "up_proj")
# Llama/Qwen-style names (Dream and other remote-code models).
LLAMA_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LoraSettings(ConfigModel):
    """The LoRA adapter (peft); only the adapter is trained."""

    r: int = Field(128, ge=1, description="LoRA rank (d1: 128, AGRPO: 64)")
    alpha: float = Field(64, gt=0, description="LoRA alpha (d1: 64)")
    dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout (d1: 0.05)")
    targets: Literal["all", "d1_compatible"] | list[str] = Field(
        "all", description="all block linears, d1_compatible = q,k,v,up (what d1 adapted), or module names")


def target_modules(model: nn.Module, targets: Literal["all", "d1_compatible"] | list[str]) -> str | list[str]:
    """A peft target spec for the model's architecture."""
    if isinstance(targets, list):
        return targets
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    if "attn_out" in names:  # LLaDA naming
        chosen = LLADA_LINEARS if targets == "all" else D1_LLADA
        return rf".*blocks\.\d+\.({'|'.join(chosen)})"
    chosen = LLAMA_LINEARS if targets == "all" else ("q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj",
                                                      "gate_proj")
    return [n for n in chosen if n in names]


def add_lora(model: nn.Module, settings: LoraSettings) -> nn.Module:
    """Wrap `model` in a PeftModel; only the adapter is trainable (B = 0 at start: output unchanged)."""
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                     target_modules=target_modules(model, settings.targets))
    return get_peft_model(model, cfg)


def adapter_params(model: nn.Module) -> dict[str, torch.Tensor]:
    """peft's saved adapter names -> the live tensors behind them. peft's own state-dict walk takes
    milliseconds per call, on the path of every weight publish and pull, so the mapping (tensors
    matched by storage) is built once per model and kept on it."""
    cached = model.__dict__.get("_adapter_params")
    if cached is None:
        from peft import get_peft_model_state_dict

        live = {t.data_ptr(): t for t in [*model.parameters(), *model.buffers()]}
        cached = {k: live.get(v.data_ptr(), v) for k, v in get_peft_model_state_dict(model).items()}
        model.__dict__["_adapter_params"] = cached
    return cached


def adapter_state(model: nn.Module, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The adapter tensors (names as peft saves them), detached copies on CPU; cast to `dtype`
    (on the model's device, before the copy) when given."""
    return {k: v.detach().to(dtype or v.dtype).to("cpu", copy=True) for k, v in adapter_params(model).items()}


def load_adapter_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy `state` (as `adapter_state` returns it) into the model's adapter in place."""
    params = adapter_params(model)
    unexpected = sorted(set(state) - set(params))
    if unexpected:
        raise ValueError(f"adapter state does not fit this model: unexpected {unexpected[:3]}")
    with torch.no_grad():
        for k, v in state.items():
            if params[k].shape != v.shape:
                raise ValueError(f"adapter state does not fit this model: {k} has shape {tuple(v.shape)}, "
                                 f"expected {tuple(params[k].shape)}")
            params[k].copy_(v)


def adapter_digest(state: dict[str, torch.Tensor]) -> tuple[str, float]:
    """(sha256 over names and fp32 bytes, L2 norm over all tensors): compares runs bit for bit."""
    h = hashlib.sha256()
    total = 0.0
    for name in sorted(state):
        t = state[name].detach().to(torch.float32).contiguous().cpu()
        h.update(name.encode())
        h.update(t.numpy().tobytes())
        total += float(t.double().pow(2).sum())
    return h.hexdigest(), total ** 0.5
