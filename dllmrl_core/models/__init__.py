"""Mask predictors behind one interface (`MaskPredictor`) and their loaders."""

from dllmrl_core.models.loading import encode_prompts, load_mask_predictor, load_tokenizer
from dllmrl_core.models.predictor import MaskPredictor

__all__ = ["MaskPredictor", "encode_prompts", "load_mask_predictor", "load_tokenizer"]
