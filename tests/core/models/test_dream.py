"""Dream in its hub layout under the pinned transformers: the checkpoint's own code fails as it is,
loads with the load-time repairs (models/dream.py), and then gives Dream's logits and padding (checked
against the forward computed by hand from the weights); its tokenizer's own code and end of turn."""

import pytest
import torch
from transformers import AutoModel, AutoTokenizer
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from dllmrl_core.models import encode_prompts, load_mask_predictor, load_tokenizer
from tests.core.models.dream_checkpoint import (EOS, IM_END, LAYERS, MASK, dream_weights, reference_logits,
                                                rotary_frequencies, write_dream_dir)

PROMPTS = ["What is 2+3?", "x"]  # different lengths: the batch is left-padded


@pytest.fixture(scope="module")
def weights():
    return dream_weights(seed=0)


@pytest.fixture(scope="module")
def dream_dir(tmp_path_factory, weights):
    return write_dream_dir(tmp_path_factory.mktemp("dream"), weights)


@pytest.fixture(scope="module")
def dream_tokenizer(dream_dir):
    return load_tokenizer(dream_dir)  # no trust_remote_code argument: Dream's code is built in


@pytest.fixture(scope="module")
def dream(dream_dir, dream_tokenizer):
    return load_mask_predictor(dream_dir, device="cpu", tokenizer=dream_tokenizer)


@pytest.fixture(scope="module")
def sequences(dream_tokenizer):
    """Left-padded prompts followed by 6 masks [B, T], and their attention mask [B, T] bool."""
    ids, mask = encode_prompts(dream_tokenizer, PROMPTS)
    B = ids.shape[0]
    return (torch.cat([ids, ids.new_full((B, 6), MASK)], dim=1),
            torch.cat([mask, mask.new_ones(B, 6)], dim=1))


def test_the_checkpoints_own_code_fails_under_transformers_5(tmp_path, weights):
    """What the repairs are for (a fresh directory: its code module has never been repaired)."""
    assert "default" not in ROPE_INIT_FUNCTIONS
    with pytest.raises(KeyError, match="default"):
        AutoModel.from_pretrained(write_dream_dir(tmp_path / "fresh", weights), trust_remote_code=True)


def test_every_rotary_buffer_holds_freshly_computed_frequencies(dream):
    """transformers 5 leaves them empty (Dream's _init_weights skips them); the loader recomputes them."""
    rotary = [m for m in dream.model.modules() if hasattr(m, "rope_init_fn")]
    assert len(rotary) == 1 + LAYERS  # the model's, and one per attention layer (unused, as in Dream)
    for module in rotary:
        torch.testing.assert_close(module.inv_freq, rotary_frequencies(), rtol=0, atol=0)
        assert module.inv_freq.dtype == torch.float32 and module.attention_scaling == 1.0


def test_logits_equal_dreams_forward_by_hand(dream, weights, sequences):
    """Shifted logits, padded batch: positions whose logit comes from a real token (the others come from
    padding, which nothing attends to); unpadded: every position, Dream's 'full' attention."""
    x, keep = sequences
    source_real = torch.cat([keep[:, :1], keep[:, :-1]], dim=1)
    ours = dream(x, keep)
    torch.testing.assert_close(ours[source_real], reference_logits(weights, x, keep)[source_real],
                               rtol=1e-5, atol=1e-5)
    row = x[:1, keep[0].logical_not().sum():]  # the longest prompt: nothing to pad
    torch.testing.assert_close(dream(row), reference_logits(weights, row), rtol=1e-5, atol=1e-5)


def test_shifted_logits_and_padding_equal_dreams_own_call(dream, sequences):
    """The predictor calls Dream's model exactly as Dream's diffusion_generate does: pairwise mask,
    position ids counting real tokens (pads get 1), logits shifted right by one."""
    x, keep = sequences
    pairwise = keep[:, None, None, :] & keep[:, None, :, None]
    positions = (keep.long().cumsum(-1) - 1).masked_fill(~keep, 1)
    with torch.no_grad():
        raw = dream.model(x, pairwise, positions).logits
    assert torch.equal(dream(x, keep), torch.cat([raw[:, :1], raw[:, :-1]], dim=1))


def test_loading_twice_gives_the_same_logits(dream_dir, dream, sequences):
    """Uninitialised rotary buffers made every load (every process) give different logits."""
    again = load_mask_predictor(dream_dir, device="cpu")
    x, keep = sequences
    assert torch.equal(again(x, keep), dream(x, keep))


def test_dreams_generation_config_loads(dream):
    """Dream's from_pretrained re-reads generation_config.json as its own class, whose validate() takes
    no keyword transformers 5 passes; repaired, updating it works too (diffusion_generate does)."""
    config = dream.model.generation_config
    assert type(config).__name__ == "DreamGenerationConfig" and config.mask_token_id == MASK
    config.update(steps=3)
    assert config.steps == 3


def test_tokenizer_runs_its_own_code_and_turns_end_with_im_end(dream, dream_tokenizer):
    assert type(dream_tokenizer).__name__ == "DreamTokenizer" and dream_tokenizer.padding_side == "left"
    assert dream_tokenizer.mask_token_id == MASK == dream.mask_id
    assert dream.eos_id == EOS and dream.eot_id == IM_END and dream.stop_ids == (EOS, IM_END)
    assert dream.shift_logits and dream.dream_inputs
    with pytest.raises(ValueError, match="trust_remote_code"):  # it is code: transformers alone refuses it
        AutoTokenizer.from_pretrained(dream.model.name_or_path, trust_remote_code=False)
