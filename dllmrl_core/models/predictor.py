"""The one small interface every sampler, estimator and learner talks to.

A mask predictor maps token ids (+ an optional key-padding attention mask) to per-position
logits over the vocabulary. Special token ids travel with it (never hard-coded elsewhere), and
so does the quirk of Dream-style models, whose logits are shifted by one position because they
keep the next-token head of the autoregressive model they were initialised from.

Precision is part of the predictor: every forward runs under `autocast()`, bf16 autocast on CUDA
and full precision elsewhere, so the sampler and the learner compute the same numbers (LoRA
included: PEFT keeps adapters in fp32, autocast runs their matmuls in bf16 like the base's).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from dllmrl_core.models.llada import LLaDAModelLM, LogitsAt, select_positions


@dataclass
class MaskPredictor:
    """`predictor(ids [B, T], attention_mask [B, T] | None, logits_at=None) -> logits [B, T, V]`, or
    only at `logits_at` (a column slice -> [B, w, V], or a [B, T] bool mask -> [k, V] in row-major
    order); the native LLaDA module applies its head to those positions only, others select afterwards.

    model:         the torch module (native LLaDA, remote-code model, or a PEFT wrapper of either)
    mask_id:       id of the [MASK] token
    eos_id:        end-of-text id (LLaDA `<|endoftext|>`; the id `logits_eos_inf` forbids)
    eot_id:        end-of-turn id if the tokenizer has one (LLaDA `<|eot_id|>`), else None
    pad_id:        padding id used for left-padded prompts; must differ from mask_id
    shift_logits:  Dream convention: the logit for position i is produced at position i-1
    dream_inputs:  pass padding as Dream does (pairwise [B,1,T,T] mask + position ids)
    version:       weight version of the adapter currently loaded (stamped into RolloutBatch)
    gather_logits: apply the native head at `logits_at` only; False computes every position's
                   logits and selects afterwards (same values: the reference of the parity tests)
    """

    model: nn.Module
    mask_id: int
    eos_id: int | None = None
    eot_id: int | None = None
    pad_id: int | None = None
    shift_logits: bool = False
    dream_inputs: bool = False
    version: int = 0
    gather_logits: bool = True

    def __post_init__(self) -> None:
        if self.pad_id is not None and self.pad_id == self.mask_id:
            raise ValueError(
                f"pad_id ({self.pad_id}) equals mask_id: padded prompt positions would be generated; "
                "give the tokenizer a pad token other than the mask token"
            )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def stop_ids(self) -> tuple[int, ...]:
        """Ids that end a completion (EOS, and EoT when the tokenizer has one)."""
        return tuple(i for i in (self.eos_id, self.eot_id) if i is not None)

    @property
    def base_model(self) -> nn.Module:
        """The model under its DDP and PEFT wrappers (where the LoRA layers live)."""
        return base_module(self.model)

    @property
    def native(self) -> bool:
        """True for the native LLaDA module (KV cache, head applied at `logits_at` only)."""
        return isinstance(self.base_model, LLaDAModelLM)

    @property
    def gathers(self) -> bool:
        """The model can return final hidden states at chosen positions (`hidden`, `head_params`)."""
        return self.gather_logits and self.native and not self.shift_logits

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, at: torch.Tensor) -> torch.Tensor:
        """[k, d] final-norm hidden states at the True positions of `at` [B, T] (native LLaDA only)."""
        if attention_mask is not None and bool(attention_mask.all()):
            attention_mask = None
        with self.autocast():
            return self.model(input_ids, attention_mask=attention_mask, logits_at=at, hidden=True).hidden_states

    @property
    def head_params(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(weight [V, d], bias) of the native LM head."""
        return self.base_model.model.head_params()

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The dtype every matmul runs in under `autocast()` (LoRA's included): bf16 on CUDA; None
        elsewhere (full precision: each tensor's own dtype)."""
        return torch.bfloat16 if self.device.type == "cuda" else None

    def autocast(self):
        """The dtype policy of every forward: bf16 autocast on CUDA, full precision elsewhere."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 logits_at: LogitsAt = None) -> torch.Tensor:
        if attention_mask is not None and bool(attention_mask.all()):
            attention_mask = None  # nothing padded: the unmasked fast path, same result
        with self.autocast():
            if self.gathers:
                out = self.model(input_ids, attention_mask=attention_mask, logits_at=logits_at)
                return out.logits
            if self.dream_inputs:
                out = self.model(input_ids, **_dream_padding(attention_mask))
            else:
                out = self.model(input_ids, attention_mask=attention_mask)
        logits = out.logits if hasattr(out, "logits") else out[0]
        if self.shift_logits:  # position i's logit was produced at i-1; position 0 keeps its own
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
        return select_positions(logits, logits_at)


def base_module(model: nn.Module) -> nn.Module:
    """`model` without its DDP (`.module`) and PEFT (`get_base_model()`) wrappers."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def _dream_padding(attention_mask: torch.Tensor | None) -> dict:
    """Dream's convention (its `diffusion_generate`): "full" attention when nothing is padded,
    else a pairwise [B, 1, T, T] boolean mask and position ids that skip the padding (pads get 1)."""
    if attention_mask is None:
        return {"attention_mask": "full"}
    keep = attention_mask.bool()
    pairwise = keep[:, None, :, None] & keep[:, None, None, :]
    positions = (keep.long().cumsum(-1) - 1).masked_fill(~keep, 1)
    return {"attention_mask": pairwise, "position_ids": positions}
