"""Tag helpers: hand cases for every d1 format quirk, and linear scans equal to d1's regexes."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dllmrl_core.tasks import tags
from dllmrl_core.tasks.countdown import d1_expression_head
from dllmrl_core.tasks.gsm8k import lazy_boxed_contents
from dllmrl_core.tasks.sudoku import D1_EVAL_PATTERNS

GOOD = "<reasoning>\nr\n</reasoning>\n<answer>\n42\n</answer>\n"

# d1's patterns, as data (diffu-grpo/reward_func.py, eval/parse_and_get_acc.py)
SOFT = r"<reasoning>.*?</reasoning>\s*<answer>.*?</answer>"
STRICT = r"^<reasoning>\n.*?\n</reasoning>\n<answer>\n.*?\n</answer>\n$"
ANSWER = r"<answer>(.*?)</answer>"
SUDOKU = [r"<answer>.*?```\s*([\d\s]+)```", r"<answer>(.*?)(?:<\|eot_id\|>|<\|endoftext\|>|</answer>)",
          r"</answer>\s*(.*?)(?:<\|eot_id\|>|<\|endoftext\|>|$)", r".*?(\d{16})\s*</answer>", r"\b(\d{16})\b"]

TOKENS = ["<reasoning>", "</reasoning>", "<answer>", "</answer>", "\n", " ", "\t", "x", "1", "9", "=", ".",
          "\\boxed{", "}", "{", "```", "<|eot_id|>", "<|endoftext|>", "1234123412341234", "(", "+", "²", "٣"]
soup = st.lists(st.sampled_from(TOKENS), max_size=14).map("".join)


@pytest.mark.parametrize("text, expected", [
    (GOOD, 0.5),                                        # every tag once, nothing after "\n</answer>\n"
    (GOOD + "xyz", 0.5 - 0.003 - 0.003),                # 3 trailing chars, penalised by both terms
    (GOOD[:-1], 0.375 - 0.048 + 0.125 + 0.001),         # no final newline: whole text (48 chars) penalised,
                                                        # and ending on "\n</answer>" earns +0.001
    ("<reasoning>\nr\n</reasoning>\n", 0.25),           # answer tags missing
    (GOOD + GOOD, 0.0),                                 # every tag twice: nothing counts
    ("", 0.0),
])
def test_xmlcount_d1(text, expected):
    assert tags.xmlcount_d1(text) == pytest.approx(expected, abs=1e-12)


def test_xmlcount_fixed_penalises_trailing_text_once_and_caps_it():
    assert tags.xmlcount_fixed(GOOD) == 0.5
    assert tags.xmlcount_fixed(GOOD[:-1]) == 0.5                     # no whole-text penalty
    assert tags.xmlcount_fixed(GOOD + "xyz") == pytest.approx(0.497)
    assert tags.xmlcount_fixed(GOOD + "x" * 10_000) == pytest.approx(0.25)


def test_format_quirks_of_d1_and_their_repair():
    one_line = "<reasoning>r</reasoning> <answer>42</answer>"
    two_lines = "<reasoning>\nstep 1\nstep 2\n</reasoning>\n<answer>\n42\n</answer>\n"
    assert tags.soft_format_d1(one_line) and tags.soft_format_d1("<reasoning>r</reasoning>\n\n<answer>4</answer>")
    assert not tags.soft_format_d1(GOOD)          # "." cannot cross the newline after <reasoning>
    assert tags.strict_format_d1(GOOD) and tags.strict_format_d1(GOOD + "\n")  # `$` before a final "\n"
    assert not tags.strict_format_d1(GOOD[:-1]) and not tags.strict_format_d1(GOOD + "\n\n")
    assert not tags.strict_format_d1(two_lines)   # reasoning must be one line
    assert tags.soft_format_dotall(GOOD) and tags.strict_format_dotall(two_lines)
    assert not tags.soft_format_d1("x" + one_line) and not tags.soft_format_dotall("x" + one_line)


def test_xml_answer_without_tags_is_the_whole_text():
    assert tags.xml_answer("  42 ") == "42"
    assert tags.xml_answer("<answer> 1 </answer><answer> 2 </answer>") == "2"
    assert tags.xml_answer("<answer>a<answer>b") == "b"


@settings(max_examples=300, deadline=None)
@given(soup)
def test_scans_equal_d1_regexes(text):
    assert tags.soft_format_d1(text) == bool(re.match(SOFT, text))
    assert tags.soft_format_dotall(text) == bool(re.match(SOFT, text, re.DOTALL))
    assert tags.strict_format_d1(text) == bool(re.match(STRICT, text))
    assert tags.strict_format_dotall(text) == bool(re.match(STRICT, text, re.DOTALL))
    found = re.findall(ANSWER, text, re.DOTALL)
    assert tags.last_answer_block(text) == (found[-1] if found else None)
    first = re.search(ANSWER, text, re.DOTALL)
    assert tags.first_answer_block(text) == (first.group(1) if first else None)
    assert tags.xml_answer(text) == text.split("<answer>")[-1].split("</answer>")[0].strip()
    assert list(lazy_boxed_contents(text)) == re.findall(r"\\boxed{(.*?)}", text)
    head = re.search(r"([0-9+\-*/() ]+)=[0-9. ]+", text)
    assert d1_expression_head(text) == (head.group(1) if head else None)
    for pattern, scan in zip(SUDOKU, D1_EVAL_PATTERNS):
        m = re.search(pattern, text, re.DOTALL)
        assert scan(text) == (m.group(1) if m else None), pattern
