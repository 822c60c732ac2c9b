"""The single-process loop: every method trains on the tiny model; config errors are one line."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from dllmrl_core.drive.config import RunConfig, load_run_config
from dllmrl_core.drive.loop import run
from dllmrl_core.objectives import OBJECTIVES
from dllmrl_core.training.lora import adapter_digest, adapter_state
from dllmrl_core.training.policy import load_policy
from tests.conftest import WARM_TASK
from tests.core.objectives.helpers import cpu_settings

ROOT = Path(__file__).resolve().parents[3]

# every registered method at CPU-test size; β > 0 wherever there is a KL, to check it at the first step
METHODS = {name: cpu_settings(name, beta=0.04) for name in OBJECTIVES}
METHODS["diffu_grpo"]["num_iterations"] = 2  # one batch serves both steps


def config(model_dir, name, steps=2, out=None) -> dict:
    return {"model": {"path": str(model_dir), "device": "cpu", "lora": {"r": 4, "alpha": 8, "dropout": 0.0}},
            "checkpoint": {"dir": str(out or model_dir.parent / f"run-{name}")},
            "task": WARM_TASK,
            "sampler": {"gen_length": 24, "steps": 12, "block_length": 24, "temperature": 1.0},
            "algorithm": {"name": name, **METHODS},
            "optim": {"lr": 1e-3, "max_grad_norm": 1.0, "schedule": "constant"},
            "train": {"steps": steps, "prompts_per_step": 4, "group_size": 4, "seed": 0}}


def test_stop_and_resume_reaches_the_same_adapter(warm_dir, tmp_path):
    whole = config(warm_dir, "diffu_grpo", steps=6, out=tmp_path / "whole")
    straight = run(RunConfig.parse(whole), on_step=lambda *_: None)
    split = config(warm_dir, "diffu_grpo", steps=4, out=tmp_path / "split")
    split["checkpoint"]["save_every"] = 2
    run(RunConfig.parse(split), on_step=lambda *_: None)
    split["train"]["steps"], split["checkpoint"]["resume"] = 6, "latest"
    steps = []
    resumed = run(RunConfig.parse(split), on_step=lambda step, *_: steps.append(step))
    assert steps == [5, 6]  # continued after step 4, not from scratch
    assert resumed["adapter_sha256"] == straight["adapter_sha256"]
    assert (tmp_path / "split" / "latest").read_text() == "step-00000006"  # it kept saving
    assert sorted(p.name for p in (tmp_path / "split").glob("step-*")) == ["step-00000004", "step-00000006"]
    records = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6] and "learner/grad_norm" in records[0]
    # μ = 2: odd steps sample and score a batch, even steps reuse it one update later
    assert [r["rollout/staleness"] for r in records] == [0.0, 1.0] * 3
    assert all(r["time/rollout_s"] > 0 and r["time/reward_s"] > 0 and r["rollout/tokens_per_s"] > 0
               for r in records[::2])
    assert all(r["time/rollout_s"] == 0 and "rollout/tokens_per_s" not in r for r in records[1::2])
    assert all(r["time/learn_s"] > 0 and r["time/sync_s"] == 0 and "learner/kl" in r for r in records)  # β > 0
    assert all(1 <= r["rollout/completion_len_mean"] <= r["rollout/completion_len_max"] <= 24 for r in records)
    assert all(0 <= r["rollout/zero_adv_share"] <= 1 for r in records)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_each_method_trains_finite_and_changes_the_adapter(warm_dir, name):
    cfg = RunConfig.parse(config(warm_dir, name))
    torch.manual_seed(cfg.train.seed)  # run() seeds the same way before building the adapter
    initial = adapter_digest(adapter_state(load_policy(cfg.model)[0].model))
    seen = []
    summary = run(cfg, on_step=lambda step, scored, m, s: seen.append((scored, m)))
    assert summary["steps"] == 2 and len(seen) == 2
    first = seen[0][1]
    assert first.kl == pytest.approx(0.0, abs=1e-7) and first.ratio_mean == pytest.approx(1.0, abs=1e-5)
    for scored, m in seen:
        assert all(math.isfinite(v) for v in (m.loss, m.grad_norm, m.kl, m.ratio_max))
    assert any(float(scored.rewards.std()) > 0 for scored, _ in seen)  # some signal to learn from
    assert (summary["adapter_sha256"], summary["adapter_norm"]) != initial


def test_same_seed_same_adapter(warm_dir, tmp_path):
    cfg = RunConfig.parse(config(warm_dir, "diffu_grpo", out=tmp_path))
    a, b = run(cfg, on_step=lambda *_: None), run(cfg, on_step=lambda *_: None)
    assert a["adapter_sha256"] == b["adapter_sha256"]


def test_cli_prints_the_json_summary_last(warm_dir, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config(warm_dir, "diffu_grpo", out=tmp_path / "out")))
    out = subprocess.run([sys.executable, "-m", "dllmrl_core.loop", str(path), "algorithm.name=agrpo", "train.steps=1"],
                         capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 1 and summary["algorithm"] == "agrpo"
    assert {"reward_mean", "adapter_sha256", "adapter_norm"} <= set(summary)


def test_the_cli_trains_every_method_from_the_tiny_config_into_its_own_adapter(warm_dir, tmp_path, monkeypatch, capsys):
    """`python -m dllmrl_core.loop configs/tiny_countdown.yaml algorithm.name=M train.steps=2` for every
    registered method (on the tests' warm start and its two-number task, so that some answers are right and
    SAPO's process reward is not zero; evaluation off): each trains, and no two adapters agree. The command's
    `main` runs in this process (its run as a subprocess: test_cli_prints_the_json_summary_last)."""
    from dllmrl_core.drive.loop import main

    monkeypatch.chdir(ROOT)
    warm = [f"model.path={warm_dir}", "warm_start=null", "eval.before=false", "eval.after=false",
            *(f"task.countdown.{k}={v}" for k, v in WARM_TASK["countdown"].items())]
    digests = {}
    for name in OBJECTIVES:
        code = main(["configs/tiny_countdown.yaml", f"algorithm.name={name}", "train.steps=2", *warm,
                     f"checkpoint.dir={tmp_path / name}"])
        out = capsys.readouterr()
        assert code == 0, f"{name}: {out.err[-2000:]}"
        summary = json.loads(out.out.strip().splitlines()[-1])
        assert summary["algorithm"] == name and summary["steps"] == 2
        digests[name] = summary["adapter_sha256"]
    assert len(set(digests.values())) == len(OBJECTIVES), digests


@pytest.mark.parametrize("override, needle", [
    ("algorithm.name=ppo", ", ".join(repr(n) for n in list(OBJECTIVES)[:-1]) + f" or {list(OBJECTIVES)[-1]!r}"),
    ("algorithm.diffu_grpo.mc_samples=3", "algorithm.diffu_grpo.mc_samples: unknown key (valid: beta, epsilon"),
    ("algorithm.sapo.beta=-1", "algorithm.sapo.beta"),
    ("train.stepz=3", "train.stepz: unknown key"),
    ("sampler.temperature=0", "sampler.temperature"),
])
def test_bad_config_fails_at_load_with_one_line(warm_dir, tmp_path, override, needle):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config(warm_dir, "diffu_grpo")))
    with pytest.raises(ValueError) as err:
        load_run_config(path, [override])
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_missing_config_file_and_bad_yaml(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_run_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ValueError, match="bad.yaml: not valid YAML"):
        load_run_config(bad)
