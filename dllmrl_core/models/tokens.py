"""The special token ids the rest of the code needs, always read from the model (never literals)."""

from __future__ import annotations

from dataclasses import dataclass

from dllmrl_core.models.predictor import MaskPredictor


@dataclass
class SpecialTokens:
    """Token ids objectives need (taken from the model/tokenizer, never literals)."""

    mask_id: int
    eos_id: int | None
    stop_ids: tuple[int, ...]


def special_tokens(policy: MaskPredictor) -> SpecialTokens:
    return SpecialTokens(mask_id=policy.mask_id, eos_id=policy.eos_id, stop_ids=policy.stop_ids)
