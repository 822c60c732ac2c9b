"""Evaluation settings: several lengths, a step count other than gen_length / 2, and how an
evaluation over several lengths is summarized (the papers' "Avg." column)."""

import json

import pytest

from dllmrl_core.contract.verdict import Verdict
from dllmrl_core.drive.config import RunConfig
from dllmrl_core.drive.heldout import across_lengths, eval_chunks, eval_metrics, eval_sampler, summarize
from dllmrl_core.drive.loop import run
from tests.conftest import WARM_TASK


def test_eval_sampler_is_d1s_protocol_unless_steps_are_given():
    d1 = eval_sampler(512)
    assert (d1.steps, d1.block_length, d1.temperature, d1.remasking) == (256, 32, 0.0, "low_confidence")
    assert eval_sampler(24).steps == 12 and eval_sampler(24).block_length == 24
    assert eval_sampler(256, steps=32).steps == 32  # AGRPO's fewer steps: 8 tokens per step
    with pytest.raises(ValueError, match="evaluation at gen_length 128: steps \\(30\\) must be divisible"):
        eval_sampler(128, steps=30)


@pytest.mark.parametrize("section, message", [
    ({"gen_length": []}, "eval.gen_length: give at least one length"),
    ({"gen_length": [128, 128]}, "eval.gen_length: lengths must be distinct"),
    ({"gen_length": [128, 256], "steps": 12}, "eval: evaluation at gen_length 256: steps (12) must be divisible"),
    ({"every": 10, "num_examples": None}, "eval.batch_rows: evaluating the whole test split"),
])
def test_bad_eval_settings_are_one_line(section, message):
    with pytest.raises(ValueError) as err:
        RunConfig.parse({"task": {"name": "countdown"}, "eval": section})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_lengths_default_to_the_sampler_and_the_whole_split_needs_a_batch_size():
    cfg = RunConfig.parse({"task": {"name": "countdown"}, "sampler": {"gen_length": 64}})
    assert cfg.eval.lengths(cfg.sampler.gen_length) == [64] and [s.steps for s in cfg.eval.samplers(64)] == [32]
    cfg = RunConfig.parse({"task": {"name": "countdown"}, "eval": {"every": 5, "num_examples": None, "batch_rows": 8,
                                                                   "gen_length": [128, 256, 512], "steps": 64}})
    assert [(s.gen_length, s.steps) for s in cfg.eval.samplers(256)] == [(128, 64), (256, 64), (512, 64)]
    assert (eval_chunks(1319, 8, 32), eval_chunks(20, 8, 32), eval_chunks(1319, 8, None)) == (42, 8, 8)


def test_several_lengths_average_per_problem():
    v = lambda points, total=1.0, ok=True: Verdict(reward=0.0, points=points, total=total, well_formed=ok)  # noqa: E731
    per_length = {128: [v(1), v(0), v(0, ok=False)], 256: [v(1), v(1), v(0)]}
    items = across_lengths(per_length)
    assert [(i.points, i.well_formed) for i in items] == [(1.0, 1.0), (0.5, 1.0), (0.0, 0.5)]
    metrics = eval_metrics(per_length)
    assert metrics["eval/accuracy"] == pytest.approx(50.0)  # (33.3 + 66.7) / 2: the mean over the lengths
    assert metrics["eval/128/accuracy"] == pytest.approx(100 / 3) and metrics["eval/256/items"] == 3.0
    # one length: exactly the summary of its verdicts, no per-length keys
    assert eval_metrics({128: per_length[128]}) == summarize(per_length[128]).as_dict()
    # Sudoku-style totals (cells) average as cells
    cells = across_lengths({1: [v(4, 8)], 2: [v(8, 8)]})
    assert (cells[0].points, cells[0].total) == (6.0, 8.0)


def test_the_loop_evaluates_every_length_with_the_given_steps(warm_dir, tmp_path):
    cfg = RunConfig.parse({
        "model": {"path": str(warm_dir), "device": "cpu", "lora": {"r": 4, "alpha": 8, "dropout": 0.0}},
        "checkpoint": {"dir": str(tmp_path)}, "task": WARM_TASK,
        "sampler": {"gen_length": 24, "steps": 12, "block_length": 24, "temperature": 1.0},
        "algorithm": {"name": "diffu_grpo", "diffu_grpo": {"num_iterations": 1}},
        "train": {"steps": 0, "prompts_per_step": 2, "group_size": 2},
        "eval": {"before": True, "after": True, "num_examples": 5, "batch_rows": 2, "gen_length": [16, 24],
                 "steps": 8}})
    summary = run(cfg, on_step=lambda *_: None)
    files = sorted(p.name for p in (tmp_path / "eval").iterdir())
    assert files == ["step_000000_16_generations.json", "step_000000_24_generations.json"]
    written = json.loads((tmp_path / "eval" / files[0]).read_text())
    assert (written["gen_length"], written["diffusion_steps"], len(written["generations"])) == (16, 8, 5)
    record = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()][-1]
    assert record["eval/accuracy"] == pytest.approx((record["eval/16/accuracy"] + record["eval/24/accuracy"]) / 2)
    assert summary["eval_items"] == 5 and summary["accuracy_after"] == pytest.approx(record["eval/accuracy"], abs=0.01)
