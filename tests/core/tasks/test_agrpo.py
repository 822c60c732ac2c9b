"""AGRPO's rewards and evaluation grading (probablyabot/agrpo rewards.py, eval.py), quirks included,
and the linear scans that stand in for its regular expressions."""

import re
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dllmrl_core.tasks import CountdownExample, GSM8KExample, MathExample, SudokuExample, get_task
from dllmrl_core.tasks import agrpo

GSM, CD = GSM8KExample("q", "18"), CountdownExample((30, 100, 93), 23)
MATH = MathExample("p", "\\boxed{\\frac{1}{2}}", "\\frac{1}{2}")
SD = SudokuExample("3102200002100320", "3142243142131324")  # empty cells: 2, 5, 6, 7, 8, 11, 12, 15


def reward(name, text, example):
    return get_task(name).reward(text, example, "agrpo")


def score(name, text, example):
    return get_task(name).score(text, example, "agrpo")


@pytest.mark.parametrize("text, parts", [
    ("<think>\nx\n</think>\n<answer>\n\\boxed{18}\n</answer>", (0.5, 0.5, 3.0)),
    ("<THINK>a</Think><Answer>\\boxed{18}</ANSWER>", (0.5, 0.5, 3.0)),       # tags are case-insensitive
    ("<answer>18</answer>", (0.0, 0.5, 3.0)),
    ("<answer>\\boxed{18.0}</answer>", (0.0, 0.5, 3.0)),                       # Math-Verify: 18.0 = 18
    ("<answer>17</answer><answer>18</answer>", (0.0, 0.5, 0.0)),              # the first block counts
    ("<think>x</think> the answer is 18", (0.5, 0.0, 3.0)),                   # no tags: Math-Verify reads it all
])
def test_math_rewards(text, parts):
    got = reward("gsm8k", text, GSM).components
    assert (got["thinking_format"], got["answer_format"], got["correctness"]) == parts


def test_math_answers_are_checked_with_math_verify():
    for answer in ("\\boxed{0.5}", "\\boxed{\\dfrac{1}{2}}", "1/2"):
        assert reward("math500", f"<answer>{answer}</answer>", MATH).components["correctness"] == 3.0
        assert score("math500", f"<answer>{answer}</answer>", MATH).correct == 1.0
    assert score("math500", "<answer>\\boxed{2}</answer>", MATH).correct == 0.0


def test_gsm8k_evaluation_reads_the_first_digit_run():
    assert score("gsm8k", "<answer>18 dollars</answer>", GSM).correct == 1.0       # the reward says 0
    assert reward("gsm8k", "<answer>18 dollars</answer>", GSM).components["correctness"] == 0.0
    # quirks: the sign, the decimal point and thousands separators are lost
    assert score("gsm8k", "<answer>\\boxed{-5}</answer>", GSM8KExample("q", "-5")).extracted == "5"
    assert score("gsm8k", "<answer>\\boxed{-5}</answer>", GSM8KExample("q", "-5")).correct == 0.0
    assert score("gsm8k", "<answer>1,200</answer>", GSM8KExample("q", "1200")).correct == 0.0
    no_tags = score("gsm8k", "so 18", GSM)
    assert (no_tags.correct, no_tags.well_formed) == (1.0, False)


@pytest.mark.parametrize("text, fmt, correctness", [
    ("<think>t</think><answer>\n30 + 93 - 100 = 23\n</answer>", 1.0, 3.0),
    ("<answer>93 - (100 - 30) = 23</answer>", 1.0, 3.0),
    ("<answer>30+93-100 = 23 = 23</answer>", 1.0 - 0.5, 3.0),        # more than one "=": −0.5
    ("<answer>(100-93)*30 = 210</answer>", 2 / 3, 0.0),              # wrong target
    ("<answer>x = 23</answer>", 1 / 3, 0.0),
    ("<answer>30+93-100</answer>", 0.0, 0.0),                        # no "= target"
    ("<answer>1=" + "9" * 5000 + "</answer>", 0.0, 0.0),             # AGRPO: None (int() refuses), i.e. 0
])
def test_countdown_rewards(text, fmt, correctness):
    got = reward("countdown", text, CD).components
    assert got["format"] == pytest.approx(fmt) and got["correctness"] == correctness


def test_countdown_evaluation_takes_the_last_equation_line():
    assert score("countdown", "<answer>\\boxed{30+93-100=23}</answer>", CD).correct == 1.0
    last = score("countdown", "<answer>\nFirst 30+93=123\n123-100 = 23\n</answer>", CD)
    assert (last.correct, last.extracted) == (0.0, "123-100 = 23")
    assert score("countdown", "<answer>30+93-100</answer>", CD).extracted is None


def test_sudoku_pads_on_the_left_and_averages_over_puzzles():
    full = reward("sudoku", "<think>x</think><answer>3142243142131324</answer>", SD)
    assert full.components == {"format": 1.0, "correctness": 3.0}
    # 15 digits: AGRPO left-pads (zfill) and every empty cell lines up; d1 pads on the right
    short = "<answer>142243142131324</answer>"
    assert reward("sudoku", short, SD).components == {"format": 0.0, "correctness": 3.0}
    assert get_task("sudoku").reward(short, SD, "d1").total == 0.0
    ones = reward("sudoku", "<answer>1111111111111111</answer>", SD).components
    assert ones == {"format": 0.25, "correctness": 0.75}  # 16 characters, wrong digits, a clue overwritten
    graded = score("sudoku", "<answer>1111111111111111</answer>", SD)
    assert (graded.correct, graded.total) == (0.25, 1.0)  # a share per puzzle, not d1's pooled cells


def test_math_verify_runs_outside_the_main_thread():
    """Math-Verify's own timeouts use signal.alarm, which raises in any other thread."""
    results = []
    thread = threading.Thread(target=lambda: results.append(reward("math500", "<answer>0.5</answer>", MATH).total))
    thread.start()
    thread.join()
    assert results == [3.5]


# --- the linear scans equal AGRPO's regular expressions -----------------------------------------

THINK = re.compile(r"<think>\s*(.*?)\s*</think>", re.DOTALL | re.IGNORECASE)
ANSWER = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL | re.IGNORECASE)
EQUATION = re.compile(r"([^=\n]+=.*)$", re.MULTILINE)


def extract_boxed(text):
    """rewards.py extract_boxed, restated."""
    match = re.search(r"\\boxed\{", text)
    if match:
        depth = 1
        for j in range(match.end(), len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                return text[match.end():j]
    return None


PIECES = ["<think>", "</think>", "<THINK>", "<answer>", "</answer>", "</Answer>", "\\boxed{", "{", "}", "=", "\n",
          " ", "\t", "1", "23", "x", "\u2028", "\x1c"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_scans_match_the_regexes(text):
    assert agrpo.has_think(text) == bool(THINK.search(text))
    found = ANSWER.search(text)
    assert agrpo.answer_block(text) == (found.group(1).strip() if found else None)
    assert agrpo.first_boxed(text) == extract_boxed(text)
    assert agrpo.last_equation_line(text) == (EQUATION.findall(text) or [""])[-1]
