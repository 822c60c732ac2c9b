"""GSM8K: grade-school word problems whose reference solution ends in `#### <answer>`.

Rewards: d1 `diffu-grpo/reward_func.py` (xmlcount, soft/strict format, int, correctness; max 4.0).
Scoring: d1 `eval/parse_and_get_acc.py` `parse_gsm_answers`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dllmrl_core.tasks import agrpo, prompts, tags
from dllmrl_core.tasks.base import EVAL_PROTOCOLS, PaperTask, check_choice, content_id, describe
from dllmrl_core.tasks.equivalence import last_number, numbers_close, numeric_equivalent, parse_plain_number
from dllmrl_core.tasks.hendrycks import balanced_boxed
from dllmrl_core.tasks.results import EvalScore, RewardResult

_D1_NUMBER = re.compile(r"-?\d+\.?\d*")
_D1_GOLD = re.compile(r"\s*\$?([\d,]+(?:\.\d+)?)")
_INTEGER = re.compile(r"[+-]?(\d{1,3}(,\d{3})+|\d+)", re.ASCII)
_CALCULATOR = re.compile(r"<<[^<>]*>>")


@dataclass(frozen=True)
class GSM8KExample:
    question: str
    answer: str          # the text after "####" (d1 `extract_hash_answer`)
    rationale: str = ""  # the worked solution before "####", if known

    @property
    def id(self) -> str:
        return content_id("gsm8k", self.question, self.answer)


def d1_gold_number(answer: str) -> float | None:
    """d1 eval/parsers.py `extract_answer_gsm8k` applied to "#### <answer>".

    Quirk: the pattern has no minus sign, so negative answers have no gold value and are never
    scored correct under the d1 protocol.
    """
    m = _D1_GOLD.match(answer)
    if m is None:
        return None
    try:
        return float(m.group(1).replace(",", ""))
    except ValueError:  # "," alone
        return None


def _d1_float(text: str, last: bool) -> float | None:
    try:
        return float(text)
    except ValueError:
        numbers = _D1_NUMBER.findall(text)
        if not numbers:
            return None
        try:
            return float(numbers[-1] if last else numbers[0])
        except ValueError:
            return None


def lazy_boxed_contents(text: str) -> Iterator[str]:
    """`re.findall(r"\\\\boxed{(.*?)}", text)` (no DOTALL: the content cannot contain a newline)."""
    closes, newlines = tags.NextIndex(text, "}"), tags.NextIndex(text, "\n")
    pos = 0
    while True:
        i = text.find("\\boxed{", pos)
        if i < 0:
            return
        start = i + len("\\boxed{")
        c, nl = closes.at(start), newlines.at(start)
        if c >= 0 and (nl < 0 or nl > c):
            yield text[start:c]
            pos = c + 1
        else:
            pos = i + 1


def d1_parse_answer(text: str) -> float | None:
    """The first non-empty `\\boxed{}` parsed as a float (else its first number); failing that the
    first `<answer>` block as a float (else its last number)."""
    for content in lazy_boxed_contents(text):
        content = content.strip()
        if content and content.strip(".") != "":
            value = _d1_float(content, last=False)
            if value is not None:
                return value
    block = tags.first_answer_block(text)
    if block is not None and block.strip():
        return _d1_float(block.strip(), last=True)
    return None


def _fixed_reward_answer(text: str) -> str | None:
    """The last complete `<answer>` block, unwrapped from a `\\boxed{}` inside it."""
    block = tags.last_answer_block(text)
    if block is None:
        return None
    boxed = balanced_boxed(block)
    return (block if boxed is None else boxed).strip()


def _finite(value: int | float) -> bool:
    """Whether a number is a finite float (an int too large for a float is not)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


class GSM8KTask(PaperTask[GSM8KExample]):
    name = "gsm8k"

    def parse_row(self, row: Mapping[str, Any]) -> GSM8KExample:
        """openai/gsm8k rows {"question", "answer": "... #### 72"}; GSM8K-Platinum adds
        `cleaning_status`, and a row it rejected (an ill-posed question) counts as a bad row."""
        if row.get("cleaning_status") == "rejected":
            raise ValueError("rejected by GSM8K-Platinum's cleaning")
        question, solution = row["question"], row["answer"]
        if not isinstance(question, str) or not isinstance(solution, str) or "####" not in solution:
            raise ValueError("need string question and an answer containing '####'")
        answer = solution.split("####")[1].strip()
        if not question.strip() or not answer:
            raise ValueError("empty question or answer")
        return GSM8KExample(question=question, answer=answer, rationale=solution.split("####")[0].strip())

    def from_d1_record(self, question: str, ground_truth: Any) -> GSM8KExample:
        if ground_truth is None:  # d1 could not parse the reference (a negative answer)
            return GSM8KExample(question=question, answer="")
        if isinstance(ground_truth, bool) or not isinstance(ground_truth, (int, float)) or not _finite(ground_truth):
            raise ValueError(f"ground_truth {describe(ground_truth)} is not a number (not a gsm8k generations file?)")
        value = float(ground_truth)
        answer = str(int(value)) if value.is_integer() else repr(value)
        return GSM8KExample(question=question, answer=answer)

    def d1_record(self, example: GSM8KExample) -> tuple[str, Any]:
        try:
            truth: float | None = float(example.answer.replace(",", ""))
        except ValueError:
            truth = None
        return example.question, truth

    def train_prompt(self, example: GSM8KExample, style: str = "d1") -> str:
        if self.check_style(style) == "agrpo":
            return agrpo.user_message(self.name, example)
        return prompts.TRAIN_FORMAT + "\n\n" + example.question

    def eval_prompt(self, example: GSM8KExample, style: str = "d1") -> str:
        if self.check_style(style) == "agrpo":
            return agrpo.user_message(self.name, example)
        return prompts.eval_user_message(prompts.GSM8K_EVAL_SYSTEM, example.question)

    def reference_completion(self, example: GSM8KExample, style: str = "d1") -> str:
        steps = " ".join(_CALCULATOR.sub("", example.rationale).split()) or "Compute the answer."
        if self.check_style(style) == "agrpo":
            return agrpo.completion(steps, f"\\boxed{{{example.answer}}}")
        return f"<reasoning>\n{steps}\n</reasoning>\n<answer>\n{example.answer}\n</answer>\n"

    @staticmethod
    def reward_d1(text: str, example: GSM8KExample) -> RewardResult:
        """d1's five GSM8K rewards. Quirks: single-line formats, `str.isdigit` (no negatives,
        commas or decimals), exact string equality with the `####` answer."""
        extracted = tags.xml_answer(text)
        return RewardResult.of(
            xmlcount=tags.xmlcount_d1(text),
            soft_format=0.5 if tags.soft_format_d1(text) else 0.0,
            strict_format=0.5 if tags.strict_format_d1(text) else 0.0,
            int=0.5 if extracted.isdigit() else 0.0,
            correctness=2.0 if extracted == example.answer else 0.0,
        )

    @staticmethod
    def reward_fixed(text: str, example: GSM8KExample) -> RewardResult:
        """Multi-line formats, one capped trailing-text penalty, integers with sign/commas,
        numeric equivalence (plain numbers, then math-verify) of the `<answer>` content."""
        extracted = _fixed_reward_answer(text)
        correct = extracted is not None and numeric_equivalent(extracted, example.answer)
        return RewardResult.of(
            xmlcount=tags.xmlcount_fixed(text),
            soft_format=0.5 if tags.soft_format_dotall(text) else 0.0,
            strict_format=0.5 if tags.strict_format_dotall(text) else 0.0,
            int=0.5 if extracted is not None and _INTEGER.fullmatch(extracted) else 0.0,
            correctness=2.0 if correct else 0.0,
        )

    def score(self, completion: str, example: GSM8KExample, protocol: str = "d1") -> EvalScore:
        if check_choice(protocol, EVAL_PROTOCOLS, "evaluation protocol") == "agrpo":
            return agrpo.score(self.name, completion, example)
        if protocol == "d1":
            value, gold = d1_parse_answer(completion), d1_gold_number(example.answer)
            correct = value is not None and gold is not None and value == gold
            return EvalScore(float(correct), 1.0, value is not None, None if value is None else repr(value))
        extracted = tags.boxed_or_last_answer(completion)
        if extracted is None:
            return EvalScore(0.0, 1.0, False, None)
        value, gold = parse_plain_number(extracted), parse_plain_number(example.answer)
        if value is None:
            value = last_number(extracted)
        if gold is not None and value is not None:
            correct = numbers_close(value, gold)
        else:
            correct = numeric_equivalent(extracted, example.answer)
        return EvalScore(float(correct), 1.0, True, extracted)
