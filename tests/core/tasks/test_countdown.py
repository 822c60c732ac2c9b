"""Countdown: safe arithmetic, d1's 0 / 0.1 / 1.0 reward, d1's eval parsing, the generator."""

from pathlib import Path

import pytest

from dllmrl_core.tasks import CountdownExample, CountdownOptions, generate_countdown, get_task, solve_countdown
from dllmrl_core.tasks.arithmetic import evaluate_arithmetic, integer_literals
from dllmrl_core.tasks.countdown_gen import solvable

TASK = get_task("countdown")
EX = CountdownExample(numbers=(30, 100, 93), target=23)


@pytest.mark.parametrize("expr, value", [
    ("93-(100-30)", 23), ("2*4-3", 5), (" 7/2 ", 3.5), ("-3+5", 2), ("((1))", 1), ("1.5*2", 3.0),
    ("9**9**9", None), ("2//3", None), ("5/(1-1)", None), ("abs(-1)", None), ("__import__('os')", None),
    ("1 2", None), ("03", None), ("(" * 40 + "1" + ")" * 40, None), ("1" * 31, None), ("1e400", None),
    ("", None), ("\x00", None), ("True+1", None), ("1j", None), ("[1]", None),
])
def test_evaluate_arithmetic(expr, value):
    assert evaluate_arithmetic(expr) == value


@pytest.mark.parametrize("expr, value", [
    ("2**3", 8), ("7//2", 3), ("2**-1", 0.5), ("9**9**9", None), ("0**-1", None), ("5//0", None),
    ("99**9", 913517247483640899), ("2**4096", None), ("2**4095 // 2**4094", 2), ("2.0**2000", None),
])
def test_evaluate_arithmetic_with_d1_operators(expr, value):
    # d1 semantics: ** and // as Python computes them; integers up to MAX_INT_BITS (2**4096 has 4097 bits)
    assert evaluate_arithmetic(expr, python_ops=True) == value


def test_integer_literals():
    assert integer_literals("93-(100-30)") == [93, 100, 30] and integer_literals("2.5*10") is None
    assert integer_literals("2**3") is None


@pytest.mark.parametrize("text, reward", [
    ("no tags at all: 93-(100-30)", 0.0),
    ("<answer>93-(100-30)</answer>", 1.0),
    ("<answer>\n93 - 100 + 30\n</answer>", 1.0),
    ("<answer>93+100-30</answer>", 0.1),                          # right numbers, wrong value
    ("<answer>23</answer>", 0.1),                                 # wrong numbers
    ("<answer>93-(100-30) = 23</answer>", 0.1),                   # 23 counts as a fourth number
    ("<answer>1</answer> then <answer>93-(100-30)</answer>", 1.0),  # the last block
    ("<answer>93-(100-30)", 0.0),                                 # unclosed
    ("<answer>93-(100-30)x</answer>", 0.1),                       # characters outside d1's whitelist
])
def test_d1_reward(text, reward):
    assert TASK.reward(text, EX, "d1").components == {"countdown": reward}


def test_d1_reward_quirks_and_safety():
    tens = CountdownExample((2, 5, 10), 25)
    assert TASK.reward("<answer>2.5*10</answer>", tens, "d1").total == 1.0  # "2.5" passes as the numbers 2 and 5
    assert TASK.reward("<answer>2.5*10</answer>", tens, "fixed").total == 0.1
    power = CountdownExample((2, 3), 8)
    assert TASK.reward("<answer>2**3</answer>", power, "d1").total == 1.0   # d1's evaluator computes 2**3 = 8
    assert TASK.reward("<answer>2**3</answer>", power, "fixed").total == 0.1  # Countdown allows + - * / only
    assert TASK.reward("<answer>5/(1-1)</answer>", CountdownExample((5, 1, 1), 3), "d1").total == 0.1


def test_fixed_reward_accepts_latex_and_a_result_tail():
    assert TASK.reward("<answer>\\boxed{93 - (100 - 30) = 23}</answer>", EX, "fixed").total == 1.0
    assert TASK.reward("<answer>6 \\times 4 \\div 1</answer>", CountdownExample((6, 4, 1), 24), "fixed").total == 1.0
    assert TASK.reward("nothing", EX, "fixed").total == 0.0


def test_d1_eval_parsing():
    boxed = TASK.score("<reasoning>r</reasoning><answer>\\boxed{93-(100-30)}</answer><|eot_id|>", EX, "d1")
    assert (boxed.correct, boxed.total, boxed.well_formed, boxed.extracted) == (1.0, 1.0, True, "93-(100-30)")
    unboxed = TASK.score("<answer>93-(100-30)</answer>", EX, "d1")  # no box: the whole text is the equation
    assert (unboxed.correct, unboxed.well_formed, unboxed.extracted) == (0.0, False, "<answer>93-(100-30)</answer>")
    assert TASK.score("<answer>93-(100-30)</answer>", EX, "fixed").correct == 1.0
    unclosed = TASK.score("\\boxed{93-(100-30) <answer> 93-(100-30) </answer>", EX, "d1")  # <answer> fallback
    assert (unclosed.correct, unclosed.extracted) == (1.0, "93-(100-30)")
    assert TASK.score("\\boxed{93-(100-30)=23}", EX, "d1").correct == 1.0             # "= value" cut
    assert TASK.score("\\boxed{6 \\times 4 \\div 1}", CountdownExample((6, 4, 1), 24), "d1").correct == 1.0
    assert TASK.score("\\boxed{93-100+30.0}", EX, "d1").correct == 0.0                # 0 is a fourth number


def test_solver_and_generator_defaults():
    assert solve_countdown((2, 3, 4), 5) is not None and solve_countdown((1, 1, 1), 100) is None
    problems = generate_countdown(60, seed=3)
    assert problems == generate_countdown(60, seed=3) and problems != generate_countdown(60, seed=4)
    for numbers, target, reference in problems:
        assert len(numbers) == 3 and all(1 <= n <= 100 for n in numbers) and 1 <= target <= 100
        assert solvable(numbers, target, "+-*/") and evaluate_arithmetic(reference) == target
        ex = CountdownExample(numbers, target, reference)
        for style in ("d1", "compact"):
            gold = TASK.reference_completion(ex, style)
            assert TASK.reward(gold, ex, "d1").total == 1.0 and TASK.reward(gold, ex, "fixed").total == 1.0
        assert TASK.score(TASK.reference_completion(ex, "compact"), ex, "fixed").correct == 1.0
        assert TASK.score(f"<answer>\\boxed{{{reference}}}</answer>", ex, "d1").correct == 1.0


def test_generator_tiny_variant_and_impossible_options():
    easy = CountdownOptions(min_number=1, max_number=9, operators="+-", min_target=1, max_target=20)
    for numbers, target, reference in generate_countdown(40, seed=0, options=easy):
        assert all(1 <= n <= 9 for n in numbers) and set(reference) <= set("0123456789+-()")
        assert evaluate_arithmetic(reference) == target
    impossible = CountdownOptions(min_number=1, max_number=2, operators="+", min_target=90, max_target=99)
    with pytest.raises(ValueError, match="no solvable problem"):
        generate_countdown(1, seed=0, options=impossible, max_attempts=500)
    with pytest.raises(ValueError, match="operators"):
        CountdownOptions.parse({"operators": "+^"})


def test_d1_test_file_loads_and_is_solvable(data_dir):
    loaded = TASK.load(str(data_dir / "countdown_cd3_test.jsonl"))
    assert (len(loaded.examples), loaded.skipped) == (256, 0)
    assert loaded.examples[0] == CountdownExample((30, 100, 93), 23)
    for ex in loaded.examples:
        gold = TASK.reference_completion(ex)
        assert TASK.reward(gold, ex, "d1").total == 1.0


def test_loader_skips_and_counts_malformed_rows(tmp_path: Path):
    rows = ['{"input": "1,2,3", "output": "6"}', '{"nums": [4, 5], "target": 9}', '{"input": "1,x,3", "output": "6"}',
            '{"input": "1,2,3"}', '{"nums": [1, 2], "target": 2.5}', '{"nums": [1, 2], "target": Infinity}',
            '{"nums": [true, 2], "target": 3}', '{"input": "5", "output": "5"}', 'garbage']
    path = tmp_path / "cd.jsonl"
    path.write_text("\n".join(rows))
    loaded = TASK.load(str(path))
    assert [e.id for e in loaded.examples] == ["countdown/1,2,3->6", "countdown/4,5->9"] and loaded.skipped == 7


def test_from_d1_record():
    assert TASK.from_d1_record("Numbers: [30, 100, 93]\nTarget: 23", [[30, 100, 93], 23]) == EX
    assert TASK.from_d1_record("Numbers: [30, 100, 93]\nTarget: 23", None) == EX    # d1's question fallback
    with pytest.raises(ValueError, match="not a countdown"):
        TASK.from_d1_record("What?", "3142")
