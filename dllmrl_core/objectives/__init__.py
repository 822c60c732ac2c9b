"""The RL objectives, one file each, in one plain registry that everything else reads.

`Objective` below is what every objective module provides: its Config, the hooks the sampler, the
learner and the memory planner call, its paper's recipe and its own cross-section checks. The run
config's `algorithm` section, the LLaDA-8B config generator, the comparison script, the benchmarks,
the docs generator and the tests all take the method list and each method's defaults from
`OBJECTIVES`; adding a method is one file here plus its entry in the dict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import torch

from dllmrl_core.objectives import agrpo, diffu_grpo, dispo, egspo, espo, sapo, spg, wd1

if TYPE_CHECKING:
    from dllmrl_core.contract.configbase import ConfigModel
    from dllmrl_core.objectives.common import LossOutput, MemoryShape, PolicyTerm, RolloutOptions, SpecialTokens
    from dllmrl_core.contract.types import BranchSet, RolloutBatch, ScoredBatch


OldLogp = Literal["learner", "sampler", "none"]


@runtime_checkable
class Objective(Protocol):
    """An objective module. Config defaults are the paper's recipe; every hook is a plain function."""

    Config: type[ConfigModel]
    """its knobs (a ConfigModel), read from `algorithm.<name>`"""
    OLD_LOGP: OldLogp
    """where π_old comes from: scored by the learner when a batch arrives, recorded by the sampler, or
    none (a ratio-free objective)"""

    def recipe(self, task: str) -> dict[str, Any]:
        """The paper's LLaDA-8B-Instruct recipe for `task` as run-config sections that differ from d1's
        (scripts/llada_configs.py writes d1's and lays these over it section by section; `algorithm`
        holds this method's own keys; a `task` section that names a source replaces d1's data)."""

    def validate(self, run: Any) -> None:
        """Rules across sections of a RunConfig that holds this method; raises ValueError (one line
        naming the key). Its docstring's first line is what docs/configuration.md lists."""

    def rollout_options(self, cfg: Any, steps: int, batch_size: int, generator: torch.Generator) -> RolloutOptions:
        """What the sampler must record for this method."""

    def branch(self, model: Any, rollout: RolloutBatch, cfg: Any, sampler: Any,
               generator: torch.Generator) -> BranchSet | None:
        """Rollout-time branching (continuations, fillings, greedy completions), or None."""

    def num_iterations(self, cfg: Any) -> int:
        """μ: optimizer steps per generated batch."""

    def needs_ref(self, cfg: Any) -> bool:
        """Whether reference log-probs (adapters off) are needed."""

    def prepare(self, scored: ScoredBatch, cfg: Any, special: SpecialTokens,
                generator: torch.Generator) -> list[list[PolicyTerm]]:
        """[iteration][term]: advantages and log-prob queries of a scored batch."""

    def loss(self, term: PolicyTerm, logp: torch.Tensor, entropy: torch.Tensor, cfg: Any) -> LossOutput:
        """This chunk's share of the loss, from tensors only (never the model)."""

    def memory_shape(self, cfg: Any, sampler: Any, rows: int) -> MemoryShape:
        """Term sizes and rollout extras of a batch of `rows` rollouts (the memory plan)."""


OBJECTIVES: dict[str, Objective] = {"diffu_grpo": diffu_grpo, "sapo": sapo, "agrpo": agrpo, "dispo": dispo,
                                    "egspo": egspo, "espo": espo, "spg": spg, "wd1": wd1}


PAPER_TASKS = ("gsm8k", "math500", "countdown", "sudoku")  # the tasks the papers' recipes are written for


def task_recipe(method: str, task: str) -> dict[str, Any]:
    """The method's recipe for `task`; {} (the method's defaults) for a task no paper trained on,
    such as a plug-in or the generic task."""
    return get_objective(method).recipe(task) if task in PAPER_TASKS else {}


def get_objective(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise ValueError(f"unknown algorithm {name!r}; valid names: {', '.join(sorted(OBJECTIVES))}")
    return OBJECTIVES[name]
