"""The run configuration: one YAML file, validated into typed sections before any work starts.

Each component owns its section's model (defined next to its code); this module only composes
them, reads YAML, and applies dotted `key.path=value` overrides. Unknown keys, wrong types and
options of a method under another method's name are one-line errors naming the key.

    model:      dllmrl_core.training.policy.ModelConfig
    task:       dllmrl_core.tasks.TaskConfig
    sampler:    dllmrl_core.sampling.SamplerConfig
    algorithm:  name + one section per registered method (each method's own Config)
    optim:      dllmrl_core.training.optim.OptimConfig
    train:      TrainConfig (below)
    checkpoint: where checkpoints and metrics go, how a run resumes
    eval:       dllmrl_core.drive.heldout.EvalConfig (held-out evaluation)
    plan:       dllmrl_core.planning.PlanConfig (the memory plan checked before a run starts)
    logging:    dllmrl_core.drive.backends.LoggingConfig (where the metrics go)
    warm_start: dllmrl_core.training.warm_start.WarmStartConfig (optional)

The same file also holds the Ray system's sections (`SYSTEM_SECTIONS`: placement, rollout,
reward, learner, status). The Ray layer owns and validates them (services/settings.py,
`SystemConfig`); the single-process loop reads the file with `load_run_config`, which sets them
aside unread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import Field, create_model, field_validator, model_validator

from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.drive.backends import LoggingConfig
from dllmrl_core.drive.heldout import EvalConfig
from dllmrl_core.objectives import OBJECTIVES, get_objective
from dllmrl_core.planning import PlanConfig
from dllmrl_core.sampling import SamplerConfig
from dllmrl_core.tasks import ReferenceSolutions, TaskConfig
from dllmrl_core.training.learner import LearnSettings
from dllmrl_core.training.optim import OptimConfig
from dllmrl_core.training.policy import ModelConfig
from dllmrl_core.training.warm_start import WarmStartConfig
from dllmrl_core.verify.config import VerifyConfig

C = TypeVar("C", bound=ConfigModel)
RL_SAMPLER = {"gen_length": 128, "steps": 64, "block_length": 32, "temperature": 0.9}  # d1's rollout sampler
SYSTEM_SECTIONS = ("placement", "rollout", "reward", "learner", "status")  # services/settings.py owns these


class _Algorithm(ConfigModel):
    """`name` picks the method; each method's options live under its own name, so switching
    methods with `algorithm.name=...` keeps every section valid."""

    @property
    def selected(self) -> ConfigModel:
        """The chosen method's config."""
        return getattr(self, self.name)


# `name` and one section per registered method, each its module's Config (dllmrl_core.objectives.OBJECTIVES)
AlgorithmConfig = create_model(
    "AlgorithmConfig", __base__=_Algorithm, __module__=__name__, __doc__=_Algorithm.__doc__,
    name=(Literal[tuple(OBJECTIVES)], Field("diffu_grpo", description="the method to train with; its options are "
                                                                      "read from algorithm.<name>")),
    **{name: (objective.Config, objective.Config()) for name, objective in OBJECTIVES.items()})


class TrainConfig(ConfigModel):
    """Batch shape, length and seed of the RL run."""

    steps: int = Field(20, ge=0, description="optimizer steps (a new batch is generated every μ steps)")
    prompts_per_step: int = Field(4, ge=1, description="distinct prompts per generated batch")
    group_size: int = Field(8, ge=2, description="G completions per prompt (GRPO group)")
    seed: int = Field(0, description="seed of data order, sampling and every estimator draw")
    log_every: int = Field(1, ge=1, description="print a summary line every N steps")
    max_staleness: int = Field(0, ge=0, le=1, description="0 = on-policy; 1 = rollout of batch b+1 overlaps learning "
                                                          "on b (diffu_grpo, sapo, dispo: π_old is then the learner's "
                                                          "weights, not the sampler's; docs/methods.md)")


class CheckpointConfig(ConfigModel):
    """Where checkpoints, the resolved config and metrics go, and how a run resumes."""

    dir: str = Field("runs/rl", description="checkpoints, resolved config and metrics go here (shared storage)")
    save_every: int = Field(0, ge=0, description="save every N optimizer steps (0 = final only); a multiple of μ")
    keep: int = Field(2, ge=1, description="checkpoints kept (older ones are deleted)")
    resume: str | None = Field(None, description="'latest' or a checkpoint directory to continue from")


class RunConfig(ConfigModel):
    """One RL run: the sections below, each validated before any work starts."""

    model: ModelConfig = ModelConfig()
    task: TaskConfig
    sampler: SamplerConfig = SamplerConfig(**RL_SAMPLER)
    algorithm: AlgorithmConfig = AlgorithmConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    eval: EvalConfig = EvalConfig()
    plan: PlanConfig = PlanConfig()
    logging: LoggingConfig = LoggingConfig()
    verify: VerifyConfig = VerifyConfig()
    warm_start: WarmStartConfig | None = None

    @field_validator("sampler", mode="before")
    @classmethod
    def _rl_sampler_defaults(cls, value: Any) -> Any:
        """A partial sampler section keeps the RL defaults for the keys it leaves out (the class
        defaults are LLaDA generate()'s, greedy, which RL cannot use)."""
        return {**RL_SAMPLER, **value} if isinstance(value, dict) else value

    def staleness_warning(self) -> str | None:
        """The line services.launch prints when max_staleness = 1 meets a method whose π_old the
        learner takes from its own weights (docs/methods.md "Shared machinery", stale rollouts)."""
        if not self.train.max_staleness or get_objective(self.algorithm.name).OLD_LOGP != "learner":
            return None
        return (f"train.max_staleness=1 with {self.algorithm.name}: batch b is sampled with the weights of "
                f"version (b-1)·μ, one batch ({self.iterations} updates) behind the learner, but π_old in the "
                "ratio is the learner's weights at b·μ: ρ = 1 at the batch's first update and nothing corrects "
                "for the lag (docs/methods.md, Shared machinery: stale rollouts)")

    @property
    def iterations(self) -> int:
        """μ: optimizer steps per generated batch, for the chosen method."""
        return get_objective(self.algorithm.name).num_iterations(self.algorithm.selected)

    @model_validator(mode="after")
    def _fits_together(self) -> RunConfig:
        if self.checkpoint.save_every % self.iterations:
            raise ValueError(f"checkpoint.save_every ({self.checkpoint.save_every}) must be a multiple of the "
                             f"method's steps per batch ({self.iterations}): checkpoints fall between batches")
        if self.sampler.temperature <= 0:
            raise ValueError("sampler.temperature: RL needs sampled rollouts (temperature > 0)")
        if self.warm_start is not None:
            if self.model.path != self.warm_start.out:
                raise ValueError(f"model.path ({self.model.path}) is not warm_start.out ({self.warm_start.out}): the "
                                 "warm start builds only its own directory; remove the warm_start section to train "
                                 "from model.path")
            if not isinstance(self.task.task, ReferenceSolutions):
                raise ValueError(f"warm_start: task {self.task.name} has no reference_completion to fine-tune on; "
                                 "remove the warm_start section and name a checkpoint in model.path")
        get_objective(self.algorithm.name).validate(self)  # the method's own rules across sections
        try:
            self.eval.samplers(self.sampler.gen_length)
        except ValueError as err:  # eval.steps or a length that does not fit the blocks
            raise ValueError(f"eval: {err}") from None
        if self.eval.active and self.eval.num_examples is None and self.eval.batch_rows is None:
            raise ValueError("eval.batch_rows: evaluating the whole test split (num_examples null) needs a batch "
                             "size, so the memory plan can bound the evaluation")
        return self

    def learn_settings(self) -> LearnSettings:
        """What a learner reads of this config."""
        return LearnSettings(method=self.algorithm.name, algo=self.algorithm.selected, optim=self.optim,
                             total_steps=self.train.steps, seed=self.train.seed)


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


def read_config(path: str | Path, overrides: list[str] = ()) -> dict[str, Any]:
    """The YAML file as a dict, with the `key.path=value` overrides applied."""
    data = read_yaml(path)
    for item in overrides:
        apply_override(data, item)
    return data


def load_config(model: type[C], path: str | Path, overrides: list[str] = ()) -> C:
    """Read, override and validate; raises ValueError / FileNotFoundError with one line."""
    return model.parse(read_config(path, overrides))


def load_run_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    """The core sections of a run config file; the Ray system's sections are set aside unread."""
    data = read_config(path, overrides)
    return RunConfig.parse({k: v for k, v in data.items() if k not in SYSTEM_SECTIONS})


def dump_config(cfg: ConfigModel) -> str:
    """The fully resolved config as YAML (saved beside checkpoints and logs)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
