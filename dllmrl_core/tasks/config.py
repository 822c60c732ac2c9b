"""TaskConfig: which task, which rewards and prompts, and where its train/test examples come from.

A source is a local file (.jsonl / .json / .csv / .parquet; a relative path is read under
`data_dir`), `hub:<dataset>[:<config>]:<split>` (needs the optional `datasets` package and a
network), or `generate:<n>` for Countdown and Sudoku (n problems from the seeded generator). An
empty source means the task's default below. The papers' own data, as the LLaDA-8B recipes use it
(docs/methods.md, "Data"):

- d1 (diffu-GRPO; SAPO, DiSPO and EGSPO use d1's data): GSM8K from the hub (`openai/gsm8k`);
  MATH trains on `ankner/math-500` train and tests on `HuggingFaceH4/MATH-500`; Countdown trains
  on `Jiayi-Pan/Countdown-Tasks-3to4` (3 numbers) and tests on d1's `countdown_cd3_test.jsonl`;
  Sudoku trains on d1's `4x4_sudoku_unique_puzzles.csv` and tests on 256 of d1's
  `4x4_test_sudoku.csv` (`test_subsample`, d1's seeded draw).
- AGRPO: GSM8K tests on `madrylab/gsm8k-platinum`; MATH trains on `qwedsacf/competition_math`,
  levels ≤ 4, minus MATH-500's problems; Countdown on the first 20000 rows of
  Countdown-Tasks-3to4 minus the test problems; Sudoku on SPG's solution-disjoint split (the first
  20000 training rows).

Generated problems stay for offline runs and the tiny CPU default.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.tasks.base import LoadResult, Task
from dllmrl_core.tasks.countdown import CountdownExample
from dllmrl_core.tasks.countdown_gen import CountdownOptions, generate_countdown
from dllmrl_core.tasks.generic import GenericOptions, GenericTask
from dllmrl_core.tasks.gsm8k import GSM8KExample
from dllmrl_core.tasks.math500 import MathExample, MathOptions
from dllmrl_core.tasks.registry import get_task
from dllmrl_core.tasks.sources import HUB_PREFIX
from dllmrl_core.tasks.sudoku import SudokuExample
from dllmrl_core.tasks.sudoku_gen import SudokuOptions, generate_sudoku, split_grids

GENERATE_PREFIX = "generate:"
GENERATED_TASKS = ("countdown", "sudoku")
GENERIC = "generic"
DEFAULT_SOURCES: dict[str, tuple[str, str]] = {  # (train, test), as d1 reads them
    "gsm8k": ("hub:openai/gsm8k:main:train", "hub:openai/gsm8k:main:test"),
    "math500": ("hub:ankner/math-500:train", "hub:HuggingFaceH4/MATH-500:test"),
    "countdown": ("generate:10000", "generate:256"),
    "sudoku": ("generate:10000", "generate:256"),
}
Split = Literal["train", "test"]


class TaskConfig(ConfigModel):
    """The task an RL run trains and evaluates on."""

    name: str = Field(description="gsm8k, math500, countdown, sudoku, generic (a dataset and the `generic` "
                                  "section), module:Class of your own Task, or an entry point of group dllmrl.tasks")
    reward_set: Literal["d1", "fixed", "agrpo"] = Field(
        "d1", description="d1's rewards with their quirks, repaired, or AGRPO's (think/answer format, Math-Verify)")
    prompt_style: Literal["d1", "compact", "agrpo"] = Field(
        "d1", description="d1's prompts, one-line (countdown/sudoku), or AGRPO's (system prompt, <think> tags)")
    eval_protocol: Literal["d1", "fixed", "agrpo"] = Field(
        "d1", description="answer parsing at evaluation: d1's, repaired, or AGRPO's (Math-Verify)")
    train_source: str = Field("", description="file, hub:<dataset>[:<config>]:<split> or generate:<n> ('' = default)")
    test_source: str = Field("", description="file, hub:<dataset>[:<config>]:<split> or generate:<n> ('' = default)")
    data_dir: str = Field("", description="directory that relative file sources are read from ('' = the "
                                          "current directory)")
    train_rows: int | None = Field(None, ge=1, description="read only the first N rows of the training source "
                                                           "(AGRPO: 20000); None = all")
    exclude_test: bool = Field(False, description="leave out training problems that are also test problems "
                                                  "(always done for generated training problems)")
    test_subsample: int | None = Field(None, ge=1, description="evaluate N test problems drawn as d1's eval does "
                                                               "(numpy seed 42, without replacement); None = all")
    seed: int = Field(0, description="seed of the generated problems")
    countdown: CountdownOptions = Field(default_factory=CountdownOptions)
    sudoku: SudokuOptions = Field(default_factory=SudokuOptions)
    math: MathOptions = Field(default_factory=MathOptions)
    generic: GenericOptions | None = Field(None, description="the generic task's dataset columns, prompt "
                                                             "template and rewards (name: generic only)")

    @field_validator("name")
    @classmethod
    def _resolvable(cls, value: str) -> str:
        if value != GENERIC:
            get_task(value)  # a plug-in is imported here: a bad name fails before any work
        return value

    @model_validator(mode="after")
    def _check(self) -> TaskConfig:
        if (self.name == GENERIC) != (self.generic is not None):
            raise ValueError("generic: set this section exactly when name is generic")
        task = self.task
        if self.prompt_style not in task.prompt_styles:
            raise ValueError(f"prompt_style {self.prompt_style!r} is not available for {self.name} "
                             f"(valid: {', '.join(task.prompt_styles)})")
        for key, valid in (("reward_set", task.reward_sets), ("eval_protocol", task.eval_protocols)):
            if key in self.model_fields_set and getattr(self, key) not in valid:
                raise ValueError(f"{key}: task {self.name} has {', '.join(valid) or 'only its own'}")
        if self.name not in DEFAULT_SOURCES and not self.train_source:
            raise ValueError(f"train_source: task {self.name} has no default data; name a file or hub: source")
        for split in ("train", "test"):
            if self.name not in DEFAULT_SOURCES and not (self.train_source if split == "train" else self.test_source):
                continue
            source = self.source(split)
            if source.startswith(GENERATE_PREFIX):
                if self.name not in GENERATED_TASKS:
                    raise ValueError(f"{split}_source: {self.name} has no generator (use a file or hub: source)")
                if not source[len(GENERATE_PREFIX):].isdigit() or int(source[len(GENERATE_PREFIX):]) < 1:
                    raise ValueError(f"{split}_source: expected generate:<n> with n >= 1, got {source!r}")
        return self

    @property
    def task(self) -> Task:
        """The task object, resolved by name in whichever process asks (a plug-in is imported)."""
        return GenericTask(self.generic) if self.generic is not None else get_task(self.name)

    def source(self, split: Split) -> str:
        """The split's source, a relative file path resolved under data_dir."""
        given = self.train_source if split == "train" else self.test_source
        if not given and self.name not in DEFAULT_SOURCES:
            raise ValueError(f"task.{split}_source: task {self.name} has no default data; name a file")
        source = given or DEFAULT_SOURCES[self.name][0 if split == "train" else 1]
        if self.data_dir and not source.startswith((GENERATE_PREFIX, HUB_PREFIX)) and not Path(source).is_absolute():
            return str(Path(self.data_dir) / source)
        return source


def split_seed(seed: int, split: str) -> int:
    """Independent generator seeds for the train and test parts of one config."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{split}".encode()).digest()[:8], "big")


def load_split(config: TaskConfig, split: Split) -> LoadResult:
    """The examples of one split, from a file, the hub or the generator.

    Generated training problems never include a test problem (same numbers and target, the same
    puzzle or the same question), and with `exclude_test` no training problem does: evaluation
    stays held out. The dropped ones are counted in `filtered`. The test split is the first
    `test_subsample` of a seeded draw when that is set.
    """
    loaded = _load(config, split)
    if split == "test":
        return _subsample(loaded, config.test_subsample)
    if not (config.exclude_test or config.source("train").startswith(GENERATE_PREFIX)):
        return loaded
    held_out = {_problem_key(e) for e in _load(config, "test").examples}
    keep = [e for e in loaded.examples if _problem_key(e) not in held_out]
    return LoadResult(keep, loaded.skipped, loaded.source, loaded.filtered + len(loaded.examples) - len(keep),
                      loaded.first_skip)


def training_split(config: TaskConfig) -> LoadResult:
    """The training split; a one-line ValueError, counting the skipped rows and saying why the first
    was skipped, when nothing is left of it."""
    loaded = load_split(config, "train")
    if not loaded.examples:
        raise ValueError(f"task.train_source: no training examples ({loaded.describe()})")
    return loaded


def _subsample(loaded: LoadResult, n: int | None) -> LoadResult:
    """d1 eval/gsm8k.py: `np.random.seed(42)`, then `np.random.choice(len, n, replace=False)`, in
    that order (for d1's Sudoku file this selects exactly the 256 puzzles of its evaluation files)."""
    if n is None:
        return loaded
    if n > len(loaded.examples):
        raise ValueError(f"test_subsample ({n}) exceeds the {len(loaded.examples)} test problems of {loaded.source}")
    import numpy as np

    chosen = np.random.RandomState(42).choice(len(loaded.examples), n, replace=False)
    return LoadResult([loaded.examples[i] for i in chosen.tolist()], loaded.skipped, loaded.source,
                      loaded.filtered + len(loaded.examples) - n, loaded.first_skip)


def _problem_key(example) -> object:
    """What makes two problems the same (AGRPO compares Countdown's numbers in order, without the
    target; this key is the number multiset and the target)."""
    if isinstance(example, CountdownExample):
        return tuple(sorted(example.numbers)), example.target
    if isinstance(example, SudokuExample):
        return example.puzzle
    if isinstance(example, MathExample):
        return example.problem.strip()
    if isinstance(example, GSM8KExample):
        return example.question.strip()
    return getattr(example, "id", example)


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
    loaded = config.task.load(source, config.train_rows if split == "train" else None)
    if config.name == "countdown":
        keep = [e for e in loaded.examples if len(e.numbers) == config.countdown.count]
        return LoadResult(keep, loaded.skipped, loaded.source, len(loaded.examples) - len(keep), loaded.first_skip)
    if config.name == "math500" and split == "train" and config.math.max_level is not None:
        keep = [e for e in loaded.examples if e.level is not None and e.level <= config.math.max_level]
        return LoadResult(keep, loaded.skipped, loaded.source, len(loaded.examples) - len(keep), loaded.first_skip)
    if config.name == "sudoku" and config.sudoku.solution_disjoint:
        grids = set(_sudoku_grids(config, split))
        keep = [e for e in loaded.examples if e.solution in grids]
        return LoadResult(keep, loaded.skipped, loaded.source, len(loaded.examples) - len(keep), loaded.first_skip)
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
