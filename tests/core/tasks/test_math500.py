"""MATH: boxed extraction, Hendrycks normalisation, d1's rewards (the backspace quirk), scoring."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dllmrl_core.tasks import MathExample, get_task
from dllmrl_core.tasks.equivalence import math_equivalent, too_risky
from dllmrl_core.tasks.hendrycks import balanced_boxed, is_equiv, last_boxed_only_string, remove_boxed, strip_string

TASK = get_task("math500")
HALF = MathExample(problem="p", solution="So the answer is $\\boxed{\\dfrac12}$.", answer="\\frac{1}{2}")


@pytest.mark.parametrize("text, boxed", [
    ("a \\boxed{x} b \\boxed{\\frac{1}{2}} c", "\\boxed{\\frac{1}{2}}"),
    ("\\boxed{x} and \\boxed 5$ more", "\\boxed 5"),          # "\boxed " wins, cut at "$"
    ("no box here", "no box here"),                            # the whole text comes back
    ("\\boxed{1", None),                                       # unclosed
    ("\\fbox{3}", "\\fbox{3}"),
])
def test_last_boxed_only_string(text, boxed):
    assert last_boxed_only_string(text) == boxed


def test_remove_boxed_and_balanced_boxed():
    assert remove_boxed("\\boxed{\\frac{1}{2}}") == "\\frac{1}{2}" and remove_boxed("\\fbox{3}") == "\\fbox{3}"
    assert remove_boxed("\\boxed 5") == "5"
    assert balanced_boxed("\\boxed{a{b}} \\boxed{c") == "a{b}" and balanced_boxed("\\boxed{") is None


@pytest.mark.parametrize("raw, normal", [
    ("\\dfrac{1}{2}", "\\frac{1}{2}"),
    ("0.5", "\\frac{1}{2}"),
    (".5", "\\frac{1}{2}"),
    ("1/2", "\\frac{1}{2}"),
    ("x = 3", "3"),
    ("\\left( 1, 2 \\right)", "(1,2)"),
    ("10^\\circ", "10"),
    ("\\sqrt3", "\\sqrt{3}"),
    ("\\frac12", "\\frac{1}{2}"),
    ("\\frac1{72}", "\\frac{1}{72}"),
    ("50\\%", "50"),
    ("5 \\text{ cm}", "5"),
])
def test_strip_string(raw, normal):
    assert strip_string(raw) == normal


def test_is_equiv_falls_back_to_raw_equality_where_d1_raises():
    assert is_equiv("\\frac{1}{2}", "0.5") and is_equiv(None, None) and not is_equiv("1", None)
    assert not is_equiv("x/y", "x / y")        # int("x") raises inside fix_a_slash_b: raw strings differ
    assert is_equiv("x/y", "x/y")
    assert not is_equiv("2\\sqrt", "2 \\sqrt")  # \sqrt at the end raises


def test_d1_reward_backspace_quirk():
    tagged = TASK.reward("<reasoning>\nr\n</reasoning>\n<answer>\n\\boxed{\\frac{1}{2}}\n</answer>", HALF, "d1")
    assert tagged.components == {"correctness": 2.0, "boxed_and_answer_tags": 0.75}  # "\boxed" never found
    untagged = TASK.reward("The answer is \\boxed{0.5}", HALF, "d1")
    assert untagged.components == {"correctness": 2.0, "boxed_and_answer_tags": 0.25}
    assert TASK.reward("<answer>\x08oxed</answer>", HALF, "d1").components["boxed_and_answer_tags"] == 1.0
    # the answer section ends at the next <answer>, as text.split("<answer>")[1] does
    assert TASK.reward("<answer>a<answer>\x08oxed", HALF, "d1").components["boxed_and_answer_tags"] == 0.75


def test_d1_reward_uses_the_whole_response_when_unboxed():
    assert TASK.reward("1/2", HALF, "d1").components["correctness"] == 2.0
    assert TASK.reward("<answer>1/2</answer>", HALF, "d1").components["correctness"] == 0.0
    assert TASK.reward("\\boxed{0.50}", HALF, "d1").components["correctness"] == 0.0


def test_fixed_reward():
    good = TASK.reward("<answer>\\boxed{0.50}</answer>", HALF, "fixed")
    assert good.components == {"correctness": 2.0, "boxed_and_answer_tags": 1.0}   # math-verify: 0.50 = 1/2
    assert TASK.reward("<answer>1/2</answer>", HALF, "fixed").components == {"correctness": 2.0,
                                                                              "boxed_and_answer_tags": 0.75}
    assert TASK.reward("\\boxed{3}", HALF, "fixed").components == {"correctness": 0.0, "boxed_and_answer_tags": 0.5}


def test_d1_eval_parsing_quirks():
    unboxed = TASK.score("<answer>\\frac12</answer>", HALF, "d1")   # no box: the whole text is the answer
    assert (unboxed.correct, unboxed.well_formed) == (0.0, False)
    assert TASK.score("<answer>\\frac12</answer>", HALF, "fixed").correct == 1.0
    empty_box = TASK.score("\\boxed{}<answer>1/2</answer>", HALF, "d1")  # empty box: <answer> fallback
    assert (empty_box.correct, empty_box.well_formed, empty_box.extracted) == (1.0, True, "1/2")
    unclosed = TASK.score("\\boxed{1/2 <answer> 0.5 </answer>", HALF, "d1")
    assert (unclosed.correct, unclosed.extracted) == (1.0, "0.5")
    empty = TASK.score("", HALF, "d1")  # d1 keeps "" as the answer when there is no <answer> either
    assert (empty.correct, empty.well_formed, empty.extracted) == (0.0, False, "")


def test_gold_completion_scores_full_marks():
    gold = TASK.reference_completion(HALF)
    assert TASK.reward(gold, HALF, "d1").components["correctness"] == 2.0
    assert TASK.reward(gold, HALF, "fixed").total == 3.0
    assert TASK.score(gold, HALF, "d1").correct == 1.0 and TASK.score(gold, HALF, "fixed").correct == 1.0


def test_loaders_jsonl_and_parquet(tmp_path):
    rows = [
        {"problem": "p1", "solution": "so \\boxed{4}", "answer": "4"},
        {"problem": "p2", "solution": "thus \\boxed{\\frac{1}{3}}."},          # answer from the solution
        {"problem": "p3", "answer": "7"},                                      # solution made from the answer
        {"problem": "p4", "solution": "no box"},                               # no answer anywhere
        {"problem": "", "answer": "1"},
        {"answer": "1"},
    ]
    path = tmp_path / "math.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    loaded = TASK.load(str(path))
    assert [(e.answer, e.solution) for e in loaded.examples] == [
        ("4", "so \\boxed{4}"), ("\\frac{1}{3}", "thus \\boxed{\\frac{1}{3}}."), ("7", "\\boxed{7}")]
    assert loaded.skipped == 3
    table = pa.table({"problem": ["p1", None, "p3"], "solution": ["\\boxed{1}", "\\boxed{2}", "x"],
                      "answer": ["1", "2", None]})
    pq.write_table(table, tmp_path / "math.parquet")
    loaded = TASK.load(str(tmp_path / "math.parquet"))
    assert [e.answer for e in loaded.examples] == ["1"] and loaded.skipped == 2


@pytest.mark.parametrize("expr, risky", [
    ("9^{9^{9}}", True), ("9^9^9", True), ("2^{10}", False), ("2^{100}", True), ("(x+1)^{99}", True),
    ("x^{12}+1", False), ("10!", True), ("\\sum_{n=1}^{5} n", True), ("\\cos(\\sin(\\tan x))", True),
    ("\\frac{\\sqrt{3}}{2}", False), ("1" * 41, True), ("((((((1))))))", True), ("x" * 201, True), ("2**3", True),
    ("(((99^{99})^{99})^{99})^{99}", True), ("{(9^{9})}^{9}", True), ("(x^2+1)^2", True), ("(x+1)^2", False),
    ("\\left(2^{3}\\right) ^ {2}", True), ("\\exp(\\exp(10^{10}))", True), ("\\exp(\\exp(99))", True),
    ("\\exp(2)", False), ("9^(9^(9^9))", True), ("\\Gamma(10^{10})", True), ("2^(10)", False),
])
def test_math_verify_guard(expr, risky):
    assert too_risky(expr) == risky


def test_math_equivalent():
    assert math_equivalent("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}") and math_equivalent("(1,2)", "(1, 2)")
    assert not math_equivalent("9^{9^{9}}", "1") and not math_equivalent("", "1") and not math_equivalent("3", "4")
