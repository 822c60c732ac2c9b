"""The README's main command, shortened: the embedded default config through `services.launch`
with a short warm start, 2 RL steps and a 16-problem evaluation (the full run is a demo, not a test).

The warm start it builds starts from the session's warm-started model (`warm_dir`, which already
solves some two-number Countdown) on that easier task: 150 SFT steps from random weights solved
nothing, so every group's rewards were equal and 2 steps could train nothing, depending on luck."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import WARM_TASK

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[1]


def test_shortened_default_run_trains_scores_and_evaluates(tmp_path, warm_dir):
    run = tmp_path / "run"
    easier = [f"task.countdown.{key}={value}" for key, value in WARM_TASK["countdown"].items()]
    overrides = [f"model.path={tmp_path / 'sft'}", f"warm_start.out={tmp_path / 'sft'}", f"warm_start.base={warm_dir}",
                 "warm_start.sft.steps=30", f"task.train_source={WARM_TASK['train_source']}", *easier,
                 "train.steps=2", "eval.num_examples=16", f"checkpoint.dir={run}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0", "RAY_ADDRESS": "local"}  # never join another test's cluster
    proc = subprocess.run([sys.executable, "-m", "services.launch", "configs/tiny_countdown.yaml", *overrides],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["steps"] == 2
    for key in ("accuracy_before", "accuracy_after", "ci95", "wall_s", "well_formed_before", "well_formed_after"):
        assert isinstance(summary[key], (int, float)), key
    assert any(line.startswith("status: http://") for line in lines), "no status URL printed"
    printed = proc.stdout + proc.stderr  # actor output is forwarded with a "(Controller pid=...)" prefix
    assert "eval at step 0: accuracy" in printed and "eval at step 2: accuracy" in printed

    # parameters changed: LoRA's B matrices start at zero, so any non-zero B was trained
    adapter = load_file(run / "final" / "adapter" / "adapter_model.safetensors")
    lora_b = [t for name, t in adapter.items() if "lora_B" in name]
    assert lora_b and max(float(t.abs().max()) for t in lora_b) > 0, "the adapter was not updated"
    assert summary["adapter_norm"] > 0 and torch.isfinite(torch.tensor(summary["adapter_norm"]))

    # rewards were scored for both steps, with d1's countdown components
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    scored = [r for r in records if "reward/mean" in r]
    assert [r["step"] for r in scored] == [1, 2], scored
    assert all(0.0 <= r["reward/mean"] <= 1.0 and "reward/timeouts" in r for r in scored)

    # the evaluation wrote its per-item generations (d1 layout) and the curve
    for step in (0, 2):
        generations = json.loads((run / "eval" / f"step_{step:06d}_generations.json").read_text())
        assert len(generations["generations"]) == 16
        assert {"question", "generations", "ground_truth", "correct"} <= set(generations["generations"][0])
    assert (run / "curve.png").stat().st_size > 1000
