"""The run configuration: one YAML file, validated into typed sections before any work starts.

Each component owns its section's model (defined next to its code); this module only composes
them, reads YAML, and applies dotted `key.path=value` overrides. Unknown keys, wrong types and
options of a method under another method's name are one-line errors naming the key.

    model:      dllmrl_core.training.policy.ModelConfig
    task:       dllmrl_core.tasks.TaskConfig
    sampler:    dllmrl_core.sampling.SamplerConfig
    algorithm:  name + one section per method (each method's own Config)
    optim:      dllmrl_core.training.optim.OptimConfig
    train:      TrainConfig (below)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import Field, model_validator

from dllmrl_core.configbase import ConfigModel
from dllmrl_core.objectives import agrpo as _agrpo
from dllmrl_core.objectives import diffu_grpo as _diffu_grpo
from dllmrl_core.objectives import dispo as _dispo
from dllmrl_core.objectives import egspo as _egspo
from dllmrl_core.objectives import sapo as _sapo
from dllmrl_core.sampling import SamplerConfig
from dllmrl_core.tasks import TaskConfig
from dllmrl_core.training.optim import OptimConfig
from dllmrl_core.training.policy import ModelConfig

C = TypeVar("C", bound=ConfigModel)


class AlgorithmConfig(ConfigModel):
    """`name` picks the method; each method's options live under its own name, so switching
    methods with `algorithm.name=...` keeps every section valid."""

    name: Literal["diffu_grpo", "sapo", "agrpo", "dispo", "egspo"] = "diffu_grpo"
    diffu_grpo: _diffu_grpo.Config = _diffu_grpo.Config()
    sapo: _sapo.Config = _sapo.Config()
    agrpo: _agrpo.Config = _agrpo.Config()
    dispo: _dispo.Config = _dispo.Config()
    egspo: _egspo.Config = _egspo.Config()

    @property
    def selected(self) -> ConfigModel:
        """The chosen method's config."""
        return getattr(self, self.name)


class TrainConfig(ConfigModel):
    steps: int = Field(20, ge=0, description="optimizer steps (a new batch is generated every μ steps)")
    prompts_per_step: int = Field(4, ge=1, description="distinct prompts per generated batch")
    group_size: int = Field(8, ge=2, description="G completions per prompt (GRPO group)")
    seed: int = Field(0, description="seed of data order, sampling and every estimator draw")
    log_every: int = Field(1, ge=1, description="print a summary line every N steps")


class RunConfig(ConfigModel):
    model: ModelConfig = ModelConfig()
    task: TaskConfig
    sampler: SamplerConfig = SamplerConfig(gen_length=128, steps=64, block_length=32, temperature=0.9)
    algorithm: AlgorithmConfig = AlgorithmConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _fits_together(self) -> RunConfig:
        if self.sampler.temperature <= 0:
            raise ValueError("sampler.temperature: RL needs sampled rollouts (temperature > 0)")
        extra = self.algorithm.sapo.continuation_extra_masks
        if self.algorithm.name == "sapo" and extra % self.sampler.block_length:
            raise ValueError(f"algorithm.sapo.continuation_extra_masks ({extra}) must be a multiple of "
                             f"sampler.block_length ({self.sampler.block_length})")
        if self.algorithm.name == "sapo" and self.sampler.steps < 2:
            raise ValueError("sampler.steps: sapo needs at least 2 denoising steps")
        return self


def apply_override(data: dict[str, Any], override: str) -> None:
    """`a.b.c=value`, value parsed as YAML (numbers, booleans, lists); creates missing sections."""
    if "=" not in override:
        raise ValueError(f"override {override!r} is not key.path=value")
    key, raw = override.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"override {key}: {'.'.join(parts[: i + 1])} is not a section")
        node = child
    node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ValueError(f"{path}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the top level must be a mapping of sections")
    return data


def load_config(model: type[C], path: str | Path, overrides: list[str] = ()) -> C:
    """Read, override and validate; raises ValueError / FileNotFoundError with one line."""
    data = read_yaml(path)
    for item in overrides:
        apply_override(data, item)
    return model.parse(data)


def load_run_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    return load_config(RunConfig, path, overrides)


def dump_config(cfg: ConfigModel) -> str:
    """The fully resolved config as YAML (saved beside checkpoints and logs)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
