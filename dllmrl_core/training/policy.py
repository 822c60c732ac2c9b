"""The policy: a mask predictor with a LoRA adapter, built from the `model` config section."""

from __future__ import annotations

import importlib.util
from typing import Literal

from pydantic import Field, field_validator

from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.models import MaskPredictor, load_mask_predictor, load_tokenizer
from dllmrl_core.models.loading import parse_device
from dllmrl_core.training.lora import LoraSettings, add_lora


class ModelConfig(ConfigModel):
    """The policy: base checkpoint (frozen) plus a trainable LoRA adapter."""

    path: str = Field("runs/tiny-base", description="checkpoint directory or hub name")
    device: str | None = Field(None, description="cpu / cuda / cuda:1 (default: cuda if available)")
    native: bool | None = Field(None, description="native LLaDA module (None: for LLaDA checkpoints)")
    adapter: str | None = Field(None, description="start from this saved PEFT adapter directory")
    quantize: Literal["nf4"] | None = Field(
        None, description="nf4: load the frozen base 4-bit NormalFloat as d1 does (needs the nf4 extra: bitsandbytes)")
    trust_remote_code: bool = Field(
        False, description="run the Python code a checkpoint ships (its auto_map) to load a model other than the "
                           "built-in ones; LLaDA (native module, no remote code) and Dream (its modeling and tokenizer "
                           "code, loaded and repaired by models/dream.py) load without it")
    lora: LoraSettings = LoraSettings()

    @field_validator("device")
    @classmethod
    def _a_torch_device(cls, value: str | None) -> str | None:
        if value is not None:
            parse_device(value)  # syntax only: whether this machine has it is known where the model loads
        return value

    @field_validator("quantize")
    @classmethod
    def _bitsandbytes_installed(cls, value: str | None) -> str | None:
        if value is not None and importlib.util.find_spec("bitsandbytes") is None:
            raise ValueError("nf4 needs bitsandbytes: pip install -e '.[nf4]'")
        return value


def load_policy(cfg: ModelConfig, device: str | None = None):
    """(policy with a trainable LoRA adapter, tokenizer). Base weights are frozen."""
    tokenizer = load_tokenizer(cfg.path, trust_remote_code=cfg.trust_remote_code)
    base = load_mask_predictor(cfg.path, device=device or cfg.device, native=cfg.native, tokenizer=tokenizer,
                               quantize=cfg.quantize, trust_remote_code=cfg.trust_remote_code)
    if cfg.adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(base.model, cfg.adapter, is_trainable=True)
    else:
        model = add_lora(base.model, cfg.lora)
    policy = MaskPredictor(model=model, mask_id=base.mask_id, eos_id=base.eos_id, eot_id=base.eot_id,
                           pad_id=base.pad_id, shift_logits=base.shift_logits, dream_inputs=base.dream_inputs)
    return policy, tokenizer
