"""GSM8K: d1's five rewards and their quirks, the repaired set, d1's answer parsing, the loader."""

import json

import pytest

from dllmrl_core.tasks import GSM8KExample, get_task
from dllmrl_core.tasks.gsm8k import d1_gold_number, d1_parse_answer

TASK = get_task("gsm8k")
EX = GSM8KExample(question="How many?", answer="18")


def completion(answer: str, reasoning: str = "9 * 2 = 18") -> str:
    return f"<reasoning>\n{reasoning}\n</reasoning>\n<answer>\n{answer}\n</answer>\n"


def test_d1_reward_of_a_clean_completion():
    r = TASK.reward(completion("18"), EX, "d1")
    # soft format needs reasoning on the first line, strict needs it on its own line: never both
    assert r.components == {"xmlcount": 0.5, "soft_format": 0.0, "strict_format": 0.5, "int": 0.5, "correctness": 2.0}
    assert r.total == 3.5


def test_d1_reward_one_line_completion_earns_soft_but_not_strict():
    r = TASK.reward("<reasoning>9*2</reasoning><answer>18</answer>", EX, "d1")
    assert r.components == {"xmlcount": 0.0, "soft_format": 0.5, "strict_format": 0.0, "int": 0.5, "correctness": 2.0}


@pytest.mark.parametrize("answer, gold, int_reward, correctness", [
    ("-3", "-3", 0.0, 2.0),        # isdigit: negatives earn no int reward
    ("1,000", "1,000", 0.0, 2.0),  # nor commas
    ("1000", "1,000", 0.5, 0.0),   # exact string equality: 1000 != "1,000"
    ("18.0", "18", 0.0, 0.0),
    ("18", "18", 0.5, 2.0),
])
def test_d1_int_and_correctness_quirks(answer, gold, int_reward, correctness):
    r = TASK.reward(completion(answer), GSM8KExample("q", gold), "d1")
    assert (r.components["int"], r.components["correctness"]) == (int_reward, correctness)


def test_d1_answer_without_tags_is_the_whole_completion():
    assert TASK.reward("18", EX, "d1").components["correctness"] == 2.0
    assert TASK.reward("The answer is 18", EX, "d1").components["correctness"] == 0.0


@pytest.mark.parametrize("answer, gold, int_reward, correctness", [
    ("-3", "-3", 0.5, 2.0),
    ("1000", "1,000", 0.5, 2.0),
    ("\\boxed{18}", "18", 0.5, 2.0),
    ("$18.00", "18", 0.0, 2.0),
    ("\\frac{36}{2}", "18", 0.0, 2.0),   # math-verify
    ("17", "18", 0.5, 0.0),
])
def test_fixed_reward_uses_numeric_equivalence(answer, gold, int_reward, correctness):
    r = TASK.reward(completion(answer), GSM8KExample("q", gold), "fixed")
    assert (r.components["int"], r.components["correctness"]) == (int_reward, correctness)


def test_fixed_reward_formats_accept_multi_line_reasoning():
    r = TASK.reward(completion("18", reasoning="step 1\nstep 2"), EX, "fixed")
    assert r.components == {"xmlcount": 0.5, "soft_format": 0.5, "strict_format": 0.5, "int": 0.5, "correctness": 2.0}
    assert TASK.reward("no tags, 18", EX, "fixed").total == 0.0


@pytest.mark.parametrize("text, value", [
    ("so \\boxed{18}", 18.0),
    ("\\boxed{}\\boxed{...}\\boxed{$18.00}", 18.0),    # first non-empty box; first number inside it
    ("\\boxed{1,234}", 1.0),                           # float() fails, first number is "1"
    ("\\boxed{x}\\boxed{7}", 7.0),                     # no number in the first box: the next one
    ("\\boxed{1\n8}<answer>3 then 18</answer>", 18.0),  # box content cannot span lines; last number
    ("<answer>\n 12.5 \n</answer>", 12.5),
    ("<answer>a</answer><answer>7</answer>", None),    # only the first <answer> block is read
    ("nothing here", None),
])
def test_d1_eval_parsing(text, value):
    assert d1_parse_answer(text) == value


def test_d1_eval_negative_gold_is_never_correct():
    ex = GSM8KExample("q", "-3")
    assert d1_gold_number("-3") is None and d1_gold_number("1,234") == 1234.0
    d1 = TASK.score("\\boxed{-3}", ex, "d1")
    assert (d1.correct, d1.total, d1.well_formed, d1.extracted) == (0.0, 1.0, True, "-3.0")
    assert TASK.score("\\boxed{-3}", ex, "fixed").correct == 1.0


def test_fixed_eval_protocol():
    assert TASK.score("<answer>\\boxed{1,234}</answer>", GSM8KExample("q", "1,234"), "fixed").correct == 1.0
    assert TASK.score("\\boxed{5}<answer>18 dollars</answer>", EX, "fixed").correct == 0.0  # last box wins
    missing = TASK.score("no answer", EX, "fixed")
    assert (missing.correct, missing.well_formed, missing.extracted) == (0.0, False, None)


def test_gold_answers_score_full_marks(data_dir):
    loaded = TASK.load(str(data_dir / "gsm8k_test.jsonl"))
    assert (len(loaded.examples), loaded.skipped) == (1319, 0)
    d1_wrong = []
    for ex in loaded.examples:
        gold = TASK.reference_completion(ex)
        assert TASK.reward(gold, ex, "d1").components["correctness"] == 2.0
        assert TASK.reward(gold, ex, "fixed").components["correctness"] == 2.0
        boxed = f"<reasoning>\nx\n</reasoning>\n<answer>\n\\boxed{{{ex.answer.replace(',', '')}}}\n</answer>"
        assert TASK.score(boxed, ex, "fixed").correct == 1.0
        if TASK.score(boxed, ex, "d1").correct != 1.0:
            d1_wrong.append(ex.answer)
    assert sorted(d1_wrong) == sorted(a.answer for a in loaded.examples if a.answer.startswith("-"))
    assert len(d1_wrong) == 2


def test_loader_skips_and_counts_malformed_rows(tmp_path):
    rows = [
        json.dumps({"question": "q1", "answer": "because\n#### 5"}),
        "{not json",
        json.dumps({"question": "q2"}),                          # no answer
        json.dumps({"question": "q3", "answer": "no hashes"}),   # no ####
        json.dumps({"question": 7, "answer": "#### 1"}),         # question not a string
        json.dumps({"question": "q4", "answer": "####   "}),     # empty answer
        json.dumps([1, 2]),                                      # not an object
        "",
    ]
    path = tmp_path / "gsm.jsonl"
    path.write_text("\n".join(rows) + "\n")
    loaded = TASK.load(str(path))
    assert [e.answer for e in loaded.examples] == ["5"] and loaded.skipped == 6
    assert loaded.examples[0].rationale == "because" and loaded.source == str(path)
    assert loaded.examples[0].id == GSM8KExample("q1", "5").id and loaded.examples[0].id.startswith("gsm8k/")
