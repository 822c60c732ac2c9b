"""Adapter tensors in and out of a peft model: the fast path matches peft's own state-dict walk."""

import pytest
import torch

from dllmrl_core.training.lora import LoraSettings, adapter_state, add_lora, load_adapter_state


@pytest.fixture()
def model(tiny_dir):
    from dllmrl_core.models import load_mask_predictor

    return add_lora(load_mask_predictor(tiny_dir, device="cpu").model, LoraSettings(r=4, alpha=8, dropout=0.0))


def test_adapter_state_has_peft_names_and_is_a_copy(model):
    from peft import get_peft_model_state_dict

    reference = get_peft_model_state_dict(model)
    state = adapter_state(model)
    assert state.keys() == reference.keys()
    assert all(torch.equal(state[k], reference[k]) for k in state)
    key = next(iter(state))
    state[key].add_(1.0)  # a copy: changing it leaves the model alone
    assert not torch.equal(state[key], get_peft_model_state_dict(model)[key])


def test_load_adapter_state_writes_what_peft_then_reads(model):
    from peft import get_peft_model_state_dict

    new = {k: torch.randn_like(v) for k, v in adapter_state(model).items()}
    load_adapter_state(model, new)
    after = get_peft_model_state_dict(model)
    assert all(torch.equal(after[k], new[k]) for k in new)
    assert all(torch.equal(adapter_state(model)[k], new[k]) for k in new)


def test_load_adapter_state_rejects_a_foreign_adapter(model):
    state = adapter_state(model)
    with pytest.raises(ValueError, match="unexpected"):
        load_adapter_state(model, {**state, "base_model.model.nope.lora_A.weight": torch.zeros(1)})
    key = next(iter(state))
    with pytest.raises(ValueError, match=f"{key} has shape"):
        load_adapter_state(model, {**state, key: torch.zeros(3, 3)})
