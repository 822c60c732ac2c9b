"""Checkpoints that bring their own modeling code load through AutoModel(trust_remote_code=True), and
only when the user opted in (model.trust_remote_code), Dream's built-in loader aside."""

import json

import pytest
import torch

from dllmrl_core.models import load_mask_predictor, load_tokenizer

CONFIG_CODE = '''
from transformers import PretrainedConfig

class ToyConfig(PretrainedConfig):
    model_type = "{model_type}"
    def __init__(self, vocab_size=16, **kwargs):
        self.vocab_size = vocab_size
        super().__init__(**kwargs)
'''

MODEL_CODE = '''
import torch
from transformers import PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput
from .configuration_toy import ToyConfig

class ToyModel(PreTrainedModel):
    """Logit peak at position i is the input token at i: makes any shift visible."""
    config_class = ToyConfig
    def __init__(self, config):
        super().__init__(config)
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.post_init()
    def _init_weights(self, module):
        pass
    def forward(self, input_ids, attention_mask=None, position_ids=None, **kwargs):
        self.seen = {"attention_mask": attention_mask, "position_ids": position_ids}
        logits = torch.nn.functional.one_hot(input_ids, self.config.vocab_size).float() * 10 * self.scale
        return MaskedLMOutput(logits=logits)
'''


def write_remote_dir(path, model_type):
    path.mkdir(parents=True)
    (path / "configuration_toy.py").write_text(CONFIG_CODE.format(model_type=model_type))
    (path / "modeling_toy.py").write_text(MODEL_CODE)
    config = {"model_type": model_type, "vocab_size": 16, "mask_token_id": 15, "eos_token_id": 2,
              "pad_token_id": 0, "architectures": ["ToyModel"],
              "auto_map": {"AutoConfig": "configuration_toy.ToyConfig", "AutoModel": "modeling_toy.ToyModel"}}
    (path / "config.json").write_text(json.dumps(config))
    from safetensors.torch import save_file
    save_file({"scale": torch.ones(())}, str(path / "model.safetensors"))
    return path


def test_dream_checkpoint_gets_shifted_logits_and_dream_padding(tmp_path):
    pred = load_mask_predictor(write_remote_dir(tmp_path / "dream", "Dream"), device="cpu")
    assert pred.shift_logits and pred.mask_id == 15 and pred.eos_id == 2
    ids = torch.tensor([[3, 4, 5, 6], [0, 7, 8, 9]])
    mask = torch.tensor([[1, 1, 1, 1], [0, 1, 1, 1]])
    logits = pred(ids, mask)
    # position i shows what the raw model put at i-1; position 0 keeps its own
    assert logits.argmax(-1).tolist() == [[3, 3, 4, 5], [0, 0, 7, 8]]
    seen = pred.model.seen
    assert seen["attention_mask"].shape == (2, 1, 4, 4)
    assert not seen["attention_mask"][1, 0, 0].any() and seen["attention_mask"][1, 0, 1, 1:].all()
    assert seen["position_ids"].tolist() == [[0, 1, 2, 3], [1, 0, 1, 2]]  # padding skipped (pads get 1)
    pred(ids)
    assert pred.model.seen["attention_mask"] == "full"


def test_llada_with_its_own_code_when_native_is_off(tmp_path):
    pred = load_mask_predictor(write_remote_dir(tmp_path / "llada", "llada"), device="cpu", native=False,
                               trust_remote_code=True)
    assert type(pred.model).__name__ == "ToyModel" and not pred.shift_logits
    ids = torch.tensor([[3, 4, 5]])
    assert pred(ids).argmax(-1).tolist() == [[3, 4, 5]]


def test_unknown_hub_name_offline_fails_with_one_clear_error():
    with pytest.raises(FileNotFoundError, match="not a local directory"):
        load_mask_predictor("no-such-org/no-such-model", device="cpu")


@pytest.mark.parametrize("model_type", ["toy", "llada"])
def test_remote_code_runs_only_when_the_user_opts_in(tmp_path, model_type):
    """Issue 16 item 9: a checkpoint's own code is refused, before any of it is imported, unless
    model.trust_remote_code is set. LLaDA needs none (native module and config); with native=False it does."""
    path = write_remote_dir(tmp_path / model_type, model_type)
    marker = tmp_path / "ran"
    for name in ("configuration_toy.py", "modeling_toy.py"):
        (path / name).write_text(f"open({str(marker)!r}, 'w').close()\n" + (path / name).read_text())
    with pytest.raises(ValueError) as err:
        load_mask_predictor(path, device="cpu", native=False)
    assert "set model.trust_remote_code: true" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(Exception) as err:  # the toy directory has no tokenizer files: it fails either way
        load_tokenizer(path)
    assert ("its tokenizer runs the checkpoint's own Python code" in str(err.value)) == (model_type == "toy")
    assert not marker.exists()
    trusted = load_mask_predictor(path, device="cpu", native=False, trust_remote_code=True)
    assert type(trusted.model).__name__ == "ToyModel"
    assert marker.exists()
