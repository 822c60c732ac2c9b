"""The Ray system against the single-process loop: parity, DDP, placement, resume."""

import json

import pytest
import torch
from safetensors.torch import load_file

from dllmrl_core.drive.loop import run as loop_run
from dllmrl_core.objectives import OBJECTIVES
from services.launch import run as ray_run
from services.settings import SystemConfig
from tests.core.objectives.helpers import cpu_settings
from tests.services.conftest import run_config
from tests.services.test_status_run import assert_it_moved, free_port, run_polled, status_config

pytestmark = pytest.mark.ray


def adapter(out) -> dict[str, torch.Tensor]:
    return load_file(out / "final" / "adapter" / "adapter_model.safetensors")


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_ray_matches_the_single_process_loop(ray_session, warm_dir, tmp_path):
    """... with the status server on, polled all along: it changes nothing, and shows the run."""
    port = free_port()
    cfg = run_config(warm_dir, tmp_path / "ray", steps=3, status=status_config(port))
    summary, seen = run_polled(cfg, port, name="t-parity/")
    loop = loop_run(SystemConfig.parse({**cfg, "checkpoint": {"dir": str(tmp_path / "loop")}}), on_step=lambda *_: None)
    assert summary["steps"] == loop["steps"] == 3
    assert_it_moved(seen, steps=3, completions=3 * 16)
    assert max_diff(adapter(tmp_path / "ray"), adapter(tmp_path / "loop")) <= 1e-6
    assert summary["reward_mean"] == pytest.approx(loop["reward_mean"])
    # one typed step record: both drivers log the same names, and the same values where they must agree
    ray_steps, loop_steps = (step_records(tmp_path / run) for run in ("ray", "loop"))
    assert [sorted(r) for r in ray_steps] == [sorted(r) for r in loop_steps]
    for name in ("rollout/completion_len_mean", "rollout/completion_len_max", "rollout/zero_adv_share",
                 "rollout/staleness", "learner/kl", "learner/clip_frac", "learner/entropy"):
        assert [r[name] for r in ray_steps] == pytest.approx([r[name] for r in loop_steps], abs=1e-5), name
    assert all(r["time/rollout_s"] > 0 and r["time/reward_s"] >= 0 and r["time/learn_s"] > 0 and r["time/sync_s"] > 0
               for r in ray_steps)


def step_records(run) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "learner/loss" in r]


@pytest.mark.parametrize("name", [name for name in OBJECTIVES if name != "diffu_grpo"])  # that one: the test above
def test_every_method_trains_through_ray_as_in_the_loop(ray_session, warm_dir, tmp_path, name):
    """Each registered method (CPU-test size, a KL wherever there is one): rollout worker, reward actor and
    learner give the single-process loop's adapter."""
    cfg = run_config(warm_dir, tmp_path / "ray", steps=2, algorithm={"name": name, name: cpu_settings(name, beta=0.04)})
    summary = ray_run(SystemConfig.parse(cfg), name=f"t-method-{name}/")
    loop = loop_run(SystemConfig.parse({**cfg, "checkpoint": {"dir": str(tmp_path / "loop")}}), on_step=lambda *_: None)
    assert summary["steps"] == loop["steps"] == 2 and summary["algorithm"] == name
    assert max_diff(adapter(tmp_path / "ray"), adapter(tmp_path / "loop")) <= 1e-6
    assert summary["reward_mean"] == pytest.approx(loop["reward_mean"])


def test_two_learners_on_half_batches_equal_one_learner(ray_session, warm_dir, tmp_path):
    one = ray_run(SystemConfig.parse(run_config(warm_dir, tmp_path / "one", steps=2)), name="t-ddp1/")
    two = ray_run(SystemConfig.parse(run_config(warm_dir, tmp_path / "two", steps=2, learner={"num_workers": 2})),
                  name="t-ddp2/")
    assert len(two["placement"]["learner"]) == 2 and one["reward_mean"] == two["reward_mean"]
    assert max_diff(adapter(tmp_path / "one"), adapter(tmp_path / "two")) <= 1e-6


def test_rollout_workers_and_learners_land_on_distinct_gpus(ray_session, warm_dir, tmp_path):
    cfg = run_config(warm_dir, tmp_path, steps=1, rollout={"num_workers": 2, "num_gpus_per_worker": 1},
                     learner={"num_workers": 2, "num_gpus_per_worker": 1})
    placement = ray_run(SystemConfig.parse(cfg), name="t-place/")["placement"]
    gpus = [tuple(p["gpus"]) for p in placement["rollout"] + placement["learner"]]
    assert all(len(g) == 1 for g in gpus) and len(set(gpus)) == 4
    assert [p["rank"] for p in placement["learner"]] == [0, 1]


def test_stop_after_step_4_and_resume_reaches_the_step_6_adapter(ray_session, warm_dir, tmp_path):
    straight = ray_run(SystemConfig.parse(run_config(warm_dir, tmp_path / "a", steps=6)), name="t-res-a/")
    split = run_config(warm_dir, tmp_path / "b", steps=4, checkpoint={"save_every": 2})
    ray_run(SystemConfig.parse(split), name="t-res-b/")
    split["train"]["steps"], split["checkpoint"]["resume"] = 6, "latest"
    resumed = ray_run(SystemConfig.parse(split), name="t-res-c/")
    assert resumed["steps"] == 6 and resumed["adapter_sha256"] == straight["adapter_sha256"]


def test_staleness_one_overlaps_and_evaluation_runs(ray_session, warm_dir, tmp_path):
    cfg = run_config(warm_dir, tmp_path, steps=3, train={"max_staleness": 1}, rollout={"num_workers": 2},
                     eval={"every": 3, "num_examples": 16})
    summary = ray_run(SystemConfig.parse(cfg), name="t-stale/")
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "learner/loss" in r]
    # batch b is generated with version b - 1 (one step stale); the first with version 0
    assert [r["rollout/weight_version"] for r in steps] == [0.0, 0.0, 1.0]
    evals = [r for r in records if "eval/accuracy" in r]
    assert len(evals) == 1 and evals[0]["step"] == 3 and evals[0]["eval/items"] == 16.0
    assert 0.0 <= evals[0]["eval/accuracy"] <= 100.0
    assert summary["steps"] == 3 and len(summary["placement"]["rollout"]) == 2
