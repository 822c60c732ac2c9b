"""The tiny default checkpoint: CLI, size, tokenizer, determinism."""

import subprocess
import sys

import torch
from transformers import AutoTokenizer

from dllmrl_core.models import encode_prompts, load_mask_predictor
from dllmrl_core.models.llada import LLaDAModelLM


def test_cli_writes_a_loadable_default_of_1_to_5m_parameters(tmp_path):
    out = tmp_path / "tiny"
    run = subprocess.run([sys.executable, "-m", "dllmrl_core.models.tiny", "--out", str(out), "--seed", "3"],
                         capture_output=True, text=True, check=True)
    assert "parameters" in run.stdout
    pred = load_mask_predictor(out, device="cpu")
    n = sum(p.numel() for p in pred.model.parameters())
    assert 1e6 <= n <= 5e6
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.mask_token_id == pred.mask_id and tok.eos_token_id == pred.eos_id and tok.pad_token_id == pred.pad_id
    assert len({pred.mask_id, pred.eos_id, pred.pad_id, pred.eot_id}) == 4


def test_tokenizer_is_character_level_with_a_compact_chat_template(tokenizer):
    text = "Using [3, 5, 7], make 22."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text) and tokenizer.decode(ids) == text
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "\nhi\n"}], add_generation_prompt=True,
                                             tokenize=False)
    assert rendered == "<|startoftext|>hi<|eot_id|>"
    ids, mask = encode_prompts(tokenizer, ["a", "abc"])
    assert ids.shape[1] == mask.shape[1] and not mask[0, :2].any() and mask[0, 2:].all()  # left padding
    rendered_a = tokenizer.apply_chat_template([{"role": "user", "content": "a"}], add_generation_prompt=True,
                                               tokenize=False)
    assert tokenizer.decode(ids[0, 2:]) == rendered_a


def test_same_seed_same_weights_different_seed_different(tmp_path):
    from dllmrl_core.models.tiny import TinySpec, build_model, build_tokenizer

    tok, spec = build_tokenizer(), TinySpec(d_model=16, n_layers=1, n_heads=2, n_kv_heads=2, mlp_hidden_size=32)
    a, b, c = build_model(tok, spec, 1), build_model(tok, spec, 1), build_model(tok, spec, 2)
    wa, wb, wc = (m.state_dict()["model.transformer.wte.weight"] for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert isinstance(a, LLaDAModelLM)


def test_a_tiny_checkpoint_opens_with_automodel_and_remote_code(tmp_path, tokenizer):
    """config.json's auto_map and the modelling file beside it: transformers alone opens the checkpoint,
    and it computes what the native module computes."""
    import json

    from transformers import AutoModel

    from dllmrl_core.models.tiny import TinySpec, write_tiny

    out = write_tiny(tmp_path / "tiny", spec=TinySpec(d_model=32, n_heads=2, n_kv_heads=2, n_layers=1,
                                                      mlp_hidden_size=64))
    config = json.loads((out / "config.json").read_text())
    assert config["auto_map"] == {"AutoConfig": "llada.LLaDAConfig", "AutoModel": "llada.LLaDAModelLM"}
    assert (out / "llada.py").is_file()
    remote = AutoModel.from_pretrained(str(out), trust_remote_code=True).eval()
    assert type(remote) is not LLaDAModelLM and type(remote).__name__ == "LLaDAModelLM"  # the copied file's class
    native = load_mask_predictor(out, device="cpu").model
    ids = torch.tensor([tokenizer("2+3=5", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        assert torch.equal(remote(ids).logits, native(ids).logits)
