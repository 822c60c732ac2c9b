"""Every shipped config loads, and the LLaDA-8B recipe files match their generator."""

import subprocess
import sys
from pathlib import Path

import pytest

from dllmrl_core.config import load_run_config
from dllmrl_core.training.warm_start import SFTRunConfig

ROOT = Path(__file__).resolve().parent.parent
RUN_CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if "sft" not in p.name)


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_run_config_loads(path):
    cfg = load_run_config(path)
    assert cfg.checkpoint.save_every % cfg.iterations == 0


def test_sft_configs_load():
    from dllmrl_core.config import load_config

    for path in (ROOT / "configs").glob("*sft*.yaml"):
        load_config(SFTRunConfig, path)


def test_llada_recipes_are_generated_and_cover_every_method_and_task():
    assert len(list((ROOT / "configs" / "llada8b").glob("*.yaml"))) == 20
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "llada_configs.py"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    d1 = load_run_config(ROOT / "configs" / "llada8b" / "diffu_grpo_countdown.yaml")
    assert (d1.algorithm.diffu_grpo.num_iterations, d1.algorithm.diffu_grpo.epsilon, d1.optim.lr) == (8, 0.5, 3e-6)
    assert d1.model.lora.targets == "d1_compatible" and d1.sampler.block_length == 32


def test_a_partial_sampler_section_keeps_the_rl_defaults_it_leaves_out():
    from dllmrl_core.config import RL_SAMPLER, RunConfig

    cfg = RunConfig.parse({"task": {"name": "countdown"}, "sampler": {"gen_length": 256}})
    assert cfg.sampler.gen_length == 256 and cfg.sampler.temperature == RL_SAMPLER["temperature"] > 0
    assert cfg.sampler.steps == RL_SAMPLER["steps"] and cfg.sampler.block_length == RL_SAMPLER["block_length"]


def test_gpu_md_shows_the_current_memory_plan_of_every_recipe():
    result = subprocess.run([sys.executable, "scripts/plan_table.py", "--check"], cwd=ROOT)
    assert result.returncode == 0, "run: python scripts/plan_table.py, and paste its table into docs/gpu.md"


@pytest.mark.parametrize("name, warned", [("diffu_grpo", True), ("sapo", True), ("dispo", True),
                                          ("agrpo", False), ("egspo", False)])
def test_stale_rollouts_with_a_learner_side_old_policy_are_announced(name, warned):
    from dllmrl_core.config import RunConfig

    data = {"task": {"name": "countdown"}, "algorithm": {"name": name}}
    assert RunConfig.parse(data).staleness_warning() is None  # on-policy: nothing to say
    note = RunConfig.parse({**data, "train": {"max_staleness": 1}}).staleness_warning()
    assert (note is not None) == warned
    if warned:
        assert "\n" not in note and note.startswith(f"train.max_staleness=1 with {name}") and "π_old" in note


def test_launch_prints_the_staleness_warning_once_before_starting(tmp_path, monkeypatch, capsys):
    import services.launch as launch

    monkeypatch.setattr(launch, "connect", lambda cfg: False)
    monkeypatch.setattr(launch, "run", lambda cfg: {})
    args = [str(ROOT / "configs" / "tiny_countdown.yaml"), "algorithm.name=dispo", "train.max_staleness=1",
            "warm_start=null", "plan.enforce=false", "status.enabled=false", f"checkpoint.dir={tmp_path}"]
    assert launch.main(args) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "train.max_staleness=1 with dispo" in warnings[0]
