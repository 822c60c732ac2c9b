"""What every reasoning task provides: typed examples in, typed rewards and evaluation scores out.

A task is a stateless object (see `registry.TASKS`); all data flows through the frozen dataclasses
below. Rewards follow d1's `diffu-grpo/reward_func.py` ("d1" set, quirks included), a repaired
variant ("fixed" set) or AGRPO's `rewards.py` ("agrpo" set); evaluation scores follow d1's
`eval/parse_and_get_acc.py` ("d1" protocol), its documented intent ("fixed" protocol) or AGRPO's
`eval.py` ("agrpo" protocol). Prompt styles: d1's, one-line ("compact", Countdown and Sudoku) and
AGRPO's (a system turn, `<think>` tags; `agrpo.py`).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

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
    """One reasoning task: data, prompts, rewards and evaluation scoring."""

    name: str = ""
    prompt_styles: tuple[str, ...] = ("d1", "agrpo")

    # --- data ---------------------------------------------------------------------------------
    @abstractmethod
    def parse_row(self, row: Mapping[str, Any]) -> E:
        """One example from a raw record; raises ValueError/KeyError/TypeError when malformed."""

    def load(self, source: str, limit: int | None = None) -> LoadResult[E]:
        """Read a local file (.jsonl, .json, .csv, .parquet) or `hub:<dataset>[:<config>]:<split>`;
        with `limit`, only its first rows (malformed ones included)."""
        rows, where = read_rows(source)
        rows = rows[:limit]
        examples: list[E] = []
        skipped = 0
        for row in rows:
            try:
                if row is None:
                    raise ValueError("unreadable record")
                examples.append(self.parse_row(row))
            except (KeyError, TypeError, ValueError, OverflowError):
                skipped += 1
        return LoadResult(examples=examples, skipped=skipped, source=where)

    @abstractmethod
    def from_d1_record(self, question: str, ground_truth: Any) -> E:
        """The example behind one item of a d1 evaluation generations file (eval/eval.py)."""

    @abstractmethod
    def d1_record(self, example: E) -> tuple[str, Any]:
        """(question, ground_truth) as d1's eval/eval.py writes them; from_d1_record's inverse."""

    # --- prompts ------------------------------------------------------------------------------
    @abstractmethod
    def train_prompt(self, example: E, style: str = "d1") -> str:
        """User-message text of the training prompt (d1 diffu-grpo/data_utils.py)."""

    @abstractmethod
    def eval_prompt(self, example: E, style: str = "d1") -> str:
        """User-message text of the evaluation prompt (d1 eval/<task>.py)."""

    def system_prompt(self, style: str = "d1") -> str | None:
        """The system turn of the chat, for styles that have one (AGRPO's)."""
        return agrpo.SYSTEM[self.name] if self.check_style(style) == "agrpo" else None

    def messages(self, example: E, style: str = "d1", split: str = "train") -> list[dict[str, str]]:
        """The prompt as chat turns: the style's system turn, if any, then the user turn."""
        user = self.train_prompt(example, style) if split == "train" else self.eval_prompt(example, style)
        system = self.system_prompt(style)
        return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]

    def eval_prefill(self, style: str = "d1") -> str:
        """Text the caller appends after the rendered chat template at evaluation."""
        return REASONING_PREFILL if self.check_style(style) == "d1" else ""

    @abstractmethod
    def reference_completion(self, example: E, style: str = "d1") -> str:
        """A completion in the training format that earns full correctness reward."""

    def check_style(self, style: str) -> str:
        return check_choice(style, self.prompt_styles, f"prompt style for {self.name}")

    # --- rewards and scoring --------------------------------------------------------------------
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
