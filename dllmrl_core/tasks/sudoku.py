"""4x4 Sudoku: fill the '0' cells of a 16-character puzzle string.

Reward: d1 `diffu-grpo/reward_func.py` `sudoku_reward_func` (share of empty cells filled right).
Scoring: d1 `eval/parse_and_get_acc.py` `parse_sudoku_answers` (cell accuracy over the test set).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dllmrl_core.tasks import agrpo, prompts, tags
from dllmrl_core.tasks.base import EVAL_PROTOCOLS, PaperTask, check_choice, describe
from dllmrl_core.tasks.results import EvalScore, RewardResult
from dllmrl_core.tasks.sudoku_gen import is_valid_grid

_TERMINATORS = ("<|eot_id|>", "<|endoftext|>")
_DIGIT_SPACE_RUN = re.compile(r"[\d\s]*")
_SIXTEEN = re.compile(r"\b(\d{16})\b")
_WHITESPACE = re.compile(r"\s")


@dataclass(frozen=True)
class SudokuExample:
    puzzle: str    # 16 characters, '0' = empty
    solution: str  # 16 digits 1-4

    @property
    def id(self) -> str:
        return f"sudoku/{self.puzzle}"

    @property
    def empty_cells(self) -> list[int]:
        return [i for i, ch in enumerate(self.puzzle) if ch == "0"]


def cells_right(answer: str, example: SudokuExample) -> int:
    """Empty cells whose digit is right, after d1's right-padding with '0' / truncation to 16."""
    answer = answer[:16].ljust(16, "0")
    return sum(answer[i] == example.solution[i] for i in example.empty_cells)


def d1_reward_digits(text: str) -> str | None:
    """d1 `extract_answer_sudoku`: the characters with `str.isdigit()` of the last `<answer>` block
    (so "²" counts as a digit, and never matches)."""
    block = tags.last_answer_block(text)
    return None if block is None else "".join(ch for ch in block.strip() if ch.isdigit())


# --- d1 evaluation patterns, in order; each returns group(1) of the original regex or None ------

def _code_block(raw: str) -> str | None:
    """`<answer>.*?```\\s*([\\d\\s]+)```` (DOTALL)."""
    a = raw.find(tags.OPEN)
    t = -1 if a < 0 else raw.find("```", a + len(tags.OPEN))
    while t >= 0:
        start = t + 3
        end = _DIGIT_SPACE_RUN.match(raw, start).end()
        if end > start and raw.startswith("```", end):
            return raw[min(tags.ws_end(raw, start, end), end - 1):end]
        t = raw.find("```", t + 1)
    return None


def _answer_to_terminator(raw: str) -> str | None:
    """`<answer>(.*?)(?:<\\|eot_id\\|>|<\\|endoftext\\|>|</answer>)` (DOTALL)."""
    a = raw.find(tags.OPEN)
    if a < 0:
        return None
    start = a + len(tags.OPEN)
    ends = [i for i in (raw.find(term, start) for term in (*_TERMINATORS, tags.CLOSE)) if i >= 0]
    return raw[start:min(ends)] if ends else None


def _after_close(raw: str) -> str | None:
    """`</answer>\\s*(.*?)(?:<\\|eot_id\\|>|<\\|endoftext\\|>|$)` (DOTALL)."""
    c = raw.find(tags.CLOSE)
    if c < 0:
        return None
    start = tags.ws_end(raw, c + len(tags.CLOSE))
    ends = [i for i in (raw.find(term, start) for term in _TERMINATORS) if i >= 0]
    ends.append(len(raw) - 1 if raw.endswith("\n") and len(raw) - 1 >= start else len(raw))
    return raw[start:min(ends)]


def _sixteen_before_close(raw: str) -> str | None:
    """`.*?(\\d{16})\\s*</answer>` (DOTALL)."""
    c = raw.find(tags.CLOSE)
    while c >= 0:
        w = c
        while w > 0 and raw[w - 1].isspace():
            w -= 1
        if w >= 16 and raw[w - 16:w].isdecimal():
            return raw[w - 16:w]
        c = raw.find(tags.CLOSE, c + 1)
    return None


def _sixteen_digits(raw: str) -> str | None:
    m = _SIXTEEN.search(raw)
    return None if m is None else m.group(1)


D1_EVAL_PATTERNS = (_code_block, _answer_to_terminator, _after_close, _sixteen_before_close, _sixteen_digits)


def d1_eval_digits(raw: str) -> str:
    """The first pattern whose group is non-blank, stripped, with all whitespace removed."""
    for pattern in D1_EVAL_PATTERNS:
        found = pattern(raw)
        if found is not None and found.strip():
            return _WHITESPACE.sub("", found.strip())
    return ""


class SudokuTask(PaperTask[SudokuExample]):
    name = "sudoku"
    prompt_styles = ("d1", "compact", "agrpo")

    def parse_row(self, row: Mapping[str, Any]) -> SudokuExample:
        """`Puzzle,Solution` rows (d1's and SPG's CSV files) or `puzzle`/`solution` records. A puzzle
        read as a number, or as digits that lost their leading zeros, is left-padded with '0' to 16
        characters, as AGRPO does (`str(x["Puzzle"]).zfill(16)`)."""
        puzzle, solution = row.get("Puzzle", row.get("puzzle")), row.get("Solution", row.get("solution"))
        puzzle, solution = (str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in (puzzle, solution))
        if not isinstance(puzzle, str) or not isinstance(solution, str):
            raise ValueError("need Puzzle and Solution strings")
        puzzle = puzzle.strip()
        return self._example(puzzle.zfill(16) if puzzle.isdigit() else puzzle, solution.strip())

    @staticmethod
    def _example(puzzle: str, solution: str) -> SudokuExample:
        if len(puzzle) != 16 or any(ch not in "01234" for ch in puzzle) or not is_valid_grid(solution):
            raise ValueError(f"bad puzzle/solution {puzzle!r} / {solution!r}")
        if any(p != "0" and p != s for p, s in zip(puzzle, solution)):
            raise ValueError(f"clues of {puzzle!r} disagree with the solution")
        return SudokuExample(puzzle=puzzle, solution=solution)

    def from_d1_record(self, question: str, ground_truth: Any) -> SudokuExample:
        """d1 reads the puzzle from the question: its first 16 characters if they are digits,
        else after "Sudoku puzzle: "."""
        if not isinstance(ground_truth, str):
            raise ValueError(f"ground_truth {describe(ground_truth)} is not a solution string (not a sudoku file?)")
        head = question[:16]
        if len(head) == 16 and all(ch.isdigit() for ch in head):
            puzzle = head
        else:
            m = re.search(r"Sudoku puzzle: ([0-9]{16})", question)
            puzzle = m.group(1) if m else ""
        return self._example(puzzle, ground_truth)

    def d1_record(self, example: SudokuExample) -> tuple[str, Any]:
        return example.puzzle, example.solution

    def train_prompt(self, example: SudokuExample, style: str = "d1") -> str:
        if self.check_style(style) == "compact":
            return self.compact_prompt(example)
        if style == "agrpo":
            return agrpo.user_message(self.name, example)
        return f"{prompts.SUDOKU_INSTRUCTIONS}\n\nSolve the following Sudoku puzzle: {example.puzzle}\n"

    def eval_prompt(self, example: SudokuExample, style: str = "d1") -> str:
        if self.check_style(style) == "compact":
            return self.compact_prompt(example)
        if style == "agrpo":
            return agrpo.user_message(self.name, example)
        question = f"Solve the following Sudoku puzzle: {example.puzzle}\n"
        return prompts.eval_user_message(prompts.SUDOKU_EVAL_SYSTEM, question)

    @staticmethod
    def compact_prompt(example: SudokuExample) -> str:
        """One line for tiny models; the expected completion is `<answer>SOLUTION</answer>`."""
        return f"Sudoku {example.puzzle}."

    def reference_completion(self, example: SudokuExample, style: str = "d1") -> str:
        if self.check_style(style) == "compact":
            return f"<answer>{example.solution}</answer>"
        if style == "agrpo":
            return agrpo.completion("Fill each empty cell so that every row, column and box holds 1-4.",
                                    example.solution)
        return ("<reasoning>\nFill each empty cell so that every row, column and box holds 1-4.\n"
                f"</reasoning>\n<answer>\n{example.solution}\n</answer>\n")

    def reward_d1(self, text: str, example: SudokuExample) -> RewardResult:
        return RewardResult.of(sudoku=self.points_d1(text, example))

    def reward_fixed(self, text: str, example: SudokuExample) -> RewardResult:
        return RewardResult.of(sudoku=self.points_fixed(text, example))

    @staticmethod
    def points_d1(text: str, example: SudokuExample) -> float:
        """Share of empty cells right. Quirks: a short answer is right-padded with '0' and a long
        one truncated to 16, so misaligned partial answers still earn credit by position."""
        digits = d1_reward_digits(text)
        if not digits or not example.empty_cells:
            return 0.0
        return cells_right(digits, example) / len(example.empty_cells)

    @staticmethod
    def points_fixed(text: str, example: SudokuExample) -> float:
        """Share of empty cells right, only for an answer of exactly 16 ASCII digits."""
        block = tags.last_answer_block(text)
        digits = "" if block is None else "".join(ch for ch in block if ch in "0123456789")
        if len(digits) != 16 or not example.empty_cells:
            return 0.0
        return cells_right(digits, example) / len(example.empty_cells)

    def score(self, completion: str, example: SudokuExample, protocol: str = "d1") -> EvalScore:
        """Cell accuracy: correct = empty cells right, total = empty cells. d1's five extraction
        patterns are used under both protocols (d1's eval parsing of Sudoku has no quirk to fix); the
        "agrpo" protocol scores the share of empty cells right per puzzle (total 1)."""
        if check_choice(protocol, EVAL_PROTOCOLS, "evaluation protocol") == "agrpo":
            return agrpo.score(self.name, completion, example)
        digits = d1_eval_digits(completion)
        right = cells_right(digits, example) if digits else 0
        return EvalScore(float(right), float(len(example.empty_cells)), bool(digits), digits or None)
