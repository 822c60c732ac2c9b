"""Countdown: combine the given numbers with + - * / to reach the target, each number once.

Reward: d1 `diffu-grpo/reward_func.py` `countdown_reward_func` -> `compute_score` (0 / 0.1 / 1.0).
Scoring: d1 `eval/parse_and_get_acc.py` `parse_countdown_answers`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dllmrl_core.tasks import agrpo, prompts, tags
from dllmrl_core.tasks.arithmetic import d1_allowed_chars, evaluate_arithmetic, integer_literals
from dllmrl_core.tasks.base import EVAL_PROTOCOLS, PaperTask, check_choice, describe
from dllmrl_core.tasks.countdown_gen import solve_countdown
from dllmrl_core.tasks.hendrycks import balanced_boxed, boxed_answer, has_box
from dllmrl_core.tasks.results import EvalScore, RewardResult

_DIGIT_RUN = re.compile(r"\d+")
_D1_EXPR_RUN = re.compile(r"[0-9+\-*/() ]+")
_RESULT_TAIL = re.compile(r"\s*=\s*[-+]?[0-9.]*\s*$")
_LATEX_OPS = (("\\div", "/"), ("\\times", "*"), ("\\cdot", "*"), ("×", "*"), ("÷", "/"), ("−", "-"))
MAX_INT_DIGITS = 4300  # Python's int() limit: d1's int() conversion fails beyond it


@dataclass(frozen=True)
class CountdownExample:
    numbers: tuple[int, ...]
    target: int
    reference: str | None = field(default=None, compare=False)  # a solution, when known

    @property
    def id(self) -> str:
        return f"countdown/{','.join(map(str, self.numbers))}->{self.target}"


def _integer(value: Any) -> int:
    """An integer from a data file: an int, an integral finite float or a decimal string."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{describe(value)} is not an integer")
    try:
        number = int(value)
    except (ValueError, OverflowError):  # "1.5", nan, inf, more digits than int() reads
        raise ValueError(f"{describe(value)} is not an integer") from None
    if isinstance(value, float) and value != number:
        raise ValueError(f"{describe(value)} is not an integer")
    return number


def d1_numbers_match(expr: str, numbers: tuple[int, ...]) -> bool:
    """d1 `validate_equation`: the digit runs of the expression, as a sorted multiset, equal the
    numbers. Quirk: "2.5" counts as the numbers 2 and 5."""
    runs = _DIGIT_RUN.findall(expr)
    if len(runs) != len(numbers) or any(len(r) > MAX_INT_DIGITS for r in runs):
        return False
    return sorted(int(r) for r in runs) == sorted(numbers)


def d1_value(expr: str) -> int | float | complex | None:
    """d1 `evaluate_equation`: the character whitelist, then Python arithmetic on the stripped
    expression, `**` and `//` included (see arithmetic.py for the bounds where it refuses)."""
    return evaluate_arithmetic(expr.strip(), python_ops=True) if d1_allowed_chars(expr) else None


def d1_expression_head(expr: str) -> str | None:
    """`re.search(r"([0-9+\\-*/() ]+)=[0-9. ]+", expr).group(1)` in linear time."""
    for m in _D1_EXPR_RUN.finditer(expr):
        e = m.end()
        if expr[e:e + 1] == "=" and expr[e + 1:e + 2] != "" and expr[e + 1] in "0123456789. ":
            return m.group()
    return None


def d1_eval_expression(text: str) -> tuple[str, bool]:
    """d1 eval extraction: (expression, well_formed).

    The last box unwrapped; only if that raises (an unclosed box) the first `<answer>` block, else
    the whole text. Quirk: with no box at all the *whole generation* is the expression, so
    `<answer>2*4-3</answer>` without `\\boxed{}` never scores. Then LaTeX operators are mapped and
    an "expr = value" is cut to "expr".
    """
    boxed = boxed_answer(text)
    if boxed is not None:
        expr, well_formed = boxed, has_box(text)
    else:
        block = tags.first_answer_block(text)
        expr, well_formed = (text, False) if block is None else (block.strip(), True)
    expr = expr.replace("\\div", "/").replace("\\times", "*").replace("\\cdot", "*")
    head = d1_expression_head(expr)
    return (expr if head is None else head.strip()), well_formed


def fixed_expression(text: str) -> str | None:
    """The last balanced `\\boxed{}` else the last `<answer>` block, with LaTeX/Unicode operators
    mapped and a trailing "= value" removed; None when there is neither."""
    expr = balanced_boxed(text)
    if expr is None:
        block = tags.last_answer_block(text)
        if block is None:
            return None
        inner = balanced_boxed(block)
        expr = block if inner is None else inner
    for latex, op in _LATEX_OPS:
        expr = expr.replace(latex, op)
    expr = expr.strip()
    if len(expr) <= 1024:  # the tail pattern is only run on short answers
        expr = _RESULT_TAIL.sub("", expr)
    return expr.strip()


def fixed_correct(expr: str, example: CountdownExample) -> bool:
    """Integer literals (from the parsed expression) equal the numbers; value within 1e-5."""
    literals = integer_literals(expr)
    if literals is None or sorted(literals) != sorted(example.numbers):
        return False
    value = evaluate_arithmetic(expr)
    return value is not None and abs(value - example.target) < 1e-5


class CountdownTask(PaperTask[CountdownExample]):
    name = "countdown"
    prompt_styles = ("d1", "compact", "agrpo")

    def parse_row(self, row: Mapping[str, Any]) -> CountdownExample:
        """d1 test rows {"input": "a,b,c", "output": "t"} or hub rows {"nums": [...], "target": t}."""
        if "input" in row:
            numbers = tuple(int(x) for x in str(row["input"]).split(","))
            target = row["output"]
        else:
            numbers, target = tuple(row["nums"]), row["target"]
        return self._example(numbers, target)

    @staticmethod
    def _example(numbers: Any, target: Any) -> CountdownExample:
        if not isinstance(numbers, (list, tuple)) or len(numbers) < 2:
            raise ValueError("need at least two integer numbers and an integer target")
        ints = [_integer(v) for v in (*numbers, target)]
        return CountdownExample(numbers=tuple(ints[:-1]), target=ints[-1])

    def from_d1_record(self, question: str, ground_truth: Any) -> CountdownExample:
        """d1 stores ground_truth as [numbers, target]; it falls back to "Numbers: [..]" /
        "Target: N" in the question text."""
        if isinstance(ground_truth, list) and len(ground_truth) == 2 and isinstance(ground_truth[0], list):
            try:
                return self._example(ground_truth[0], ground_truth[1])
            except ValueError as err:
                raise ValueError(f"ground_truth {describe(ground_truth)} is not [numbers, target]: {err}") from None
        nums = re.search(r"Numbers: \[([\d, ]+)\]", question, re.IGNORECASE)
        target = re.search(r"Target: (\d+)", question, re.IGNORECASE)
        if nums is None or target is None:
            raise ValueError(f"ground_truth {describe(ground_truth)} is not [numbers, target] "
                             "(not a countdown generations file?)")
        return self._example([int(x) for x in nums.group(1).split(",")], int(target.group(1)))

    def d1_record(self, example: CountdownExample) -> tuple[str, Any]:
        numbers = list(example.numbers)
        return f"Numbers: {numbers}\nTarget: {example.target}", [numbers, example.target]

    def train_prompt(self, example: CountdownExample, style: str = "d1") -> str:
        if self.check_style(style) == "compact":
            return self.compact_prompt(example)
        if style == "agrpo":
            return agrpo.user_message(self.name, example)
        return prompts.COUNTDOWN_TRAIN_TEMPLATE.format(numbers=list(example.numbers), target=example.target)

    def eval_prompt(self, example: CountdownExample, style: str = "d1") -> str:
        if self.check_style(style) == "compact":
            return self.compact_prompt(example)
        if style == "agrpo":
            return agrpo.user_message(self.name, example)
        question = f"Numbers: {list(example.numbers)}\nTarget: {example.target}"
        return prompts.eval_user_message(prompts.COUNTDOWN_EVAL_SYSTEM, question)

    @staticmethod
    def compact_prompt(example: CountdownExample) -> str:
        """One short line for tiny models ("30 100 93 -> 23"); the expected completion is
        `<answer>EXPR</answer>`."""
        return f"{' '.join(map(str, example.numbers))} -> {example.target}"

    def reference_completion(self, example: CountdownExample, style: str = "d1") -> str:
        expr = example.reference or solve_countdown(example.numbers, example.target)
        if expr is None:
            raise ValueError(f"{example.id} has no solution with + - * /")
        if self.check_style(style) == "compact":
            return f"<answer>{expr}</answer>"
        if style == "agrpo":
            return agrpo.completion(f"{expr} = {example.target}", f"{expr} = {example.target}")
        return f"<reasoning>\n{expr} = {example.target}\n</reasoning>\n<answer>\n{expr}\n</answer>\n"

    def reward_d1(self, text: str, example: CountdownExample) -> RewardResult:
        return RewardResult.of(countdown=self.points_d1(text, example))

    def reward_fixed(self, text: str, example: CountdownExample) -> RewardResult:
        return RewardResult.of(countdown=self.points_fixed(text, example))

    @staticmethod
    def points_d1(text: str, example: CountdownExample) -> float:
        """0 without an `<answer>` block; 0.1 if the last block's digit runs are not the numbers or
        it does not evaluate to the target (|diff| < 1e-5); 1.0 otherwise."""
        block = tags.last_answer_block(text)
        if block is None:
            return 0.0
        expr = block.strip()
        if not d1_numbers_match(expr, example.numbers):
            return 0.1
        value = d1_value(expr)
        return 1.0 if value is not None and abs(value - example.target) < 1e-5 else 0.1

    @staticmethod
    def points_fixed(text: str, example: CountdownExample) -> float:
        """0 / 0.1 / 1.0 as in d1, with the answer taken from a box or the last `<answer>` block,
        LaTeX operators and a trailing "= target" accepted, and numbers checked as parsed literals."""
        expr = fixed_expression(text)
        if expr is None:
            return 0.0
        return 1.0 if fixed_correct(expr, example) else 0.1

    def score(self, completion: str, example: CountdownExample, protocol: str = "d1") -> EvalScore:
        if check_choice(protocol, EVAL_PROTOCOLS, "evaluation protocol") == "agrpo":
            return agrpo.score(self.name, completion, example)
        if protocol == "d1":
            expr, well_formed = d1_eval_expression(completion)
            correct = False
            if d1_numbers_match(expr, example.numbers):
                value = d1_value(expr)  # d1 uses inf for "could not evaluate"
                correct = value is not None and abs(value - example.target) < 1e-5
            return EvalScore(float(correct), 1.0, well_formed, expr)
        expr = fixed_expression(completion)
        correct = expr is not None and fixed_correct(expr, example)
        return EvalScore(float(correct), 1.0, expr is not None, expr)
