"""bench/pipeline.py's arithmetic on hand-made measurements (running it takes minutes: it is a
benchmark, documented in docs/performance.md). Nothing here asserts a speed."""

import pytest

from bench.pipeline import figures, paired, steady, steady_steps, union
from bench.procs import cpu_per_step


def test_steady_state_leaves_out_the_first_two_steps_and_the_last():
    times = {1: 10.0, 2: 12.0, 3: 13.0, 4: 14.5, 5: 16.5, 6: 30.0}
    assert steady_steps(times, 6) == [3, 4, 5]
    assert steady(times, 6) == [1.0, 1.5, 2.0]
    assert steady_steps({1: 0.0, 2: 1.0, 3: 3.0}, 3) == [2, 3]  # too few steps: all but the first


def test_union_counts_overlapping_intervals_once():
    assert union([(0.0, 2.0), (1.0, 3.0), (5.0, 6.0)]) == pytest.approx(4.0)
    assert union([]) == 0.0


def test_ratios_are_taken_within_a_round_then_the_median():
    r = {"ray_sync": {"step_s_rounds": [2.2, 3.0, 1.0]}, "loop": {"step_s_rounds": [2.0, 2.0, 1.0]}}
    got = paired(r, "ray_sync", "loop", 1.05)
    assert got["per_round"] == [1.1, 1.5, 1.0] and got["value"] == 1.1 and got["met"] is False
    assert paired(r, "loop", "ray_sync", 0.9, at_most=False)["value"] == pytest.approx(round(2.0 / 2.2, 3))


def test_figures_from_a_round_of_each_run():
    loop = {"step_s": 2.0, "step_s_rounds": [2.0], "model_compute_s_rounds": [1.9], "cpu_s_per_step": 4.0,
            "adapter_sha256": "a", "compute_share": 0.95,
            "phases": {"rollout_s (sample + verify)": 1.2, "prepare_s": 0.0, "learn_s (optimizer step)": 0.8}}
    sync = {"step_s": 2.1, "step_s_rounds": [2.1], "cpu_s_per_step": 4.2, "adapter_sha256": "a",
            "tasks_per_step": {"no_task_running_s": 0.021}}
    stale = {"step_s": 1.26, "step_s_rounds": [1.26]}
    out = figures({"loop": loop, "ray_sync": sync, "ray_stale1": stale,
                   "publish_pull": {"publish_s": 0.01, "pull_s": 0.0105}})
    assert out["sync_over_loop"]["value"] == 1.05 and out["sync_over_loop"]["met"]
    assert out["sync_over_loop_cpu"] == 1.05 and out["sync_no_task_running_share"] == 0.01
    assert out["ray_adapter_equals_loop"] is True
    assert out["stale1_over_sync"]["value"] == 0.6 and out["stale1_over_sync"]["met"]
    assert out["stale1_over_sync_predicted_2_free_cores"] == 0.6  # (2.0 - min(1.2, 0.8)) / 2.0
    assert out["publish_pull_share"] == {"value": 0.00976, "target": 0.01, "met": True}
    assert out["compute_share_loop"]["met"] and out["compute_share_ray_sync"] == round(1.9 / 2.1, 4)
    assert figures({"loop": loop}).keys() == {"compute_share_loop"}


def test_cpu_seconds_per_step_by_role():
    samples = {1: {10: (1.0, "ray::RolloutWorker.generate"), 11: (2.0, "/x/raylet")},
               2: {10: (3.0, "ray::RolloutWorker.generate"), 11: (2.5, "/x/raylet"), 12: (0.5, "ray::IDLE")},
               3: {10: (4.0, "ray::RolloutWorker.generate"), 11: (2.5, "/x/raylet"), 12: (1.5, "ray::IDLE")}}
    got = cpu_per_step(samples, [2, 3])
    assert got["cpu_s_per_step"] == pytest.approx((2.0 + 0.5 + 0.5 + 1.0 + 0.0 + 1.0) / 2)
    assert got["cpu_s_per_step_by_role"] == {"RolloutWorker": 1.5, "IDLE": 0.75, "raylet": 0.25}
