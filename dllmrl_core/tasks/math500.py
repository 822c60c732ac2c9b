"""MATH: competition problems with a LaTeX final answer (MATH-500 for evaluation).

Rewards: d1 `diffu-grpo/reward_func.py` `correctness_reward_func_math` (2.0) and
`boxed_and_answer_tags_format_reward` (via math500_utils `boxed_in_answer`, 0.5 x (tag + box)).
Scoring: d1 `eval/parse_and_get_acc.py` `parse_math_answers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from dllmrl_core.contract.configbase import ConfigModel

from dllmrl_core.tasks import agrpo, prompts, tags
from dllmrl_core.tasks.base import EVAL_PROTOCOLS, PaperTask, check_choice, content_id, describe
from dllmrl_core.tasks.equivalence import math_equivalent
from dllmrl_core.tasks.hendrycks import boxed_answer, has_box, is_equiv
from dllmrl_core.tasks.results import EvalScore, RewardResult

# What d1 writes as "\boxed": Python reads "\b" as a backspace, so it tests for this string.
D1_BOXED_LITERAL = "\x08oxed"


class MathOptions(ConfigModel):
    """Which MATH training problems to keep."""

    max_level: int | None = Field(None, ge=1, le=5, description="keep training problems of level ≤ N (AGRPO: 4; "
                                                                "a problem without a level is left out); None = all")


@dataclass(frozen=True)
class MathExample:
    problem: str
    solution: str  # the worked solution ending in \boxed{answer} (d1 trains against this)
    answer: str    # the final answer (MATH-500's `answer` column; d1 evaluates against this)
    level: int | None = field(default=None, compare=False)  # 1-5 when the row has one ("Level 3" or 3)

    @property
    def id(self) -> str:
        return content_id("math500", self.problem, self.answer)


def d1_reward_answer(text: str) -> str:
    """d1's response extraction: the last box unwrapped, or the raw response when that fails."""
    boxed = boxed_answer(text)
    return text if boxed is None else boxed


def d1_parse_answer(text: str) -> tuple[str | None, bool]:
    """d1 eval: the last box unwrapped; when that is None (unclosed) or empty, the first
    `<answer>` block, stripped. Returns (answer, well_formed).

    Quirk: with no box at all d1's helper returns the *whole generation*, which is then compared
    as the answer (the `<answer>` fallback is skipped); well_formed is False in that case.
    """
    parsed = boxed_answer(text)
    if parsed:
        return parsed, has_box(text)
    block = tags.first_answer_block(text)
    if block is not None:
        return block.strip(), True
    return parsed, False


def _level(value: Any) -> int | None:
    """MATH's `level` column: "Level 3" (competition_math; "Level ?" is unknown) or 3 (MATH-500)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value[-1:].isdigit():
        return int(value[-1])  # AGRPO reads the last character
    return None


def equivalent_fixed(pred: str, gold: str) -> bool:
    """Hendrycks normalisation first, then a bounded math-verify."""
    return is_equiv(pred, gold) or math_equivalent(pred, gold)


class Math500Task(PaperTask[MathExample]):
    name = "math500"

    def parse_row(self, row: Mapping[str, Any]) -> MathExample:
        problem = row["problem"]
        answer, solution = row.get("answer"), row.get("solution")
        if not isinstance(problem, str) or not problem.strip():
            raise ValueError("need a non-empty problem")
        if not isinstance(answer, str) or not answer.strip():
            if not isinstance(solution, str):
                raise ValueError("need an answer or a solution")
            answer = boxed_answer(solution) if has_box(solution) else None
            if answer is None or not answer.strip():
                raise ValueError("solution has no closed \\boxed{} answer")
        if not isinstance(solution, str) or not solution.strip():
            solution = "\\boxed{" + answer + "}"
        return MathExample(problem=problem, solution=solution, answer=answer, level=_level(row.get("level")))

    def from_d1_record(self, question: str, ground_truth: Any) -> MathExample:
        if not isinstance(ground_truth, str):
            raise ValueError(f"ground_truth {describe(ground_truth)} is not a string (not a math generations file?)")
        return MathExample(problem=question, solution="\\boxed{" + ground_truth + "}", answer=ground_truth)

    def d1_record(self, example: MathExample) -> tuple[str, Any]:
        return example.problem, example.answer

    def train_prompt(self, example: MathExample, style: str = "d1") -> str:
        if self.check_style(style) == "agrpo":
            return agrpo.user_message(self.name, example)
        return prompts.TRAIN_FORMAT + "\n\n" + prompts.MATH_TRAIN_INSTRUCTION + example.problem

    def eval_prompt(self, example: MathExample, style: str = "d1") -> str:
        if self.check_style(style) == "agrpo":
            return agrpo.user_message(self.name, example)
        return prompts.eval_user_message(prompts.MATH500_EVAL_SYSTEM, example.problem)

    def reference_completion(self, example: MathExample, style: str = "d1") -> str:
        if self.check_style(style) == "agrpo":
            return agrpo.completion("The answer is below.", f"\\boxed{{{example.answer}}}")
        return f"<reasoning>\nThe answer is below.\n</reasoning>\n<answer>\n\\boxed{{{example.answer}}}\n</answer>\n"

    @staticmethod
    def reward_d1(text: str, example: MathExample) -> RewardResult:
        """Quirks: the format reward looks for "\\x08oxed" (the `"\\boxed"` backspace literal), so it
        is 0.75 with an `<answer>` tag and 0.25 without; correctness compares the last box of the
        response (or the whole response if unboxed) with the reference solution's last box under
        Hendrycks normalisation."""
        gold = boxed_answer(example.solution)
        gold = example.answer if gold is None else gold  # d1 would crash on an unclosed reference box
        has_tag, section = tags.answer_section(text)
        box = 1.0 if D1_BOXED_LITERAL in section else 0.5
        return RewardResult.of(
            correctness=2.0 if is_equiv(d1_reward_answer(text), gold) else 0.0,
            boxed_and_answer_tags=0.5 * (float(has_tag) + box),
        )

    @staticmethod
    def reward_fixed(text: str, example: MathExample) -> RewardResult:
        """A working `\\boxed` check, and correctness of the last balanced box (else the last
        `<answer>` block) against the final answer via normalisation or math-verify."""
        has_tag, section = tags.answer_section(text)
        box = 1.0 if "\\boxed" in section else 0.5
        pred = tags.boxed_or_last_answer(text)
        correct = pred is not None and equivalent_fixed(pred, example.answer)
        return RewardResult.of(
            correctness=2.0 if correct else 0.0,
            boxed_and_answer_tags=0.5 * (float(has_tag) + box),
        )

    def score(self, completion: str, example: MathExample, protocol: str = "d1") -> EvalScore:
        if check_choice(protocol, EVAL_PROTOCOLS, "evaluation protocol") == "agrpo":
            return agrpo.score(self.name, completion, example)
        if protocol == "d1":
            parsed, well_formed = d1_parse_answer(completion)
            correct = parsed is not None and is_equiv(parsed, example.answer)
            return EvalScore(float(correct), 1.0, well_formed, parsed)
        pred = tags.boxed_or_last_answer(completion)
        correct = pred is not None and equivalent_fixed(pred, example.answer)
        return EvalScore(float(correct), 1.0, pred is not None, pred)
