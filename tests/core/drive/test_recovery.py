"""Resuming the single-process loop: a damaged newest checkpoint is skipped (the run still ends
with the uninterrupted run's adapter and each step once in metrics.jsonl), a checkpoint of other
training data is refused naming what changed."""

import json

import pytest

from dllmrl_core.drive.config import RunConfig
from dllmrl_core.drive.driver import DriverCore
from dllmrl_core.drive.preflight import preflight
from dllmrl_core.drive.loop import run
from tests.core.drive.test_loop import config as loop_config


def config(model_dir, name, steps, out) -> dict:
    """test_loop's tiny run, one optimizer step per batch (a checkpoint may follow any step)."""
    cfg = loop_config(model_dir, name, steps, out)
    cfg["algorithm"][name] = {**cfg["algorithm"][name], "num_iterations": 1}
    return cfg


def steps_logged(directory) -> list[int]:
    return [json.loads(line)["step"] for line in (directory / "metrics.jsonl").read_text().splitlines()
            if "reward/mean" in json.loads(line)]


def test_a_damaged_newest_checkpoint_is_skipped_and_the_resumed_run_matches(warm_dir, tmp_path, capsys):
    cfg = config(warm_dir, "diffu_grpo", steps=3, out=tmp_path)
    cfg["checkpoint"].update(save_every=1, keep=2)
    straight = run(RunConfig.parse(cfg), on_step=lambda *_: None)
    trainer = tmp_path / "step-00000003" / "trainer.pt"
    trainer.write_bytes(trainer.read_bytes()[:100])  # truncated, as by a crash or a full disk
    cfg["checkpoint"]["resume"] = "latest"
    steps = []
    resumed = run(RunConfig.parse(cfg), on_step=lambda step, *_: steps.append(step))
    assert "skipping" in capsys.readouterr().err and steps == [3]  # from step 2, the newest intact one
    assert resumed["adapter_sha256"] == straight["adapter_sha256"]
    assert steps_logged(tmp_path) == [1, 2, 3]  # step 3 of the first run was forgotten, not kept twice


def small(warm_dir, tmp_path, **task) -> RunConfig:
    cfg = config(warm_dir, "diffu_grpo", steps=2, out=tmp_path / "run")
    cfg["task"] = {**cfg["task"], **task}
    cfg["checkpoint"].update(save_every=1, resume="latest")
    return RunConfig.parse(cfg)


def test_resuming_on_other_training_data_is_refused_naming_the_change(warm_dir, tmp_path):
    core = DriverCore(small(warm_dir, tmp_path))
    core.checkpoint(1, {"epoch": 0, "cursor": 4}, lambda tmp: None)
    other = small(warm_dir, tmp_path, train_source="generate:1500")
    needle = r"^checkpoint.resume: .*step-00000001 was trained on other data \(task.train_source: 'generate:2000' "
    with pytest.raises(ValueError, match=needle + r"-> 'generate:1500'\)"):
        DriverCore(other).resume("latest", lambda found: None)
    with pytest.raises(ValueError, match=needle):
        preflight(other)
    assert DriverCore(small(warm_dir, tmp_path, reward_set="fixed")).resume("latest", lambda found: None)[0] == 1
