"""scripts/compare_methods.py: the sweep picks each method's lr by training reward, seeds pair up,
forward sequences count the learner too; its statistics by hand."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import WARM_TASK

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("compare_methods", ROOT / "scripts" / "compare_methods.py")
compare = sys.modules["compare_methods"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare)


def runs(after: list[float], seeds: list[int] | None = None) -> list[dict]:
    return [{"seed": s, "accuracy_after": a} for s, a in zip(seeds or range(len(after)), after)]


def test_paired_difference_by_hand():
    # differences 5, 2, 5: mean 4, sd √3, half-width t(2) · √3 / √3 = 4.303
    mean, ci, n = compare.paired(runs([50, 40, 45]), runs([45, 38, 40]))
    assert (mean, n) == (4.0, 3)
    assert ci == pytest.approx(4.303)
    assert not compare.resolved(mean, ci)
    assert compare.resolved(*compare.paired(runs([50, 41, 45]), runs([45, 38, 40]))[:2])  # 5, 3, 5: 4.33 ± 2.87
    # only seeds both ran are paired
    assert compare.paired(runs([50, 40], [0, 7]), runs([45, 38], [0, 1]))[1:] == (pytest.approx(float("nan"),
                                                                                               nan_ok=True), 1)


def test_two_variants_of_one_method_are_two_named_rows():
    k1, k2 = "egspo:algorithm.egspo.num_steps=1", "egspo:optim.lr=3e-4,algorithm.egspo.num_steps=2"
    results = {label: [{**r, "delta": r["accuracy_after"] - 40, "well_formed_after": 100.0, "step_s": 0.5,
                        "forward_sequences": 100} for r in runs(after)]
               for label, after in ((k1, [50, 40, 45]), (k2, [45, 38, 40]))}
    rows = compare.table(results, steps=1, reference=k2).splitlines()
    assert "Δ vs egspo (algorithm.egspo.num_steps=2), paired" in rows[0]
    assert rows[2].startswith("| egspo (algorithm.egspo.num_steps=1) | config | 3 |")
    assert "+4.0 ± 4.3 |" in rows[2]  # the hand-computed pair above
    assert rows[3].startswith("| egspo (algorithm.egspo.num_steps=2) | 3e-4 | 3 |")
    pairs = compare.pairs_table(results).splitlines()
    assert pairs[0] == "| row − column | egspo (algorithm.egspo.num_steps=2) |"
    assert pairs[2] == "| egspo (algorithm.egspo.num_steps=1) | +4.0 ± 4.3 |"


def test_final_reward_is_the_last_quarter():
    result = {"reward": [(step, r) for step, r in enumerate([0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 0.4, 0.6], start=1)]}
    assert compare.final_reward(result) == pytest.approx(0.5)  # mean of the last 2 of 8


def test_the_sweep_goes_down_where_its_lowest_lr_collapsed(monkeypatch):
    def curve(start, end):  # 8 steps: the first quarter at `start`, the last at `end`
        return {"reward": [(i, start if i < 2 else end) for i in range(8)], "accuracy_after": 0.0}
    finals = {("wd1", "3e-4"): curve(0.3, 0.0), ("wd1", "1e-3"): curve(0.3, 0.0), ("wd1", "1e-4"): curve(0.3, 0.2),
              ("agrpo", "3e-4"): curve(0.3, 0.2), ("agrpo", "1e-3"): curve(0.3, 0.4)}
    ran = []

    def execute(specs, args):
        ran.append(sorted(s.label for s in specs))
        return {s: finals[s.method, s.label.partition("optim.lr=")[2]] for s in specs}
    monkeypatch.setattr(compare, "execute", execute)
    args = compare.parse_args(["cfg.yaml", "--lrs", "3e-4", "1e-3", "--methods", "wd1", "agrpo"])
    chosen, sweep = compare.choose_lrs(args.methods, args)
    assert ran[1] == ["wd1:optim.lr=1e-4"]  # only wd1's lowest (0.15 < ½ · 0.3) collapsed; agrpo's did not
    assert chosen == {"wd1": "wd1:optim.lr=1e-4", "agrpo": "agrpo:optim.lr=1e-3"}
    assert sorted(sweep["wd1"]) == ["1e-3", "1e-4", "3e-4"]
    assert (compare.lower("1e-3"), compare.lower("3e-4")) == ("3e-4", "1e-4")


def test_a_bad_command_line_is_one_error(capsys):
    for argv, words in ((["cfg.yaml", "--methods", "grpo"], "unknown method 'grpo'"),
                        (["cfg.yaml", "--lrs", "1e-3", "--seeds", "100"], "--sweep-seed 100 is one of --seeds"),
                        (["cfg.yaml", "--methods", "wd1", "--reference", "sapo"], "'sapo' is not among --methods")):
        with pytest.raises(SystemExit):
            compare.parse_args(argv)
        assert words in capsys.readouterr().err


def test_sweep_then_seeds_in_two_processes(warm_dir, tmp_path):
    cfg = {"model": {"path": str(warm_dir), "device": "cpu", "lora": {"r": 4, "alpha": 8, "dropout": 0.0}},
           "task": WARM_TASK, "sampler": {"gen_length": 24, "steps": 4, "block_length": 24, "temperature": 1.0},
           "algorithm": {"diffu_grpo": {"num_iterations": 1}, "wd1": {"num_iterations": 1}}, "optim": {"lr": 1e-3, "max_grad_norm": 1.0},
           "train": {"steps": 2, "prompts_per_step": 2, "group_size": 4}, "eval": {"num_examples": 8}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compare_methods.py"), str(tmp_path / "cfg.yaml"),
         "--methods", "diffu_grpo", "wd1", "--lrs", "1e-3", "3e-2", "--sweep-seed", "9", "--seeds", "0", "1",
         "--steps", "2", "--evals", "1", "--jobs", "2", "--threads", "1",
         "--runs", str(tmp_path / "runs"), "--docs", str(tmp_path / "docs")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    sweep = {(m, lr): json.loads((tmp_path / "runs" / f"{m}-optim.lr={lr}-s9" / "compare.json").read_text())
             for m in ("diffu_grpo", "wd1") for lr in ("1e-3", "3e-2")}
    text = (tmp_path / "docs" / "RESULTS.md").read_text()
    learning_rate = text.split("## Learning rate")[1].split("## Accuracy")[0]
    for m in ("diffu_grpo", "wd1"):
        best = max(("1e-3", "3e-2"), key=lambda lr: (compare.final_reward(sweep[m, lr]), -float(lr)))
        assert [r["seed"] for r in figures[f"{m}:optim.lr={best}"]] == [0, 1]
        assert learning_rate.count(f"| {m} | ") == 1 and f" | {best} |" in learning_rate.split(f"| {m} | ")[1]
    # per step: 8 rollouts × 4 denoising steps, then one learner row per rollout for the current policy;
    # diffu-GRPO adds its old log-probs and, at its default β = 0.04, the reference's (wd1: ratio-free, no KL)
    per_step = {"diffu_grpo": 8 * 4 + 8 + 8 + 8, "wd1": 8 * 4 + 8}
    for label, seeds in figures.items():
        assert all(r["forward_sequences"] == 2 * per_step[label.partition(":")[0]] for r in seeds), (label, seeds)
    assert "## Every pair" in text and "| row − column | wd1 |" in text
    assert (tmp_path / "docs" / "compare_curve.png").stat().st_size > 0
