"""One registry read by everything: every registered module satisfies the Objective protocol, and the
run config, the LLaDA-8B config generator and the error messages take their method list from it."""

import importlib.util
import inspect
import sys
import typing
from pathlib import Path

import pytest

from dllmrl_core.drive.config import AlgorithmConfig, RunConfig
from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.objectives import OBJECTIVES, Objective, OldLogp, get_objective

ROOT = Path(__file__).resolve().parents[3]
HOOKS = [name for name, value in vars(Objective).items() if inspect.isfunction(value) and not name.startswith("_")]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_protocol_names_the_documented_hooks():
    assert sorted(HOOKS) == sorted(["recipe", "validate", "rollout_options", "branch", "num_iterations", "needs_ref",
                                    "prepare", "loss", "memory_shape"])


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_every_registered_module_satisfies_the_protocol(name):
    module = OBJECTIVES[name]
    assert isinstance(module, Objective) and module.__name__ == f"dllmrl_core.objectives.{name}"  # file = key
    assert issubclass(module.Config, ConfigModel) and module.Config.__doc__
    assert module.OLD_LOGP in typing.get_args(OldLogp)
    for hook in HOOKS:  # the same parameters, in order, as the protocol (less `self`)
        expected = list(inspect.signature(getattr(Objective, hook)).parameters)[1:]
        assert list(inspect.signature(getattr(module, hook)).parameters) == expected, f"{name}.{hook}"
    cfg = module.Config()
    assert module.num_iterations(cfg) >= 1 and isinstance(module.needs_ref(cfg), bool)


def test_the_algorithm_section_is_the_registry():
    assert list(AlgorithmConfig.model_fields) == ["name", *OBJECTIVES]
    assert typing.get_args(AlgorithmConfig.model_fields["name"].annotation) == tuple(OBJECTIVES)
    for name, module in OBJECTIVES.items():
        assert AlgorithmConfig.model_fields[name].annotation is module.Config
        cfg = RunConfig.parse({"task": {"name": "countdown"}, "algorithm": {"name": name}})
        assert cfg.algorithm.selected == module.Config() and cfg.iterations == module.num_iterations(module.Config())


def test_unknown_names_fail_with_the_valid_list_everywhere(capsys):
    with pytest.raises(ValueError, match=", ".join(sorted(OBJECTIVES))):
        get_objective("ppo")
    with pytest.raises(ValueError) as err:
        RunConfig.parse({"task": {"name": "countdown"}, "algorithm": {"name": "ppo"}})
    assert all(repr(name) in str(err.value) for name in OBJECTIVES)
    generator = load_script("llada_configs")
    assert generator.main(["--check", "ppo"]) == 2
    assert ", ".join(sorted(OBJECTIVES)) in capsys.readouterr().err
    with pytest.raises(ValueError, match="valid names"):
        generator.config("ppo", "gsm8k")


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_each_recipe_config_is_the_methods_defaults_with_its_papers_values(name):
    generator = load_script("llada_configs")
    module = OBJECTIVES[name]
    for task in generator.TASKS:
        recipe = module.recipe(task)
        assert set(recipe) <= set(RunConfig.model_fields)
        generated = generator.config(name, task)  # a whole-system config: keep the run's sections
        cfg = RunConfig.parse({key: value for key, value in generated.items() if key in RunConfig.model_fields})
        expected = module.Config(**recipe.get("algorithm", {}))
        assert cfg.algorithm.name == name and cfg.algorithm.selected == expected
        assert cfg.checkpoint.save_every == 10 * cfg.iterations and cfg.eval.every == 20 * cfg.iterations


def test_a_methods_cross_section_rules_are_its_own():
    sapo = {"task": {"name": "countdown"}, "algorithm": {"name": "sapo"}}
    with pytest.raises(ValueError, match="continuation_extra_masks"):
        RunConfig.parse({**sapo, "algorithm": {"name": "sapo", "sapo": {"continuation_extra_masks": 8}}})
    with pytest.raises(ValueError, match="sampler.steps: sapo"):
        RunConfig.parse({**sapo, "sampler": {"steps": 1, "gen_length": 32, "block_length": 32}})
    # the same section is fine under another method: the rule belongs to sapo
    RunConfig.parse({"task": {"name": "countdown"}, "algorithm": {"name": "diffu_grpo"},
                     "sampler": {"steps": 1, "gen_length": 32, "block_length": 32}})
