"""LLaDA's SFT objective: the weighting by hand, determinism, and that a tiny model learns."""

import json
import math

import pytest
import torch

from dllmrl_core.models import MaskPredictor, load_mask_predictor
from dllmrl_core.training.sft import EPS, SFTBatch, SFTConfig, encode_pairs, sft_loss, train_sft


class Uniform(torch.nn.Module):
    """Logits all zero: cross-entropy log V at every position."""

    def __init__(self, vocab):
        super().__init__()
        self.vocab = vocab
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, input_ids, attention_mask=None):
        return type("Out", (), {"logits": torch.zeros(*input_ids.shape, self.vocab) + 0 * self.w})()


def test_loss_weights_masked_tokens_by_one_over_t_and_answer_length():
    V, A = 10, 4
    model = MaskPredictor(model=Uniform(V), mask_id=9)
    batch = SFTBatch(torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3).bool(), torch.tensor([[1, 2, 3, 4]] * 2))
    g = torch.Generator().manual_seed(0)
    loss = sft_loss(model, batch, g)
    # replay the draws: t ~ (1 − ε)U + ε per row, then the mask; L = (1/B) Σ_b Σ_masked log V / t_b / A
    g = torch.Generator().manual_seed(0)
    t = (1 - EPS) * torch.rand(2, 1, generator=g) + EPS
    masked = torch.rand(2, A, generator=g) < t
    expected = sum(float(masked[b].sum()) * math.log(V) / float(t[b]) / A for b in range(2)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_answers_are_eos_padded_and_cut(tokenizer):
    batch = encode_pairs(tokenizer, ["ab", "abcd"], ["xy", "0123456789"], answer_length=5, eos_id=tokenizer.eos_token_id)
    eos = tokenizer.eos_token_id
    assert tokenizer.decode(batch.answer_ids[0, :2]) == "xy" and (batch.answer_ids[0, 2:] == eos).all()
    assert tokenizer.decode(batch.answer_ids[1]) == "01234"
    assert batch.prompt_mask.tolist()[0] == [False, False, True, True]


def test_sft_is_deterministic_and_learns_a_mapping(tiny_dir, tokenizer):
    prompts = [f"{a}{b}" for a in "0123" for b in "0123"]
    answers = [p[::-1] for p in prompts]  # reverse two digits
    data = encode_pairs(tokenizer, prompts, answers, answer_length=4, eos_id=tokenizer.eos_token_id)
    cfg = SFTConfig(steps=120, batch_size=16, lr=3e-3, warmup_steps=10, answer_length=4, seed=3)

    def run():
        model = load_mask_predictor(tiny_dir, device="cpu")
        return model, train_sft(model, data, cfg)

    model, losses = run()
    _, again = run()
    assert losses == again
    assert sum(losses[-20:]) / 20 < 0.5 * sum(losses[:20]) / 20


def test_sft_command_writes_a_loadable_merged_checkpoint(tiny_dir, tmp_path):
    import json
    import subprocess
    import sys

    import yaml

    from tests.conftest import WARM_TASK

    cfg = {"model": {"path": str(tiny_dir), "device": "cpu", "lora": {"r": 4, "alpha": 8, "dropout": 0.0}},
           "task": WARM_TASK, "sft": {"steps": 5, "batch_size": 8, "answer_length": 24, "out": str(tmp_path / "out")}}
    (tmp_path / "sft.yaml").write_text(yaml.safe_dump(cfg))
    done = subprocess.run([sys.executable, "-m", "dllmrl_core.cli", "sft", str(tmp_path / "sft.yaml"), "sft.seed=2"],
                          capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 5 and summary["pairs"] > 0
    merged = load_mask_predictor(tmp_path / "out", device="cpu")  # LoRA merged away: a plain checkpoint
    assert not any("lora" in name for name, _ in merged.model.named_parameters())
    bad = subprocess.run([sys.executable, "-m", "dllmrl_core.cli", "sft", str(tmp_path / "sft.yaml"), "sft.stepz=1"],
                         capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    assert bad.returncode == 2 and "sft.stepz: unknown key" in bad.stderr


def test_warm_start_is_built_once_and_rebuilt_when_its_config_changes(tmp_path):
    from dllmrl_core.tasks import TaskConfig
    from dllmrl_core.training.warm_start import WarmStartConfig, ensure_warm_start
    from tests.conftest import WARM_TASK

    warm = WarmStartConfig.parse({"out": str(tmp_path / "warm"), "base": str(tmp_path / "base"),
                                  "spec": {"d_model": 16, "n_layers": 1, "n_heads": 2, "n_kv_heads": 2,
                                           "mlp_hidden_size": 32},
                                  "sft": {"steps": 3, "batch_size": 4, "answer_length": 24}})
    task = TaskConfig.parse(WARM_TASK)
    first = ensure_warm_start(warm, task, device="cpu")
    again = ensure_warm_start(warm, task, device="cpu")
    assert not first["cached"] and again["cached"] and (tmp_path / "base" / "config.json").is_file()
    marker = (tmp_path / "base" / "tiny_spec.json").read_text()
    changed = ensure_warm_start(warm.model_copy(update={"seed": 1}), task, device="cpu")
    assert not changed["cached"] and (tmp_path / "base" / "tiny_spec.json").read_text() != marker  # base rebuilt
    load_mask_predictor(tmp_path / "warm", device="cpu")


def test_warm_start_goes_stale_when_prompts_or_template_change(tmp_path, monkeypatch):
    """A code change to the task's prompts or the tiny chat template (config unchanged) rebuilds;
    a standalone SFT into the same directory drops the cached fingerprint."""
    from dllmrl_core.tasks import TaskConfig
    from dllmrl_core.training import warm_start as ws
    from tests.conftest import WARM_TASK

    warm = ws.WarmStartConfig.parse({"out": str(tmp_path / "warm"), "base": str(tmp_path / "base"),
                                     "spec": {"d_model": 16, "n_layers": 1, "n_heads": 2, "n_kv_heads": 2,
                                              "mlp_hidden_size": 32},
                                     "sft": {"steps": 2, "batch_size": 4, "answer_length": 24}})
    task, out = TaskConfig.parse(WARM_TASK), str(tmp_path / "warm")
    assert not ws.ensure_warm_start(warm, task, device="cpu")["cached"]
    assert ws.ensure_warm_start(warm, task, device="cpu")["cached"]
    monkeypatch.setattr(ws, "format_sample", lambda t: ["a new prompt", "a new answer"])
    assert not ws.ensure_warm_start(warm, task, device="cpu")["cached"]
    monkeypatch.setattr(ws.tiny, "CHAT_TEMPLATE", ws.tiny.CHAT_TEMPLATE + " ")
    marker = (tmp_path / "base" / ws.BASE_MARKER).read_text()
    assert not ws.ensure_warm_start(warm, task, device="cpu")["cached"]
    assert (tmp_path / "base" / ws.BASE_MARKER).read_text() != marker  # the base was rebuilt too
    sft = ws.SFTRunConfig(model=ws.SFTModelConfig(path=str(tmp_path / "base"), device="cpu"), task=task,
                          sft=warm.sft.model_copy(update={"out": out}))
    ws.run_sft(sft)
    assert json.loads((tmp_path / "warm" / ws.FINGERPRINT).read_text())["fingerprint"] is None  # still ours, stale
    assert not ws.ensure_warm_start(warm, task, device="cpu")["cached"]
