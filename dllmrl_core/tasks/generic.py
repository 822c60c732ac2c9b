"""The generic task: a dataset, a column mapping, a prompt template and weighted rewards from
`reward_library.py` or the user's own `module:function` (docs/custom-tasks.md). No code needed:

    task:
      name: generic
      train_source: data/train.jsonl
      generic:
        columns: {prompt: question, answer: result}
        template: "{prompt} Answer inside <answer></answer>."
        rewards: [{name: numeric_match, weight: 1.0}, {name: format_tags, weight: 0.2}]
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from pydantic import Field, field_validator, model_validator

from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.tasks.base import Task, content_id
from dllmrl_core.tasks.registry import import_object
from dllmrl_core.tasks.results import EvalScore, RewardResult
from dllmrl_core.tasks.reward_library import LIBRARY, Extraction, GenericExample, Reward


class Columns(ConfigModel):
    """Which column of a row holds the prompt and which the reference answer."""

    prompt: str = Field("prompt", description="column of the question or problem text")
    answer: str = Field("answer", description="column of the reference answer (or, for code_tests, the tests)")


class RewardSpec(ConfigModel):
    """One reward of the sum."""

    name: str = Field(description=f"a library reward ({', '.join(LIBRARY)}) or module:function "
                                  "(completion, example) -> float")
    weight: float = Field(1.0, description="its weight in the reward sum")

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in LIBRARY and ":" not in value:
            raise ValueError(f"unknown reward {value!r}; valid: {', '.join(LIBRARY)} or module:function")
        return value

    @property
    def label(self) -> str:
        """The component's name in the metrics (a function's own name for module:function)."""
        return self.name.rpartition(":")[2].rpartition(".")[2]


class GenericOptions(ConfigModel):
    """A task from a dataset and a config alone (`task.name: generic`)."""

    columns: Columns = Field(default_factory=Columns)
    template: str = Field("{prompt}", description="the user message; {prompt}, {answer} and any other "
                                                  "column name in braces are filled from the row")
    rewards: list[RewardSpec] = Field(min_length=1, description="the rewards summed, each with its weight")
    answer_tag: str | None = Field("answer", description="rewards read the last <tag>...</tag> block; "
                                                         "null = the whole completion")
    score_with: str | None = Field(None, description="the reward (by name) whose value 1 counts as correct at "
                                                     "evaluation; null = the first of `rewards`")
    code_timeout_s: float = Field(5.0, gt=0, description="time limit of one code_tests run")

    @model_validator(mode="after")
    def _check(self) -> GenericOptions:
        names = [spec.name for spec in self.rewards]
        labels = [spec.label for spec in self.rewards]
        if len(set(labels)) < len(labels):
            raise ValueError(f"rewards: two rewards share a name ({', '.join(labels)})")
        if self.score_with is not None and self.score_with not in names:
            raise ValueError(f"score_with {self.score_with!r} is not one of the rewards ({', '.join(names)})")
        for spec in self.rewards:
            if ":" in spec.name:
                resolve(spec)  # import errors now, in one line, not in a verifier process later
        return self


def resolve(spec: RewardSpec) -> Reward:
    """The reward function `spec` names, as (completion, example) -> float."""
    if spec.name in LIBRARY:
        return LIBRARY[spec.name]
    found = import_object(spec.name, "reward")
    if not callable(found):
        raise ValueError(f"reward {spec.name!r} is not a function")
    return found


class GenericTask(Task[GenericExample]):
    """Rows to examples through the column mapping, prompts through the template, the reward as the
    weighted sum. Correct at evaluation: the `score_with` reward reaches 1."""

    name = "generic"

    def __init__(self, options: GenericOptions):
        self.options = options
        how = Extraction(options.answer_tag, options.code_timeout_s)
        self.rewards = [(spec, partial(LIBRARY[spec.name], how=how) if spec.name in LIBRARY else resolve(spec))
                        for spec in options.rewards]
        self.scorer = options.score_with or options.rewards[0].name
        self.extraction = how

    def parse_row(self, row: Mapping[str, Any]) -> GenericExample:
        cols = self.options.columns
        prompt, answer = row[cols.prompt], row[cols.answer]
        if prompt is None or answer is None or not str(prompt).strip():
            raise ValueError(f"empty {cols.prompt!r} or {cols.answer!r}")
        prompt, answer = str(prompt), str(answer)
        return GenericExample(id=content_id("generic", prompt, answer), prompt=prompt, answer=answer,
                              fields=dict(row))

    def train_prompt(self, example: GenericExample, style: str = "d1") -> str:
        try:
            return self.options.template.format_map({**example.fields, "prompt": example.prompt,
                                                     "answer": example.answer})
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"task.generic.template: cannot fill it from a row "
                             f"({type(err).__name__}: {err})") from None

    def reward(self, completion: str, example: GenericExample) -> RewardResult:
        return RewardResult.of(**{spec.label: spec.weight * float(fn(completion, example))
                                  for spec, fn in self.rewards})

    def score(self, completion: str, example: GenericExample, protocol: str = "d1") -> EvalScore:
        """Correct when the `score_with` reward reaches 1; only that reward runs (a code_tests reward
        starts a sandboxed process, so the others are not run again here)."""
        fn = next(fn for spec, fn in self.rewards if spec.name == self.scorer)
        value = float(fn(completion, example))
        answer = self.extraction.answer(completion)
        return EvalScore(correct=float(value >= 1.0), total=1.0, well_formed=answer is not None, extracted=answer)
