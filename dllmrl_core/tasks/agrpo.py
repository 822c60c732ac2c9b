"""AGRPO's task set-up: its prompts, rewards and evaluation grading (Zhan, *Simple Policy Gradients
for Reasoning with Diffusion Language Models*, arXiv 2510.04019; code `probablyabot/agrpo`:
`data.py`, `rewards.py`, `eval.py`).

A system turn per task and a short user turn; the answer goes in `<think>…</think><answer>…</answer>`:
GSM8K and MATH as `\\boxed{…}` inside the answer, Countdown as `expression = target`, Sudoku as the
16-digit grid. `task.prompt_style: agrpo` gives these prompts (no prefill), `task.reward_set: agrpo`
the rewards, `task.eval_protocol: agrpo` the evaluation grading; answers are checked with
Math-Verify, as AGRPO does.

Rewards (`rewards.py`):
- GSM8K, MATH: thinking format 0.5 (a `<think>…</think>` pair), answer format 0.5 (an
  `<answer>…</answer>` pair), correctness 3.0 × Math-Verify(gold, answer), where the answer is the
  first `<answer>` block, unwrapped from its first `\\boxed{}` (the whole completion without one).
- Countdown: format ⅓ each for "right side = target", "left side only digits, operators and
  parentheses", "left side uses exactly the numbers", −0.5 for more than one `=`; correctness 3.0
  when the numbers match and Math-Verify finds the left side equal to the target.
- Sudoku: format 0.25 (16 characters) + 0.25 (each digit 1–4 four times) + 0.5 (the clues kept),
  correctness 3.0 × the share of empty cells right (the answer left-padded with `0` to 16).

Evaluation (`eval.py` `grade_completion`), on the answer as above: GSM8K compares the *first digit
run* of the answer (quirk: a minus sign, a decimal point or a thousands separator is lost, so
`-5` reads as 5 and `1,200` as 1); MATH compares the answer; Countdown takes the last line of the
answer of the form `… = …` and checks it like the correctness reward; Sudoku scores the share of
empty cells right, and the accuracy is the mean of that share over puzzles (d1 pools the cells).

Departures, for safety or because the pipeline around it differs:
- Math-Verify runs without its `signal.alarm` timeouts (they raise outside the main thread, e.g. in
  threaded actors); inputs are bounded up front instead (`equivalence.too_risky`: more than 200
  characters, exponent towers, factorials, …) and a refused input counts as wrong. So an answer
  without `<answer>` tags, which AGRPO hands to Math-Verify as a whole completion, is usually wrong here.
- Completions arrive decoded without special tokens (AGRPO's evaluation keeps `<|eot_id|>` and
  `<|endoftext|>` in the text); the tags are found the same way either way.
- Where AGRPO's Countdown format reward returns None (an integer too long for `int()`; TRL sums it
  as 0), it is 0 here.
- The tag patterns (`<think>\\s*(.*?)\\s*</think>`, `<answer>\\s*(.*?)\\s*</answer>`, case-insensitive)
  and the `[^=\\n]+=.*` line pattern are matched by linear scans that give the same result.
"""

from __future__ import annotations

import re
from typing import Any

from dllmrl_core.tasks.equivalence import too_risky
from dllmrl_core.tasks.results import EvalScore, RewardResult

# --- prompts (data.py), byte for byte ------------------------------------------------------------

MATH_SYSTEM = r"""You will be given a math problem.
Think through the problem step by step, enclosing your reasoning process in <think> tags.
Provide your final answer in <answer> tags, with only the number or expression enclosed in \boxed{}, as follows:
<think>
...
</think>
<answer>
\boxed{...}
</answer>
"""

COUNTDOWN_SYSTEM = r"""You will be given a target number and a list of numbers. Create a mathematical expression using each number exactly once and the operations +, -, *, / (with parentheses allowed) to reach the target.
Think through different combinations systematically, exploring which operations might work. Enclose your reasoning process in <think> tags.
Format your response as:
<think>
reasoning process here
</think>
<answer>
final expression = target
</answer>
For example, if the target is 67 and the numbers are [17, 18, 5], a valid answer is:
<answer>
17 * 5 - 18 = 67
</answer>
"""

# The three worked examples are SPG's few-shot Sudoku examples (facebookresearch/SPG
# spg/data_utils.py), rewritten by AGRPO with <think> tags.
SUDOKU_SYSTEM = r"""You will be given a 4x4 Sudoku puzzle, provided as a 16-character string from left to right, top to bottom, with 0s representing empty cells.
Fill in the empty cells with the correct digits 1-4 such that each row, column, and 2x2 subgrid contains each digit exactly once.
Think through the puzzle step by step, enclosing your reasoning process in <think> tags.
Your final answer should be a complete 16-character string with only the digits 1-4 representing the filled-in grid.
Format your response as:
<think>
reasoning process here
</think>
<answer>
[16-character string with no spaces]
</answer>

Puzzle: 3014002020004130

<think>
Interpret puzzle as 4 rows of 4:
R1: 3 0 1 4
R2: 0 0 2 0
R3: 2 0 0 0
R4: 4 1 3 0

Fill easy singles:
R1 missing 2 → R1C2=2.
R4 missing 2 → R4C4=2.
Box D (R3-4,C3-4) then needs {1,4}; column4 can only accept 1 → R3C4=1, R3C3=4.
R3 now missing 3 → R3C2=3.
Column1 missing 1 → R2C1=1.
Column2 missing 4 → R2C2=4.
Last cell R2C4=3.

Final grid:
R1: 3 2 1 4
R2: 1 4 2 3
R3: 2 3 4 1
R4: 4 1 3 2
</think>
<answer>
3214142323414132
</answer>

Puzzle: 0000100420013142

<think>
Interpret puzzle as 4 rows of 4:
R1: 0 0 0 0
R2: 1 0 0 4
R3: 2 0 0 1
R4: 3 1 4 2

Fill easy singles:
Col1 missing 4 → R1C1=4.
Col4 missing 3 → R1C4=3.
Box A (R1-2,C1-2) missing {2,3} and R1 now needs {1,2} → R1C2=2, R2C2=3.
R1C3=1.
R2 now missing 2 → R2C3=2.
Col2 missing 4 → R3C2=4, then R3C3=3.

Final grid:
R1: 4 2 1 3
R2: 1 3 2 4
R3: 2 4 3 1
R4: 3 1 4 2
</think>
<answer>
4213132424313142
</answer>

Puzzle: 2001403002001420

<think>
Interpret puzzle as 4 rows of 4:
R1: 2 0 0 1
R2: 4 0 3 0
R3: 0 2 0 0
R4: 1 4 2 0

Fill easy singles:
R1 missing {3,4}; Col2 can't be 1 so R1C2=3 → R1C3=4.
R4 missing 3 → R4C4=3.
Col4 missing {2,4}; R2 must take 2 → R2C4=2 → R2C2=1.
Col1 missing 3 → R3C1=3.
Col3 missing 1 → R3C3=1 → R3C4=4.

Final grid:
R1: 2 3 4 1
R2: 4 1 3 2
R3: 3 2 1 4
R4: 1 4 2 3
</think>
<answer>
2341413232141423
</answer>
"""

SYSTEM = {"gsm8k": MATH_SYSTEM, "math500": MATH_SYSTEM, "countdown": COUNTDOWN_SYSTEM, "sudoku": SUDOKU_SYSTEM}


def user_message(task: str, example: Any) -> str:
    """The user turn: the question, `Target: t\\nNumbers: [..]`, or `Puzzle: <16 digits>`."""
    if task == "gsm8k":
        return example.question
    if task == "math500":
        return example.problem
    if task == "countdown":
        return f"Target: {example.target}\nNumbers: {list(example.numbers)}"
    return f"Puzzle: {example.puzzle}"


def completion(reasoning: str, answer: str) -> str:
    """A completion in AGRPO's format."""
    return f"<think>\n{reasoning}\n</think>\n<answer>\n{answer}\n</answer>"


# --- answer extraction (rewards.py) ---------------------------------------------------------------

_THINK_OPEN, _THINK_CLOSE = re.compile("<think>", re.IGNORECASE), re.compile("</think>", re.IGNORECASE)
_ANSWER_OPEN, _ANSWER_CLOSE = re.compile("<answer>", re.IGNORECASE), re.compile("</answer>", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")
_PLAIN_LHS = re.compile(r"[\d\s+\-*/()]+")
_BOX, _BRACES = "\\boxed{", re.compile(r"[{}]")
SUDOKU_DIGITS = "1111222233334444"


def _pair(text: str, opening: re.Pattern, closing: re.Pattern) -> tuple[int, int] | None:
    """(content start, content end) of the first opening tag and the first closing tag after it."""
    first = opening.search(text)
    if first is None:
        return None
    close = closing.search(text, first.end())
    return None if close is None else (first.end(), close.start())


def has_think(text: str) -> bool:
    """`THINKING_TAG.search`: a `<think>` followed somewhere by `</think>`."""
    return _pair(text, _THINK_OPEN, _THINK_CLOSE) is not None


def answer_block(text: str) -> str | None:
    """`ANSWER_TAG.search(text).group(1).strip()`: the first `<answer>` up to the next `</answer>`."""
    span = _pair(text, _ANSWER_OPEN, _ANSWER_CLOSE)
    return None if span is None else text[span[0]:span[1]].strip()


def first_boxed(text: str) -> str | None:
    """`extract_boxed`: the content of the first `\\boxed{`, None when that box never closes."""
    start = text.find(_BOX)
    if start < 0:
        return None
    depth = 1
    for m in _BRACES.finditer(text, start + len(_BOX)):
        depth += 1 if m.group() == "{" else -1
        if depth == 0:
            return text[start + len(_BOX):m.start()]
    return None


def parse_answer(text: str) -> str:
    """`parse_ans`: the answer block (else the whole text), unwrapped from a non-empty first box."""
    block = answer_block(text)
    answer = text if block is None else block
    boxed = first_boxed(answer)
    return boxed if boxed else answer


def verified(gold: str, pred: str, *, latex: bool = True) -> bool:
    """`verify(parse(gold), parse(pred))`, each wrapped in `$…$` when latex (AGRPO's Countdown
    parses the bare expression). Bounded: risky or long inputs are refused (False)."""
    if not gold.strip() or not pred.strip() or too_risky(gold) or too_risky(pred):
        return False
    from math_verify import parse, verify

    def wrap(s: str) -> str:
        return f"${s}$" if latex else s

    try:
        parsed_gold = parse(wrap(gold), parsing_timeout=None)
        parsed_pred = parse(wrap(pred), parsing_timeout=None)
        return bool(verify(parsed_gold, parsed_pred, timeout_seconds=None))
    except Exception:  # Math-Verify and sympy raise many types on odd input: not equal
        return False


def _numbers_in(text: str) -> list[int] | None:
    """`[int(n) for n in re.findall(r"\\d+", text)]`, None where int() would refuse (too long)."""
    try:
        return [int(n) for n in _DIGITS.findall(text)]
    except ValueError:
        return None


def equation_correct(equation: str, target: int, numbers: tuple[int, ...]) -> bool:
    """`verify_equation`: an `=`; the left side's digit runs are the numbers; Math-Verify finds the
    left side equal to the target."""
    if "=" not in equation:
        return False
    lhs = equation.split("=", 1)[0]
    used = _numbers_in(lhs)
    if used is None or sorted(used) != sorted(numbers):
        return False
    return verified(str(target), lhs, latex=False)


def last_equation_line(text: str) -> str:
    """The last match of `([^=\\n]+=.*)$` (MULTILINE): per line, what follows its leading `=` signs
    when that still holds an `=`; "" when no line does."""
    found = ""
    for line in text.split("\n"):
        rest = line.lstrip("=")
        if "=" in rest:
            found = rest
    return found


# --- rewards (rewards.py) --------------------------------------------------------------------------

def reward(task: str, text: str, example: Any) -> RewardResult:
    if task == "countdown":
        return RewardResult.of(format=countdown_format(text, example), correctness=countdown_correctness(text, example))
    if task == "sudoku":
        return RewardResult.of(format=sudoku_format(text, example), correctness=3.0 * sudoku_share(
            parse_answer(text), example))
    return RewardResult.of(thinking_format=0.5 if has_think(text) else 0.0,
                           answer_format=0.5 if answer_block(text) is not None else 0.0,
                           correctness=3.0 if verified(example.answer, parse_answer(text)) else 0.0)


def countdown_format(text: str, example: Any) -> float:
    block = answer_block(text)
    if block is None or "=" not in block:
        return 0.0
    sides = block.split("=")
    points = -0.5 if len(sides) > 2 else 0.0
    lhs, rhs = sides[0].strip(), sides[-1].strip()
    used = _numbers_in(lhs)
    try:
        if _DIGITS.fullmatch(rhs) and int(rhs) == example.target:
            points += 1 / 3
    except ValueError:  # AGRPO: None (summed as 0 by TRL)
        return 0.0
    if used is None:
        return 0.0
    if _PLAIN_LHS.fullmatch(lhs):
        points += 1 / 3
    if sorted(used) == sorted(example.numbers):
        points += 1 / 3
    return points


def countdown_correctness(text: str, example: Any) -> float:
    block = answer_block(text)
    return 3.0 if block is not None and equation_correct(block, example.target, example.numbers) else 0.0


def sudoku_format(text: str, example: Any) -> float:
    grid = answer_block(text)
    if grid is None or len(grid) != 16:
        return 0.0
    points = 0.25 + (0.25 if "".join(sorted(grid)) == SUDOKU_DIGITS else 0.0)
    kept = all(p == "0" or p == g for p, g in zip(example.puzzle, grid))
    return points + (0.5 if kept else 0.0)


def sudoku_share(answer: str, example: Any) -> float:
    """Share of the puzzle's empty cells right, the answer left-padded with '0' (`zfill`) to 16."""
    grid = answer.zfill(16)[:16]
    empty = [i for i, ch in enumerate(example.puzzle) if ch == "0"]
    return sum(grid[i] == example.solution[i] for i in empty) / len(empty) if empty else 0.0


# --- evaluation (eval.py grade_completion) ------------------------------------------------------------

def score(task: str, text: str, example: Any) -> EvalScore:
    """One completion graded as AGRPO's eval.py does; well_formed = an `<answer>` block was found."""
    answer, well_formed = parse_answer(text), answer_block(text) is not None
    if task == "countdown":
        equation = last_equation_line(answer)
        correct = float(equation_correct(equation, example.target, example.numbers))
        return EvalScore(correct, 1.0, well_formed, equation or None)
    if task == "sudoku":
        return EvalScore(sudoku_share(answer, example), 1.0, well_formed, answer)
    if task == "gsm8k":
        first = _DIGITS.search(answer)
        answer = first.group() if first else answer
    return EvalScore(float(verified(example.answer, answer)), 1.0, well_formed, answer)
