"""What every task provides: typed examples in, typed rewards and evaluation scores out.

A task is a stateless object (see `registry.py`); all data flows through frozen dataclasses.
`Task` is the minimum (data, prompt, reward: what a plug-in task writes, docs/custom-tasks.md);
`PaperTask` is the papers' tasks, with every capability. Their rewards follow d1's
`diffu-grpo/reward_func.py` ("d1" set, quirks included), a repaired variant ("fixed" set) or
AGRPO's `rewards.py` ("agrpo" set); evaluation scores follow d1's `eval/parse_and_get_acc.py`
("d1" protocol), its documented intent ("fixed" protocol) or AGRPO's `eval.py` ("agrpo" protocol).
Prompt styles: d1's, one-line ("compact", Countdown and Sudoku) and AGRPO's (a system turn,
`<think>` tags; `agrpo.py`).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

from dllmrl_core.tasks import agrpo
from dllmrl_core.tasks.results import EvalScore, RewardResult
from dllmrl_core.tasks.sources import read_rows

RewardSet = Literal["d1", "fixed", "agrpo"]
PromptStyle = Literal["d1", "compact", "agrpo"]
EvalProtocol = Literal["d1", "fixed", "agrpo"]

REWARD_SETS: tuple[str, ...] = ("d1", "fixed", "agrpo")
EVAL_PROTOCOLS: tuple[str, ...] = ("d1", "fixed", "agrpo")

# d1 appends this after the rendered chat template for every evaluation prompt (`add_reasoning=True`
# in d1 eval/gsm8k.py `create_prompt`). Compact and AGRPO prompts have no prefill.
REASONING_PREFILL = "<reasoning>"

E = TypeVar("E")


def accuracy(scores: Iterable[EvalScore]) -> float:
    """Sum of correct over sum of total, as a fraction (0 for an empty set)."""
    scores = list(scores)
    total = sum(s.total for s in scores)
    return sum(s.correct for s in scores) / total if total else 0.0


def well_formed_share(scores: Iterable[EvalScore]) -> float:
    """Fraction of completions from which an answer could be extracted."""
    scores = list(scores)
    return sum(s.well_formed for s in scores) / len(scores) if scores else 0.0


@dataclass(frozen=True)
class LoadResult(Generic[E]):
    """Examples read from one source; malformed rows are skipped and counted, never fatal.

    filtered counts well-formed rows deliberately left out (e.g. Countdown rows whose number count
    differs from the one asked for).
    """

    examples: list[E]
    skipped: int
    source: str
    filtered: int = 0
    first_skip: str = ""  # why the first skipped row was skipped

    def describe(self) -> str:
        """`N examples from SOURCE` and, if any, the skipped rows and why the first one was."""
        skipped = f"; {self.skipped} rows skipped (first: {self.first_skip})" if self.skipped else ""
        filtered = f"; {self.filtered} left out by the task's filters" if self.filtered else ""
        return f"{len(self.examples)} examples from {self.source}{skipped}{filtered}"


def content_id(task: str, *parts: str) -> str:
    """A stable id from the example's content (independent of file order)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{task}/{digest[:16]}"


def describe(value: Any, limit: int = 60) -> str:
    """A short one-line rendering of a value read from a file, for error messages (never raises:
    an integer too long to print, or any other value JSON cannot write, shows as its type)."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_choice(value: str, valid: Iterable[str], what: str) -> str:
    valid = tuple(valid)
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")
    return value


class Task(ABC, Generic[E]):
    """One task: where its examples come from, the prompt, the reward. That is all a plug-in
    task must write (`parse_row`, `train_prompt`, `reward`); the rest has defaults.

    The evaluation prompt defaults to the training prompt and the evaluation score to the reward
    read as points out of `max_reward`. Tasks that take part in more (d1's reward sets, warm-start
    solutions, d1's evaluation files) say so through the capabilities below (`PaperTask` has all).
    """

    name: str = ""
    prompt_styles: tuple[str, ...] = ("d1",)  # "d1" is the config's default style: a plain task's only one
    reward_sets: tuple[str, ...] = ()  # () = `reward(completion, example)` is the task's only reward
    eval_protocols: tuple[str, ...] = ()  # () = `score` has one protocol
    max_reward: float = 1.0  # the reward a fully correct completion earns (the default score's total)

    # --- data ---------------------------------------------------------------------------------
    @abstractmethod
    def parse_row(self, row: Mapping[str, Any]) -> E:
        """One example from a raw record; raises ValueError/KeyError/TypeError when malformed."""

    def load(self, source: str, limit: int | None = None) -> LoadResult[E]:
        """Read a local file (.jsonl, .json, .csv, .parquet), a datasets directory saved with
        `save_to_disk`, or `hub:<dataset>[:<config>]:<split>`; with `limit`, only its first rows
        (malformed ones included). The first malformed row's reason is kept for the error message."""
        rows, where = read_rows(source)
        rows = rows[:limit]
        examples: list[E] = []
        skipped, first = 0, ""
        for row in rows:
            try:
                if row is None:
                    raise ValueError("unreadable record")
                examples.append(self.parse_row(row))
            except (KeyError, TypeError, ValueError, OverflowError) as err:
                skipped += 1
                first = first or skip_reason(err, row)
        return LoadResult(examples=examples, skipped=skipped, source=where, first_skip=first)

    # --- prompts ------------------------------------------------------------------------------
    @abstractmethod
    def train_prompt(self, example: E, style: str = "d1") -> str:
        """User-message text of the training prompt."""

    def eval_prompt(self, example: E, style: str = "d1") -> str:
        """User-message text of the evaluation prompt (default: the training prompt)."""
        return self.train_prompt(example, style)

    def system_prompt(self, style: str = "d1") -> str | None:
        """The system turn of the chat, for styles that have one."""
        return None

    def messages(self, example: E, style: str = "d1", split: str = "train") -> list[dict[str, str]]:
        """The prompt as chat turns: the style's system turn, if any, then the user turn."""
        user = self.train_prompt(example, style) if split == "train" else self.eval_prompt(example, style)
        system = self.system_prompt(style)
        return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]

    def eval_prefill(self, style: str = "d1") -> str:
        """Text the caller appends after the rendered chat template at evaluation."""
        return ""

    def check_style(self, style: str) -> str:
        return check_choice(style, self.prompt_styles, f"prompt style for {self.name}")

    # --- rewards and scoring --------------------------------------------------------------------
    @abstractmethod
    def reward(self, completion: str, example: E) -> RewardResult:
        """Training reward of one decoded completion (special tokens already removed)."""

    def score(self, completion: str, example: E, protocol: str = "d1") -> EvalScore:
        """Evaluation score of one completion: the reward as points out of `max_reward`."""
        total = self.reward(completion, example).total
        return EvalScore(correct=min(max(total, 0.0), self.max_reward), total=self.max_reward, well_formed=True,
                         extracted=None)


@runtime_checkable
class ReferenceSolutions(Protocol):
    """A task that can write a correct completion for an example (the warm start's SFT data)."""

    def reference_completion(self, example: Any, style: str = "d1") -> str: ...


@runtime_checkable
class D1Records(Protocol):
    """A task whose examples round-trip through d1's evaluation files (`dllmrl score`)."""

    def from_d1_record(self, question: str, ground_truth: Any) -> Any: ...

    def d1_record(self, example: Any) -> tuple[str, Any]: ...


def require(task: Task, capability: type, needed_by: str) -> Any:
    """`task` if it has `capability`; otherwise a one-line ValueError naming what needs it."""
    if not isinstance(task, capability):
        wanted = ", ".join(n for n in vars(capability) if not n.startswith("_") and callable(getattr(capability, n)))
        raise ValueError(f"{needed_by} needs task {task.name or type(task).__name__!r} to provide {wanted} "
                         f"({capability.__name__}); it does not")
    return task


def reward_of(task: Task, completion: str, example: Any, reward_set: str) -> RewardResult:
    """The task's reward, under `reward_set` when the task has several."""
    if task.reward_sets:
        return task.reward(completion, example, reward_set)  # type: ignore[call-arg]
    return task.reward(completion, example)


def skip_reason(err: BaseException, row: Mapping[str, Any] | None) -> str:
    """Why a row was skipped, in a few words (a missing column lists the row's columns)."""
    if isinstance(err, KeyError) and row is not None:
        return f"no column {err.args[0]!r} (the row has {', '.join(map(str, row)) or 'no columns'})"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


class PaperTask(Task[E]):
    """A task of the papers (GSM8K, MATH-500, Countdown, Sudoku): every capability, d1's three
    reward sets and evaluation protocols, and d1's and AGRPO's prompt styles."""

    prompt_styles: tuple[str, ...] = ("d1", "agrpo")
    reward_sets: tuple[str, ...] = REWARD_SETS
    eval_protocols: tuple[str, ...] = EVAL_PROTOCOLS

    @abstractmethod
    def from_d1_record(self, question: str, ground_truth: Any) -> E:
        """The example behind one item of a d1 evaluation generations file (eval/eval.py)."""

    @abstractmethod
    def d1_record(self, example: E) -> tuple[str, Any]:
        """(question, ground_truth) as d1's eval/eval.py writes them; from_d1_record's inverse."""

    @abstractmethod
    def eval_prompt(self, example: E, style: str = "d1") -> str:
        """User-message text of the evaluation prompt (d1 eval/<task>.py)."""

    def system_prompt(self, style: str = "d1") -> str | None:
        """AGRPO's system turn (the other styles have none)."""
        return agrpo.SYSTEM[self.name] if self.check_style(style) == "agrpo" else None

    def eval_prefill(self, style: str = "d1") -> str:
        return REASONING_PREFILL if self.check_style(style) == "d1" else ""

    @abstractmethod
    def reference_completion(self, example: E, style: str = "d1") -> str:
        """A completion in the training format that earns full correctness reward."""

    def reward(self, completion: str, example: E, reward_set: str = "d1") -> RewardResult:
        """Training reward of one decoded completion (special tokens already removed)."""
        chosen = check_choice(reward_set, REWARD_SETS, "reward set")
        if chosen == "agrpo":
            return agrpo.reward(self.name, completion, example)
        return self.reward_d1(completion, example) if chosen == "d1" else self.reward_fixed(completion, example)

    @abstractmethod
    def reward_d1(self, completion: str, example: E) -> RewardResult:
        """d1's reward functions, quirks included."""

    @abstractmethod
    def reward_fixed(self, completion: str, example: E) -> RewardResult:
        """The same rewards with the quirks repaired."""

    @abstractmethod
    def score(self, completion: str, example: E, protocol: str = "d1") -> EvalScore:
        """Evaluation score of one generated completion."""


def render_prompts(tokenizer, task: Task, examples: list, style: str, split: str) -> list[str]:
    """Each example's prompt through the tokenizer's chat template, ready for generation (the
    evaluation prefill is the caller's to append)."""
    return [tokenizer.apply_chat_template(task.messages(example, style, split), add_generation_prompt=True,
                                          tokenize=False) for example in examples]
