"""`dllmrl train` and `dllmrl eval` are services.launch and services.evaluate; evaluation results go
into the evaluated run, never into the config's checkpoint.dir. No Ray: the work is replaced."""

import json

import pytest
import yaml

from dllmrl_core.drive.heldout import EvalSummary
from services import cli, evaluate, launch
from tests.services.conftest import run_config


@pytest.fixture
def trained_run(tmp_path):
    """A run directory as a finished run leaves it: config.yaml and final/adapter."""
    run = tmp_path / "trained"
    (run / "final" / "adapter").mkdir(parents=True)
    (run / "final" / "adapter" / "adapter_config.json").write_text("{}")
    (run / "config.yaml").write_text("model: {}\n")
    return run


def fake_evaluate(calls):
    def fake(cfg, adapter, tasks, samplers, limit, out):
        calls.append((adapter, out))
        return {tasks[0]: {"L/2": {24: EvalSummary(accuracy=50.0, well_formed=100.0, items=2, ci95=1.0)}}}
    return fake


def test_eval_writes_into_the_evaluated_run_not_the_configs_checkpoint_dir(tmp_path, trained_run, monkeypatch,
                                                                           capsys):
    other = tmp_path / "configured"
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(run_config(tmp_path / "model", other)))
    calls = []
    monkeypatch.setattr(evaluate, "evaluate", fake_evaluate(calls))
    monkeypatch.setattr(launch, "connect", lambda cfg: False)
    assert cli.main(["eval", str(tmp_path / "cfg.yaml"), "--checkpoint", str(trained_run)]) == 0
    assert calls == [(str(trained_run / "final" / "adapter"), trained_run / "eval")]
    assert json.loads((trained_run / "eval" / "summary.json").read_text())["countdown"]["L/2"]["24"]["items"] == 2
    assert (trained_run / "eval" / "results.md").is_file() and not other.exists()
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["out"] == str(trained_run / "eval")


def test_an_adapter_directory_evaluates_into_its_run(trained_run):
    assert evaluate.results_dir(str(trained_run / "final" / "adapter"), None) == trained_run / "eval"


def test_eval_of_the_base_model_needs_out_in_one_line(tmp_path, capsys):
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(run_config(tmp_path / "model", tmp_path / "run")))
    assert cli.main(["eval", str(tmp_path / "cfg.yaml"), "--checkpoint", "base"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err and not (tmp_path / "run").exists()


def test_train_runs_launch_with_the_same_arguments(monkeypatch):
    seen = []
    monkeypatch.setattr(launch, "main", lambda argv: seen.append(argv) or 0)
    assert cli.main(["train", "cfg.yaml", "train.steps=2", "model.device=cpu"]) == 0
    assert seen == [["cfg.yaml", "train.steps=2", "model.device=cpu"]]


def test_help_lists_training_and_evaluation(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    assert all(name in text for name in ("train", "eval", "export", "generate", "plan"))
