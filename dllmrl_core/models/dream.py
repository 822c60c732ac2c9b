"""Dream-7B under the pinned transformers: the repairs its own modeling code needs at load time.

Dream (Dream-org/Dream-v0-{Base,Instruct}-7B) ships its modeling, generation and tokenizer code with
the weights (`modeling_dream.py`, `generation_utils.py`, `tokenization_dream.py`, reached through
`auto_map` with trust_remote_code; read here in the copy ZHZisZZ/dllm vendors). That code was written
for transformers 4.46; under 5.x it fails in three places, each repaired here without touching the
checkpoint's files:

1. `DreamRotaryEmbedding.__init__` takes its init function from `ROPE_INIT_FUNCTIONS["default"]`;
   transformers 5 dropped that entry (each model now carries its own default), so building the model
   raises `KeyError: 'default'`. Repair: the name `ROPE_INIT_FUNCTIONS` inside Dream's module is
   rebound to a copy with "default" added: transformers 4.46's default RoPE, inv_freq_i = θ^(-2i/d)
   with attention scaling 1 (`default_rope_parameters`). transformers' own dict is not changed.
2. transformers 5 builds the model on the meta device, then materialises the non-persistent buffers
   *empty* and relies on `_init_weights` to fill them (its generic `_init_weights` recognises rotary
   modules). Dream overrides `_init_weights` (Linear and Embedding only), so every rotary `inv_freq`
   keeps whatever memory it was given: logits off by up to 7, and different in every process.
   Repair: after loading, every rotary module recomputes its `inv_freq` with its own init function
   (what Dream's `reset_rope_parameters` does).
3. `DreamGenerationConfig.validate(self, is_init=False)` rejects the `user_set_attributes` keyword that
   transformers 5's `GenerationConfig.update` passes, so Dream's `from_pretrained` (which re-reads
   generation_config.json as a DreamGenerationConfig) and its `diffusion_generate` fail with a
   TypeError. Repair: `validate` accepts and ignores extra keywords (it checks nothing either way).

Dream's conventions the rest of the project follows (`MaskPredictor.shift_logits` / `dream_inputs`,
`sampling/dream.py`): logits shifted right by one position, padding passed as a pairwise mask with
position ids that skip it, end of turn `<|im_end|>`.
"""

from __future__ import annotations

import functools
import inspect
import sys
from types import ModuleType
from typing import Any

import torch
from torch import nn

MODEL_TYPE = "dream"  # config.json's model_type ("Dream"), lower-cased


def default_rope_parameters(config: Any, device: torch.device | str | None = None, seq_len: int | None = None,
                            **rope_kwargs: Any) -> tuple[torch.Tensor, float]:
    """transformers 4.46's `_compute_default_rope_parameters` (what Dream's code expects under "default"):
    inv_freq [d/2] fp32 with inv_freq_i = θ^(-2i/d), d = head_dim (× partial_rotary_factor), and
    attention scaling 1. Called as Dream calls it, `(config, device)`, or with the legacy keywords
    `base` / `dim` when Dream builds a rotary module without a config."""
    if config is None:
        base, dim = rope_kwargs["base"], int(rope_kwargs["dim"])
    else:
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        base, dim = config.rope_theta, int(head_dim * getattr(config, "partial_rotary_factor", 1.0))
    exponents = torch.arange(0, dim, 2, dtype=torch.int64).to(device=device, dtype=torch.float) / dim
    return 1.0 / (base ** exponents), 1.0


def repair_module(module: ModuleType) -> None:
    """Repairs 1 and 3 in a Dream modeling module (idempotent)."""
    table = getattr(module, "ROPE_INIT_FUNCTIONS", None)
    if table is not None and "default" not in table:
        module.ROPE_INIT_FUNCTIONS = {**table, "default": default_rope_parameters}
    from transformers import GenerationConfig

    for value in list(vars(module).values()):
        if isinstance(value, type) and issubclass(value, GenerationConfig) and value is not GenerationConfig:
            value.validate = tolerant_validate(value.validate)


def tolerant_validate(validate):
    """`validate` accepting the keywords transformers 5 passes (dropped when the original lacks them)."""
    params = inspect.signature(validate).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return validate
    known = {p.name for p in params}

    @functools.wraps(validate)
    def wrapper(self, *args, **kwargs):
        return validate(self, *args, **{k: v for k, v in kwargs.items() if k in known})

    return wrapper


def reset_rotary(model: nn.Module) -> int:
    """Repair 2: recompute every rotary module's `inv_freq` (and `attention_scaling`) with its own init
    function, on the buffer's device, in fp32 as Dream computes it. Returns the number of modules."""
    count = 0
    for module in model.modules():
        if not (hasattr(module, "rope_init_fn") and isinstance(getattr(module, "inv_freq", None), torch.Tensor)):
            continue
        inv_freq, module.attention_scaling = module.rope_init_fn(module.config, module.inv_freq.device,
                                                                  **getattr(module, "rope_kwargs", {}))
        module.register_buffer("inv_freq", inv_freq, persistent=False)
        module.original_inv_freq = module.inv_freq
        count += 1
    return count


def load_dream(source: str, raw: dict[str, Any], **kwargs: Any) -> nn.Module:
    """Dream's own model class (config.json `auto_map["AutoModel"]`, trust_remote_code) loaded from `source`
    with the three repairs; `kwargs` go to `from_pretrained` (dtype, quantization)."""
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    reference = raw.get("auto_map", {}).get("AutoModel")
    if reference is None:
        raise ValueError(f"{source}: a Dream checkpoint needs auto_map.AutoModel in config.json (its modeling code)")
    cls = get_class_from_dynamic_module(reference, source)
    repair_module(sys.modules[cls.__module__])
    model = cls.from_pretrained(source, trust_remote_code=True, **kwargs)
    reset_rotary(model)
    return model
