"""Placement colocated: each learner rank samples its share of the batch with its own weights and
then trains under DDP. The same numbers as the single-process loop (one worker) and as the
disaggregated system (two workers); a lost worker restarts the group from the checkpoint."""

import json

import pytest
import torch

from dllmrl_core.drive.loop import run as loop_run
from services.launch import run as ray_run
from services.settings import SystemConfig
from tests.services.conftest import run_config
from tests.services.test_faults import kill_learner_at
from tests.services.test_system import adapter, max_diff

pytestmark = pytest.mark.ray


def loop(cfg: dict, out) -> dict:
    return loop_run(SystemConfig.parse({**cfg, "checkpoint": {"dir": str(out)}}), on_step=lambda *_: None)


def test_one_colocated_worker_is_the_single_process_loop_bit_for_bit(ray_session, warm_dir, tmp_path):
    cfg = run_config(warm_dir, tmp_path / "co", steps=3, placement="colocated")
    summary = ray_run(SystemConfig.parse(cfg), name="t-co1/")
    reference = loop(cfg, tmp_path / "loop")
    assert summary["steps"] == 3 and summary["adapter_sha256"] == reference["adapter_sha256"]
    a, b = adapter(tmp_path / "co"), adapter(tmp_path / "loop")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert summary["placement"]["rollout"] == summary["placement"]["learner"]  # one actor does both


def test_two_colocated_workers_equal_two_rollout_workers_and_two_learners(ray_session, warm_dir, tmp_path):
    co = run_config(warm_dir, tmp_path / "co", steps=2, placement="colocated", learner={"num_workers": 2},
                    eval={"every": 1, "num_examples": 8})
    colocated = ray_run(SystemConfig.parse(co), name="t-co2/")
    apart = ray_run(SystemConfig.parse(run_config(warm_dir, tmp_path / "apart", steps=2, rollout={"num_workers": 2},
                                               learner={"num_workers": 2})), name="t-co2-apart/")
    assert max_diff(adapter(tmp_path / "co"), adapter(tmp_path / "apart")) <= 1e-6
    assert colocated["reward_mean"] == pytest.approx(apart["reward_mean"])
    assert [p["rank"] for p in colocated["placement"]["learner"]] == [0, 1]
    records = [json.loads(x) for x in (tmp_path / "co" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "eval/accuracy" in r]  # evaluation ran on the colocated workers
    assert [r["step"] for r in evals] == [1, 2] and all(r["eval/items"] == 8.0 for r in evals)


def test_a_lost_colocated_worker_restarts_the_group_from_the_checkpoint(ray_session, warm_dir, tmp_path):
    cfg = run_config(warm_dir, tmp_path / "co", steps=6, placement="colocated", status={"enabled": True},
                     checkpoint={"save_every": 2})
    result = kill_learner_at(ray_session, cfg, "t-co-fault/", 2)
    assert result["steps"] == 6 and result["learner_restarts"] == 1
    reference = loop(run_config(warm_dir, tmp_path / "unused", steps=6), tmp_path / "loop")
    assert result["adapter_sha256"] == reference["adapter_sha256"]  # the replay from step 2 or 4 is exact
