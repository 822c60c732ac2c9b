"""TaskConfig: which task, which rewards and prompts, and where its train/test examples come from.

A source is a local file (.jsonl / .json / .csv / .parquet), `hub:<dataset>[:<config>]:<split>`
(needs the optional `datasets` package and a network), or `generate:<n>` for Countdown and Sudoku
(n problems from the seeded generator). An empty source means the task's default below.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import Field, model_validator

from dllmrl_core.configbase import ConfigModel
from dllmrl_core.tasks.base import LoadResult, Task
from dllmrl_core.tasks.countdown import CountdownExample
from dllmrl_core.tasks.countdown_gen import CountdownOptions, generate_countdown
from dllmrl_core.tasks.registry import get_task
from dllmrl_core.tasks.sudoku import SudokuExample
from dllmrl_core.tasks.sudoku_gen import SudokuOptions, generate_sudoku, split_grids

GENERATE_PREFIX = "generate:"
GENERATED_TASKS = ("countdown", "sudoku")
DEFAULT_SOURCES: dict[str, tuple[str, str]] = {  # (train, test), as d1 reads them
    "gsm8k": ("hub:openai/gsm8k:main:train", "hub:openai/gsm8k:main:test"),
    "math500": ("hub:ankner/math-500:train", "hub:HuggingFaceH4/MATH-500:test"),
    "countdown": ("generate:10000", "generate:256"),
    "sudoku": ("generate:10000", "generate:256"),
}
Split = Literal["train", "test"]


class TaskConfig(ConfigModel):
    """The task an RL run trains and evaluates on."""

    name: Literal["gsm8k", "math500", "countdown", "sudoku"] = Field(description="task name")
    reward_set: Literal["d1", "fixed", "agrpo"] = Field(
        "d1", description="d1's rewards with their quirks, repaired, or AGRPO's (think/answer format, Math-Verify)")
    prompt_style: Literal["d1", "compact", "agrpo"] = Field(
        "d1", description="d1's prompts, one-line (countdown/sudoku), or AGRPO's (system prompt, <think> tags)")
    eval_protocol: Literal["d1", "fixed", "agrpo"] = Field(
        "d1", description="answer parsing at evaluation: d1's, repaired, or AGRPO's (Math-Verify)")
    train_source: str = Field("", description="file, hub:<dataset>[:<config>]:<split> or generate:<n> ('' = default)")
    test_source: str = Field("", description="file, hub:<dataset>[:<config>]:<split> or generate:<n> ('' = default)")
    seed: int = Field(0, description="seed of the generated problems")
    countdown: CountdownOptions = Field(default_factory=CountdownOptions)
    sudoku: SudokuOptions = Field(default_factory=SudokuOptions)

    @model_validator(mode="after")
    def _check(self) -> TaskConfig:
        task = get_task(self.name)
        if self.prompt_style not in task.prompt_styles:
            raise ValueError(f"prompt_style {self.prompt_style!r} is not available for {self.name} "
                             f"(valid: {', '.join(task.prompt_styles)})")
        for split in ("train", "test"):
            source = self.source(split)
            if source.startswith(GENERATE_PREFIX):
                if self.name not in GENERATED_TASKS:
                    raise ValueError(f"{split}_source: {self.name} has no generator (use a file or hub: source)")
                if not source[len(GENERATE_PREFIX):].isdigit() or int(source[len(GENERATE_PREFIX):]) < 1:
                    raise ValueError(f"{split}_source: expected generate:<n> with n >= 1, got {source!r}")
        return self

    @property
    def task(self) -> Task:
        return get_task(self.name)

    def source(self, split: Split) -> str:
        given = self.train_source if split == "train" else self.test_source
        return given or DEFAULT_SOURCES[self.name][0 if split == "train" else 1]


def split_seed(seed: int, split: str) -> int:
    """Independent generator seeds for the train and test parts of one config."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{split}".encode()).digest()[:8], "big")


def load_split(config: TaskConfig, split: Split) -> LoadResult:
    """The examples of one split, from a file, the hub or the generator.

    Generated training problems never include a test problem (same numbers and target, or the
    same puzzle): evaluation stays held out. The dropped ones are counted in `filtered`.
    """
    loaded = _load(config, split)
    if split != "train" or not config.source("train").startswith(GENERATE_PREFIX):
        return loaded
    held_out = {_problem_key(e) for e in _load(config, "test").examples}
    keep = [e for e in loaded.examples if _problem_key(e) not in held_out]
    return LoadResult(keep, loaded.skipped, loaded.source, loaded.filtered + len(loaded.examples) - len(keep))


def _problem_key(example) -> object:
    if isinstance(example, CountdownExample):
        return tuple(sorted(example.numbers)), example.target
    if isinstance(example, SudokuExample):
        return example.puzzle
    return example.id


def _load(config: TaskConfig, split: Split) -> LoadResult:
    source = config.source(split)
    if source.startswith(GENERATE_PREFIX):
        n = int(source[len(GENERATE_PREFIX):])
        if config.name == "countdown":
            problems = generate_countdown(n, split_seed(config.seed, split), config.countdown)
            examples = [CountdownExample(nums, target, reference) for nums, target, reference in problems]
        else:
            grids = _sudoku_grids(config, split)
            pairs = generate_sudoku(n, split_seed(config.seed, split), config.sudoku, grids)
            examples = [SudokuExample(puzzle, solution) for puzzle, solution in pairs]
        return LoadResult(examples=examples, skipped=0, source=source)
    loaded = config.task.load(source)
    if config.name == "countdown":
        keep = [e for e in loaded.examples if len(e.numbers) == config.countdown.count]
        return LoadResult(keep, loaded.skipped, loaded.source, len(loaded.examples) - len(keep))
    if config.name == "sudoku" and config.sudoku.solution_disjoint:
        grids = set(_sudoku_grids(config, split))
        keep = [e for e in loaded.examples if e.solution in grids]
        return LoadResult(keep, loaded.skipped, loaded.source, len(loaded.examples) - len(keep))
    return loaded


def _sudoku_grids(config: TaskConfig, split: Split) -> list[str] | None:
    """The grids a split may use: all (None), or its part of the solution-disjoint split. When the
    test set is a file, its solutions are the test grids and every other grid is for training."""
    options = config.sudoku
    if not options.solution_disjoint:
        return None
    test_source = config.source("test")
    holdout = None
    if not test_source.startswith(GENERATE_PREFIX):
        holdout = {e.solution for e in config.task.load(test_source).examples}
    train, test = split_grids(options.split_seed, options.train_grids, holdout)
    return train if split == "train" else test
