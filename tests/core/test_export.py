"""`dllmrl export` merges a run's adapter into its base (transformers alone opens the result) and
pushes it with huggingface_hub (mocked: no network here); `dllmrl generate --adapter` samples from a
run's base plus adapter. Bad input is one line, before any work."""

import json

import pytest
import torch

from dllmrl_core import cli
from dllmrl_core.drive.config import RunConfig, dump_config
from dllmrl_core.drive.trained import locate
from dllmrl_core.training.policy import ModelConfig, load_policy

IDS = torch.tensor([[8, 9, 10, 11, 12, 13]])


@pytest.fixture(scope="module")
def trained(tiny_dir, tmp_path_factory):
    """A run directory as training leaves it (config.yaml, final/adapter) with a non-zero adapter, and
    the logits of its policy."""
    run = tmp_path_factory.mktemp("run")
    cfg = RunConfig.parse({"model": {"path": str(tiny_dir), "device": "cpu"}, "task": {"name": "countdown"},
                           "checkpoint": {"dir": str(run)}})
    (run / "config.yaml").write_text(dump_config(cfg))
    policy, _ = load_policy(ModelConfig(path=str(tiny_dir), device="cpu"))
    with torch.no_grad():
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.5, generator=torch.Generator().manual_seed(len(name)))
    policy.model.save_pretrained(run / "final" / "adapter")
    policy.model.eval()
    with torch.no_grad():
        return run, policy.model(IDS).logits


def test_locate_finds_the_adapter_and_the_run_from_any_of_its_directories(trained):
    run, _ = trained
    for named in (run, run / "final", run / "final" / "adapter"):
        found = locate(named)
        assert (found.root, found.adapter) == (run, run / "final" / "adapter")


def test_export_merges_into_a_checkpoint_automodel_opens(trained, tmp_path, capsys, predictor):
    from transformers import AutoModel

    run, logits = trained
    out = tmp_path / "merged"
    assert cli.main(["export", str(run), "--merged", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["merged"] == str(out) and summary["adapter"] == str(run / "final" / "adapter")
    assert json.loads((out / "config.json").read_text())["auto_map"]["AutoModel"] == "llada.LLaDAModelLM"
    assert (out / "tokenizer.json").is_file() and not (out / "adapter_config.json").exists()
    model = AutoModel.from_pretrained(str(out), trust_remote_code=True).eval()
    with torch.no_grad():
        merged = model(IDS).logits
        base = predictor.model(IDS).logits
    assert torch.allclose(merged, logits, atol=1e-4) and not torch.allclose(merged, base, atol=1e-2)


def test_export_refuses_a_non_empty_out_before_any_work(trained, tmp_path, capsys):
    run, _ = trained
    (tmp_path / "mine.txt").write_text("keep")
    assert cli.main(["export", str(run), "--merged", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--merged {tmp_path}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_export_of_a_directory_without_a_run_is_one_line(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path), "--merged", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no PEFT adapter" in err and not (tmp_path / "out").exists()


class FakeHub:
    """huggingface_hub.HfApi as the export calls it, recording the calls; `fail` raises on upload."""

    calls: list = []
    fail: Exception | None = None

    def __init__(self, token=None):
        self.calls.append(("init", token))

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        if self.fail is not None:
            raise self.fail
        self.calls.append(("upload_folder", kwargs))
        return type("Commit", (), {"commit_url": f"https://hub.test/{kwargs['repo_id']}/commit/1"})()


@pytest.fixture
def hub(monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHub)
    monkeypatch.setattr(FakeHub, "calls", [])
    monkeypatch.setattr(FakeHub, "fail", None)
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    return FakeHub


def test_push_to_hub_uploads_the_merged_directory(trained, tmp_path, hub, capsys):
    run, _ = trained
    out = tmp_path / "merged"
    assert cli.main(["export", str(run), "--merged", str(out), "--push-to-hub", "me/tiny-rl", "--private"]) == 0
    assert hub.calls == [("init", "hf_test"), ("create_repo", "me/tiny-rl", {"private": True, "exist_ok": True}),
                         ("upload_folder", {"repo_id": "me/tiny-rl", "folder_path": str(out),
                                            "commit_message": "dllmrl export --merged"})]
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["hub"].startswith("https://hub.test/me/")


def test_push_without_a_token_is_one_line_before_any_work(trained, tmp_path, hub, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))  # no stored login either
    assert cli.main(["export", str(trained[0]), "--merged", str(tmp_path / "m"), "--push-to-hub", "me/x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no Hugging Face token" in err
    assert not (tmp_path / "m").exists() and hub.calls == []


def test_push_without_network_is_one_line_and_keeps_the_merged_model(trained, tmp_path, hub, capsys):
    hub.fail = ConnectionError("Max retries exceeded with url: /api/repos/create\n(details)")
    out = tmp_path / "m"
    assert cli.main(["export", str(trained[0]), "--merged", str(out), "--push-to-hub", "me/x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "upload failed (ConnectionError: Max retries" in err and str(out) in err
    assert (out / "config.json").is_file()


def test_generate_from_a_run_uses_its_base_and_adapter(trained, capsys):
    args = ["generate", "--adapter", str(trained[0]), "--prompt", "2+3=", "--gen-length", "8", "--steps", "4",
            "--block-length", "8", "--device", "cpu", "--keep-special"]
    assert cli.main(args) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_generate_takes_a_model_or_an_adapter_not_both(trained, tiny_dir):
    with pytest.raises(SystemExit):
        cli.main(["generate", "--adapter", str(trained[0]), "--model", str(tiny_dir), "--prompt", "x"])
