"""Every shipped config loads, and the LLaDA-8B recipe files match their generator."""

import subprocess
import sys
from pathlib import Path

import pytest

from dllmrl_core.drive.config import SYSTEM_SECTIONS, RunConfig, load_run_config
from dllmrl_core.objectives import OBJECTIVES
from dllmrl_core.training.warm_start import SFTRunConfig
from services.settings import SystemConfig, load_system_config

ROOT = Path(__file__).resolve().parent.parent
RUN_CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if "sft" not in p.name)


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_run_config_loads(path):
    cfg = load_system_config(path)
    assert cfg.checkpoint.save_every % cfg.iterations == 0
    core = load_run_config(path)  # what the single-process loop reads: the same core sections
    assert type(core) is RunConfig and core.model_dump() == RunConfig.parse(
        {k: v for k, v in cfg.model_dump().items() if k not in SYSTEM_SECTIONS}).model_dump()


def test_the_system_sections_are_exactly_those_the_core_sets_aside():
    assert set(SystemConfig.model_fields) - set(RunConfig.model_fields) == set(SYSTEM_SECTIONS)
    with pytest.raises(ValueError, match="rollout: unknown key"):  # the core alone does not know them
        RunConfig.parse({"task": {"name": "countdown"}, "rollout": {"num_workers": 2}})


def test_sft_configs_load():
    from dllmrl_core.drive.config import load_config

    for path in (ROOT / "configs").glob("*sft*.yaml"):
        load_config(SFTRunConfig, path)


def test_llada_recipes_are_generated_and_cover_every_method_and_task():
    tasks = ("gsm8k", "math500", "countdown", "sudoku")
    assert sorted(p.name for p in (ROOT / "configs" / "llada8b").glob("*.yaml")) == sorted(
        f"{method}_{task}.yaml" for method in OBJECTIVES for task in tasks)
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "llada_configs.py"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    d1 = load_run_config(ROOT / "configs" / "llada8b" / "diffu_grpo_countdown.yaml")
    assert (d1.algorithm.diffu_grpo.num_iterations, d1.algorithm.diffu_grpo.epsilon, d1.optim.lr) == (8, 0.5, 3e-6)
    assert d1.model.lora.targets == "d1_compatible" and d1.sampler.block_length == 32


def recipe(name):
    return load_run_config(ROOT / "configs" / "llada8b" / f"{name}.yaml")


def test_every_recipe_evaluates_every_test_problem_at_d1s_three_lengths():
    for path in sorted((ROOT / "configs" / "llada8b").glob("*.yaml")):
        cfg = load_run_config(path)
        assert cfg.eval.num_examples is None and cfg.eval.lengths(cfg.sampler.gen_length) == [128, 256, 512]
        assert [s.steps for s in cfg.eval.samplers(cfg.sampler.gen_length)] == [64, 128, 256], path.name


def own_data(method: str, task: str) -> bool:
    """Whether the method's recipe names its own data for the task (else d1's)."""
    return any(k.endswith("_source") for k in OBJECTIVES[method].recipe(task).get("task", {}))


def test_each_recipe_trains_and_tests_on_its_papers_data():
    # d1's data wherever a recipe names none (d1, SAPO and EGSPO build on d1's code and data; DiSPO App. D.1
    # describes d1's sets)
    assert not any(own_data(m, t) for m in ("diffu_grpo", "sapo", "dispo", "egspo")
                   for t in ("countdown", "sudoku", "gsm8k"))
    for method in OBJECTIVES:
        countdown, sudoku, gsm8k = recipe(f"{method}_countdown").task, recipe(f"{method}_sudoku").task, \
            recipe(f"{method}_gsm8k").task
        if not own_data(method, "countdown"):
            assert countdown.source("train") == "hub:Jiayi-Pan/Countdown-Tasks-3to4:train"
            assert countdown.countdown.count == 3
            assert countdown.source("test") == "/mnt/shared/data/d1/countdown_cd3_test.jsonl"
        if not own_data(method, "sudoku"):
            assert (sudoku.source("train"), sudoku.source("test"), sudoku.test_subsample) == (
                "/mnt/shared/data/d1/4x4_sudoku_unique_puzzles.csv", "/mnt/shared/data/d1/4x4_test_sudoku.csv", 256)
        if not own_data(method, "gsm8k"):
            assert (gsm8k.prompt_style, gsm8k.reward_set, gsm8k.source("test")) == (
                "d1", "d1", "hub:openai/gsm8k:main:test")
    agrpo = {task: recipe(f"agrpo_{task}").task for task in ("gsm8k", "math500", "countdown", "sudoku")}
    assert all((t.prompt_style, t.reward_set, t.eval_protocol) == ("agrpo",) * 3 for t in agrpo.values())
    assert agrpo["gsm8k"].source("test") == "hub:madrylab/gsm8k-platinum:main:test"
    assert (agrpo["math500"].source("train"), agrpo["math500"].math.max_level, agrpo["math500"].exclude_test) == (
        "hub:qwedsacf/competition_math:train", 4, True)
    assert (agrpo["countdown"].train_rows, agrpo["countdown"].exclude_test) == (20000, True)
    assert (agrpo["sudoku"].source("train"), agrpo["sudoku"].source("test"), agrpo["sudoku"].train_rows) == (
        "/mnt/shared/data/spg/train_sudoku_split_new.csv", "/mnt/shared/data/spg/test_sudoku_split_new.csv", 20000)
    # generated problems stay for offline runs and the tiny CPU default
    assert load_run_config(ROOT / "configs" / "tiny_countdown.yaml").task.source("test") == "generate:256"


def test_a_partial_sampler_section_keeps_the_rl_defaults_it_leaves_out():
    from dllmrl_core.drive.config import RL_SAMPLER, RunConfig

    cfg = RunConfig.parse({"task": {"name": "countdown"}, "sampler": {"gen_length": 256}})
    assert cfg.sampler.gen_length == 256 and cfg.sampler.temperature == RL_SAMPLER["temperature"] > 0
    assert cfg.sampler.steps == RL_SAMPLER["steps"] and cfg.sampler.block_length == RL_SAMPLER["block_length"]


def test_gpu_md_shows_the_current_memory_plan_of_every_recipe():
    result = subprocess.run([sys.executable, "scripts/plan_table.py", "--check"], cwd=ROOT)
    assert result.returncode == 0, "run: python scripts/plan_table.py, and paste its table into docs/gpu.md"


def test_the_learner_scores_pi_old_for_the_mean_field_methods_and_the_sampler_records_it_for_the_others():
    assert [m for m in ("diffu_grpo", "sapo", "dispo", "agrpo", "egspo") if OBJECTIVES[m].OLD_LOGP == "learner"] == [
        "diffu_grpo", "sapo", "dispo"]
    assert OBJECTIVES["agrpo"].OLD_LOGP == OBJECTIVES["egspo"].OLD_LOGP == "sampler"


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_stale_rollouts_with_a_learner_side_old_policy_are_announced(name):
    from dllmrl_core.drive.config import RunConfig

    warned = OBJECTIVES[name].OLD_LOGP == "learner"
    data = {"task": {"name": "countdown"}, "algorithm": {"name": name}}
    assert RunConfig.parse(data).staleness_warning() is None  # on-policy: nothing to say
    note = RunConfig.parse({**data, "train": {"max_staleness": 1}}).staleness_warning()
    assert (note is not None) == warned
    if warned:
        assert "\n" not in note and note.startswith(f"train.max_staleness=1 with {name}") and "π_old" in note


def test_launch_prints_the_staleness_warning_once_before_starting(tmp_path, monkeypatch, capsys):
    import services.launch as launch

    monkeypatch.setattr(launch, "connect", lambda cfg, address=None: False)
    monkeypatch.setattr(launch, "run", lambda cfg: {})
    args = [str(ROOT / "configs" / "tiny_countdown.yaml"), "algorithm.name=dispo", "train.max_staleness=1",
            "warm_start=null", "plan.enforce=false", "status.enabled=false", f"checkpoint.dir={tmp_path}"]
    assert launch.main(args) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "train.max_staleness=1 with dispo" in warnings[0]
