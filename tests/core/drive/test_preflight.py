"""Inputs checked before any work: the warm start never overwrites a user's checkpoint, a missing
model fails in one line, and a batch that trains nothing is counted and warned about."""

import json

import pytest

from dllmrl_core.contract.verdict import Verdict
from dllmrl_core.drive.config import RunConfig, load_run_config
from dllmrl_core.drive.driver import DriverCore
from dllmrl_core.drive.metrics import PhaseTimes, RewardStats, StepRecord
from dllmrl_core.drive.preflight import preflight
from dllmrl_core.training.step import BatchStats, StepMetrics
from dllmrl_core.training.warm_start import WarmStartConfig, ensure_warm_start
from tests.conftest import WARM_TASK

TINY = "configs/tiny_countdown.yaml"


def test_the_warm_start_refuses_a_directory_it_did_not_build(tmp_path):
    mine = tmp_path / "my-checkpoint"
    mine.mkdir()
    (mine / "config.json").write_text("{}")
    warm = WarmStartConfig.parse({"out": str(mine), "base": str(tmp_path / "base")})
    from dllmrl_core.tasks import TaskConfig

    with pytest.raises(FileExistsError, match="^warm_start.out: .* holds files the warm start did not build"):
        ensure_warm_start(warm, TaskConfig.parse(WARM_TASK))
    assert [p.name for p in mine.iterdir()] == ["config.json"] and not (tmp_path / "base").exists()


def test_a_model_path_other_than_the_warm_starts_own_is_refused_in_one_line():
    with pytest.raises(ValueError) as err:
        load_run_config(TINY, ["model.path=/home/me/my-checkpoint"])
    assert str(err.value).startswith("model.path (/home/me/my-checkpoint) is not warm_start.out (runs/tiny-sft)")
    assert "\n" not in str(err.value)


def test_a_missing_model_path_without_a_warm_start_fails_before_any_work(tmp_path):
    cfg = load_run_config(TINY, ["warm_start=null", f"model.path={tmp_path / 'typo'}"])
    with pytest.raises(FileNotFoundError, match=f"^model.path: model directory not found: {tmp_path / 'typo'}"):
        preflight(cfg)
    preflight(load_run_config(TINY))  # the default run's warm start builds its model.path: no error


def test_the_default_config_still_builds_its_warm_start_in_runs_tiny_sft():
    cfg = load_run_config(TINY)
    assert cfg.warm_start is not None and cfg.warm_start.out == cfg.model.path == "runs/tiny-sft"


def record(zero_share: float) -> StepRecord:
    """A step record whose batch has `zero_share` of its rollouts in groups of equal rewards (the share itself
    is computed, by hand-checked numbers, in tests/core/drive/test_metrics.py)."""
    batch = BatchStats(completion_len_mean=4.0, completion_len_max=4.0, completion_tokens=16.0,
                       zero_adv_share=zero_share)
    learner = StepMetrics(*[0.0] * 12, batch=batch)
    return StepRecord(RewardStats.of([Verdict(1.0), Verdict(0.0)], []), learner, PhaseTimes(learn=0.1), 0, 0)


def test_a_batch_of_equal_rewards_is_warned_about_and_logged(tmp_path, capsys):
    cfg = RunConfig.parse({"model": {"path": str(tmp_path)}, "task": WARM_TASK, "train": {"group_size": 2},
                           "algorithm": {"diffu_grpo": {"num_iterations": 1}},
                           "checkpoint": {"dir": str(tmp_path / "run")}, "eval": {"before": False, "after": False}})
    core = DriverCore(cfg)
    core.record_step(1, record(0.5))
    assert "warning" not in capsys.readouterr().err
    core.record_step(2, record(1.0))
    assert "warning: step 2: every group's rewards are equal" in capsys.readouterr().err
    core.log.close()
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["rollout/zero_adv_share"] for r in logged] == [0.5, 1.0]
