"""The `d1` reward set equals d1's reward functions, on corpora of edge cases and on tag soup.

The reference functions below re-implement, in this file, the behaviour of d1's reward code as
read at dllm-reasoning/d1 commit 837888f (`diffu-grpo/reward_func.py`: `extract_xml_answer`,
`count_xml`, `soft_format_reward_func`, `strict_format_reward_func`, `int_reward_func`,
`correctness_reward_func`, `compute_score` with `extract_solution` / `validate_equation` /
`evaluate_equation`, `extract_answer_sudoku` / `validate_sudoku_solution`,
`correctness_reward_func_math`, `boxed_and_answer_tags_format_reward`; `diffu-grpo/math500_utils.py`:
`boxed_in_answer`, `last_boxed_only_string`, `remove_boxed`, `strip_string` and its helpers,
`is_equiv`). They keep d1's own operations (`str.split`, `re`, Python's evaluator, its
try/except structure) wherever the project uses a different algorithm, so each comparison checks
the project's code against d1's semantics rather than against itself. (A later version of
`reward_func.py` passes `re.DOTALL` to the two format regexes; the project follows 837888f.)

Known, documented departures, kept out of the corpora: an expression that d1's evaluator would
compute beyond the arithmetic bounds (docs/methods.md "Rewards"), and a MATH reference whose last
`\\boxed{` is unclosed, where d1 raises (tested separately below).
"""

import itertools
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dllmrl_core.tasks import CountdownExample, GSM8KExample, MathExample, SudokuExample, get_task

# --- d1 reference: GSM8K (diffu-grpo/reward_func.py) -------------------------------------------


def ref_xml_answer(text):
    return text.split("<answer>")[-1].split("</answer>")[0].strip()


def ref_count_xml(text):
    count = 0.0
    if text.count("<reasoning>\n") == 1:
        count += 0.125
    if text.count("\n</reasoning>\n") == 1:
        count += 0.125
    if text.count("\n<answer>\n") == 1:
        count += 0.125
        count -= len(text.split("\n</answer>\n")[-1]) * 0.001
    if text.count("\n</answer>") == 1:
        count += 0.125
        count -= (len(text.split("\n</answer>")[-1]) - 1) * 0.001
    return count


def ref_gsm8k(text, answer):
    soft = re.match(r"<reasoning>.*?</reasoning>\s*<answer>.*?</answer>", text)
    strict = re.match(r"^<reasoning>\n.*?\n</reasoning>\n<answer>\n.*?\n</answer>\n$", text)
    extracted = ref_xml_answer(text)
    return {"xmlcount": ref_count_xml(text), "soft_format": 0.5 if soft else 0.0,
            "strict_format": 0.5 if strict else 0.0, "int": 0.5 if extracted.isdigit() else 0.0,
            "correctness": 2.0 if extracted == answer else 0.0}


# --- d1 reference: Countdown (compute_score) ------------------------------------------------------


def ref_countdown(text, numbers, target):
    found = re.findall(r"<answer>(.*?)</answer>", text, re.DOTALL)
    if not found:
        return 0.0
    equation = found[-1].strip()
    try:
        used = sorted(int(n) for n in re.findall(r"\d+", equation))
        if used != sorted(numbers):
            return 0.1
    except Exception:  # noqa: BLE001 - d1's bare except
        return 0.1
    try:
        if not re.match(r"^[\d+\-*/().\s]+$", equation):
            raise ValueError("characters")
        result = eval(equation, {"__builtins__": None}, {})  # noqa: S307 - d1's evaluator, on this file's corpus
    except Exception:  # noqa: BLE001
        result = None
    if result is None:
        return 0.1
    try:
        return 1.0 if abs(result - target) < 1e-5 else 0.1
    except Exception:  # noqa: BLE001 - e.g. a tuple or Ellipsis minus an int
        return 0.1


# --- d1 reference: Sudoku --------------------------------------------------------------------------


def ref_sudoku(text, puzzle, solution):
    found = re.findall(r"<answer>(.*?)</answer>", text, re.DOTALL)
    if not found:
        return 0.0
    answer = "".join(ch for ch in found[-1].strip() if ch.isdigit())
    if not answer:
        return 0.0
    answer = answer + "0" * (16 - len(answer)) if len(answer) < 16 else answer[:16]
    empty = [i for i in range(16) if puzzle[i] == "0"]
    return sum(answer[i] == solution[i] for i in empty) / len(empty) if empty else 0.0


# --- d1 reference: MATH (math500_utils.py) ---------------------------------------------------------


def ref_last_boxed(string):
    if "\\boxed " in string:
        return "\\boxed " + string.split("\\boxed ")[-1].split("$")[0]
    idx = string.rfind("\\boxed")
    if idx < 0:
        idx = string.rfind("\\fbox")
        if idx < 0:
            return string
    depth = 0
    for i in range(idx, len(string)):
        depth += {"{": 1, "}": -1}.get(string[i], 0)
        if string[i] == "}" and depth == 0:
            return string[idx:i + 1]
    return None


def ref_remove_boxed(s):
    if "\\boxed " in s:  # raises TypeError on None, like d1
        assert s.startswith("\\boxed ")
        return s[len("\\boxed "):]
    return s[len("\\boxed{"):-1] if s.startswith("\\boxed{") and s.endswith("}") else s


def ref_fix_fracs(string):
    head, *rest = string.split("\\frac")
    out = head
    for sub in rest:
        out += "\\frac"
        if sub[0] == "{":  # IndexError on "\frac" at the end, as in d1
            out += sub
            continue
        if len(sub) < 2:
            return string
        a, b, tail = sub[0], sub[1], sub[2:]
        out += "{" + a + "}{" + b + "}" + tail if b != "{" else "{" + a + "}" + b + tail
    return out


def ref_fix_a_slash_b(string):
    if len(string.split("/")) != 2:
        return string
    a, b = string.split("/")
    a, b = int(a), int(b)  # ValueError escapes to is_equiv, as in d1
    return "\\frac{" + str(a) + "}{" + str(b) + "}" if string == f"{a}/{b}" else string


def ref_fix_sqrt(string):
    if "\\sqrt" not in string:
        return string
    head, *rest = string.split("\\sqrt")
    return head + "".join("\\sqrt" + s if s[0] == "{" else "\\sqrt{" + s[0] + "}" + s[1:] for s in rest)


def ref_strip_string(string):
    for old, new in [("\n", ""), ("\\!", ""), ("\\\\", "\\"), ("tfrac", "frac"), ("dfrac", "frac"),
                     ("\\left", ""), ("\\right", ""), ("^{\\circ}", ""), ("^\\circ", ""), ("\\$", "")]:
        string = string.replace(old, new)
    if "\\text{ " in string:
        parts = string.split("\\text{ ")
        assert len(parts) == 2
        string = parts[0]
    string = string.replace("\\%", "").replace(" .", " 0.").replace("{.", "{0.")
    if not string:
        return string
    if string[0] == ".":
        string = "0" + string
    if len(string.split("=")) == 2 and len(string.split("=")[0]) <= 2:
        string = string.split("=")[1]
    string = ref_fix_fracs(ref_fix_sqrt(string).replace(" ", ""))
    if string == "0.5":
        string = "\\frac{1}{2}"
    return ref_fix_a_slash_b(string)


def ref_is_equiv(a, b):
    if a is None or b is None:
        return a is None and b is None
    try:
        return ref_strip_string(a) == ref_strip_string(b)
    except Exception:  # noqa: BLE001
        return a == b


def ref_math(text, solution):
    try:
        section, tag = text.split("<answer>")[1].split("</answer>")[0], 1.0
    except IndexError:
        section, tag = text, 0.0
    fmt = tag + (1.0 if "\boxed" in section else 0.5)  # "\b" is a backspace in d1's literal
    gold = ref_remove_boxed(ref_last_boxed(solution))
    try:
        pred = ref_remove_boxed(ref_last_boxed(text))
    except Exception:  # noqa: BLE001
        pred = text
    return {"correctness": 2.0 if ref_is_equiv(pred, gold) else 0.0, "boxed_and_answer_tags": 0.5 * fmt}


# --- corpora -----------------------------------------------------------------------------------------

GOOD = "<reasoning>\nr\n</reasoning>\n<answer>\n42\n</answer>\n"

TAG_CORPUS = [
    GOOD, GOOD[:-1], GOOD + "\n", GOOD + "\n\n", GOOD + " ", GOOD + "xyz", GOOD + GOOD, "",
    # overlapping separators: two "\n</answer>\n" sharing a newline
    "\n<answer>\nx\n</answer>\n</answer>\n",
    "\n<answer>\nx\n</answer>\n</answer>\n</answer>\n",
    "<reasoning>\nr\n</reasoning>\n<answer>\n42\n</answer>\n</answer>\n",
    "<reasoning>\nr\n</reasoning>\n</reasoning>\n<answer>\n42\n</answer>\n",
    "<reasoning>\nr\n</reasoning>\n<answer>\n<answer>\n42\n</answer>\n",
    # missing newlines
    "<reasoning>r</reasoning><answer>42</answer>", "<reasoning>\nr</reasoning>\n<answer>42\n</answer>",
    "<reasoning>r</reasoning>\n<answer>\n42\n</answer>", "<reasoning>\nr\n</reasoning><answer>\n42\n</answer>\n",
    "\n<answer>\n42\n</answer>", "<answer>\n42\n</answer>\n", "42\n</answer>\n",
    # repeated and unclosed tags
    "<answer>1</answer><answer>42</answer>", "<answer>42</answer><answer>", "<answer>42", "42</answer>",
    "<reasoning>\n<reasoning>\nr\n</reasoning>\n<answer>\n42\n</answer>\n",
    "<reasoning>a</reasoning> <reasoning>b</reasoning> <answer>42</answer>",
    "<reasoning>r\n</reasoning><answer>42</answer>", "<reasoning>r</reasoning>\n\n\t <answer>4\n2</answer>",
    # empty answers and whitespace
    "<reasoning>\nr\n</reasoning>\n<answer>\n\n</answer>\n", "<answer></answer>", "<answer> \n </answer>",
    "<reasoning>\n\n</reasoning>\n<answer>\n\n</answer>\n", "  <reasoning>r</reasoning><answer>42</answer>",
    "<reasoning>\nr\n</reasoning>\n<answer>\n42 \n</answer>\n", "<answer>\n 42\t\n</answer>\n \n",
    # unicode and odd answers
    "<reasoning>\nr\n</reasoning>\n<answer>\n٤٢\n</answer>\n", "<answer>²</answer>", "<answer>4２</answer>",
    "<reasoning>\nr\n</reasoning>\n<answer>\n-42\n</answer>\n", "<answer>1,000</answer>", "<answer>42.0</answer>",
    "<answer>\\boxed{42}</answer>", "<answer>+42</answer>", "<answer>0042</answer>", "<answer>\u200b42</answer>",
    "<reasoning>\r\nr\r\n</reasoning>\r\n<answer>\r\n42\r\n</answer>\r\n",
    "<reasoning>\nr\n</reasoning>\n<answer>\n42\n</answer>\n\x00",
    "<reasoning>\nünïcödé ✓ 漢字\n</reasoning>\n<answer>\n42\n</answer>\n",
]
# every way to drop or double the newlines around the four tags of the clean completion
_PIECES = [("<reasoning>", "<reasoning>\n"), ("r",), ("</reasoning>", "\n</reasoning>", "\n</reasoning>\n"),
           ("<answer>", "<answer>\n", "\n<answer>\n"), ("42",),
           ("</answer>", "\n</answer>", "\n</answer>\n", "\n</answer>\n\n")]
TAG_CORPUS += ["".join(parts) for parts in itertools.product(*_PIECES)]


@pytest.mark.parametrize("text", TAG_CORPUS)
@pytest.mark.parametrize("answer", ["42", "-42", "1,000", ""])
def test_gsm8k_d1_rewards_equal_d1(text, answer):
    ours = get_task("gsm8k").reward(text, GSM8KExample("q", answer), "d1").components
    assert ours == ref_gsm8k(text, answer)  # bit for bit: the same float operations in the same order


def test_xmlcount_overlapping_answer_separators_by_hand():
    # "\n<answer>\n" occurs once: +0.125. str.split("\n</answer>\n") scans left to right and never
    # reuses the newline it consumed, so the second separator is not seen: the last piece is
    # "</answer>\n", 10 characters -> −0.010. "\n</answer>" occurs twice: no term. Total 0.115
    # (taking the text after the *rightmost* separator would leave "" and give 0.125).
    text = "\n<answer>\nx\n</answer>\n</answer>\n"
    xml = get_task("gsm8k").reward(text, GSM8KExample("q", "x"), "d1").components["xmlcount"]
    assert xml == pytest.approx(0.115, abs=1e-12) and xml == ref_count_xml(text)


COUNTDOWN_CORPUS = [
    ("<answer>93-(100-30)</answer>", (30, 100, 93), 23), ("<answer>2**3</answer>", (2, 3), 8),
    ("<answer>2 ** 3 + 5</answer>", (2, 3, 5), 13), ("<answer>7//2</answer>", (7, 2), 3),
    ("<answer>7.5//2</answer>", (7, 5, 2), 3), ("<answer>2**-1*4</answer>", (2, 1, 4), 2),
    ("<answer>(0-8)**(1/3)</answer>", (0, 8, 1, 3), 1), ("<answer>0**-1</answer>", (0, 1), 0),
    ("<answer>5/(1-1)</answer>", (5, 1, 1), 3), ("<answer>5//(1-1)</answer>", (5, 1, 1), 3),
    ("<answer>2.5*10</answer>", (2, 5, 10), 25), ("<answer>05+3</answer>", (5, 3), 8),
    ("<answer>(1)(2)</answer>", (1, 2), 2), ("<answer>٣+4</answer>", (3, 4), 7),
    ("<answer>3\u00a0+ 4</answer>", (3, 4), 7), ("<answer>3 +\n4</answer>", (3, 4), 7),
    ("<answer>(3 +\n4)</answer>", (3, 4), 7), ("<answer>\n 3+4 \n</answer>", (3, 4), 7),
    ("<answer>3+4=7</answer>", (3, 4), 7), ("<answer>3+4</answer>\n<answer>3*4</answer>", (3, 4), 12),
    ("<answer>3+4</answer><answer>", (3, 4), 7), ("<answer>3+4", (3, 4), 7), ("3+4", (3, 4), 7),
    ("<answer>...+3+4</answer>", (3, 4), 7), ("<answer>()</answer>", (), 0), ("<answer></answer>", (), 0),
    ("<answer>3 4</answer>", (3, 4), 7), ("<answer>--3+4</answer>", (3, 4), 7), ("<answer>+3+4</answer>", (3, 4), 7),
    ("<answer>1e2</answer>", (1, 2), 100), ("<answer>3.+4.</answer>", (3, 4), 7), ("<answer>.5*2</answer>", (5, 2), 1),
    ("<answer>10/3*3</answer>", (10, 3, 3), 10), ("<answer>" + "(" * 20 + "3+4" + ")" * 20 + "</answer>", (3, 4), 7),
    ("<answer>3+4\t</answer>", (3, 4), 7), ("<answer>\\boxed{3+4}</answer>", (3, 4), 7),
    ("<answer>3 × 4</answer>", (3, 4), 12), ("<answer>99**9</answer>", (99, 9), 913517247483640899),
]


@pytest.mark.parametrize("text, numbers, target", COUNTDOWN_CORPUS)
def test_countdown_d1_reward_equals_d1(text, numbers, target):
    ours = get_task("countdown").reward(text, CountdownExample(numbers, target), "d1").components
    assert ours == {"countdown": ref_countdown(text, numbers, target)}


def small_powers(expr):
    """At most one `**` between numbers of at most two digits: d1's evaluator stays fast, and every
    integer stays within the project's bound (99**99 < 2**4096)."""
    return expr.count("**") <= 1 and max(map(len, re.findall(r"\d+", expr)), default=0) <= 2


EXPR_TOKENS = ["2", "3", "5", "10", "+", "-", "*", "/", "**", "//", "(", ")", " ", ".", "\n"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(EXPR_TOKENS), min_size=1, max_size=9).map("".join))
def test_countdown_d1_reward_equals_d1_on_random_expressions(expr):
    assume(small_powers(expr))
    numbers = tuple(int(n) for n in re.findall(r"\d+", expr))
    text = f"<answer>{expr}</answer>"
    for target in {0, 1, 8, 15, 25}:
        ours = get_task("countdown").reward(text, CountdownExample(numbers, target), "d1").total
        assert ours == ref_countdown(text, numbers, target), (expr, target)


SUDOKU = SudokuExample("3102200002100320", "3142243142131324")
SUDOKU_CORPUS = [
    "<answer>\n3142243142131324\n</answer>", "<answer>3142\n2431\n4213\n1324</answer>", "<answer>3142</answer>",
    "<answer>31422431421313249</answer>", "<answer>²3142243142131324</answer>", "<answer>٣142243142131324</answer>",
    "<answer></answer>", "<answer> </answer>", "3142243142131324", "<answer>3142243142131324",
    "<answer>0000</answer><answer>3142243142131324</answer>", "<answer>3142243142131324</answer><answer>1</answer>",
    "<answer>3 1 4 2 | 2 4 3 1 | 4 2 1 3 | 1 3 2 4</answer>", "<answer>```\n3142243142131324\n```</answer>",
    "<answer><answer>3142243142131324</answer>", "<answer>3142243142131324</answer>\n", "<answer>x1y4z</answer>",
    "<answer>３１４２２４３１４２１３１３２４</answer>",
]


@pytest.mark.parametrize("text", SUDOKU_CORPUS)
def test_sudoku_d1_reward_equals_d1(text):
    ours = get_task("sudoku").reward(text, SUDOKU, "d1").components
    assert ours == {"sudoku": ref_sudoku(text, SUDOKU.puzzle, SUDOKU.solution)}


MATH_SOLUTIONS = ["So \\boxed{\\frac{1}{2}}.", "\\boxed{0.5}", "The answer is \\boxed 5$ and more", "\\fbox{7}",
                  "no box, 12", "\\boxed{\\text{ cm}3}", "\\boxed{k=3}", "\\boxed{\\sqrt2}"]
MATH_CORPUS = [
    "\\boxed{\\frac{1}{2}}", "\\boxed{0.5}", "\\boxed{1/2}", "\\boxed{\\frac12}", "\\boxed{\\dfrac{1}{2}}",
    "<answer>\\boxed{\\frac{1}{2}}</answer>", "<answer>1/2</answer>", "1/2", "0.5", "\\boxed{.5}",
    "\\boxed{\\frac{1}{2}", "\\boxed{1}\\boxed{\\frac{1}{2}}", "\\boxed 5$", "\\boxed 5", "x \\boxed 5$ \\boxed{3}",
    "\\fbox{7}", "7", "\\boxed{7}", "\\boxed{}", "\\boxed{\\frac}", "\\boxed{\\sqrt}", "\\boxed{\\sqrt{2}}",
    "\\boxed{k=3}", "\\boxed{3}", "\\boxed{\\text{ cm}3}", "\\boxed{3\\text{ cm}\\text{ m}}", "\\boxed{a/b}",
    "<answer>\x08oxed</answer>", "<answer>a<answer>\x08oxed", "<answer>\\boxed{5}", "<answer></answer>",
    "<answer>\\boxed{12}</answer><answer>\\boxed{5}</answer>", "", "no box, 12", "\\boxed{\\left(3\\right)}",
    "\\boxed{12^\\circ}", "\\boxed{\\$12}", "\\boxed{50\\%}", "\\boxed{1 2}", "\\boxed{٣}",
]


@pytest.mark.parametrize("solution", MATH_SOLUTIONS)
@pytest.mark.parametrize("text", MATH_CORPUS)
def test_math_d1_rewards_equal_d1(text, solution):
    ours = get_task("math500").reward(text, MathExample("p", solution, "unused"), "d1").components
    assert ours == ref_math(text, solution)


def test_math_unclosed_reference_box_falls_back_to_the_answer_column():
    # d1 raises here (remove_boxed(None)); the project compares against the example's answer instead
    example = MathExample("p", "so \\boxed{\\frac{1}{2}", "\\frac{1}{2}")
    with pytest.raises(TypeError):
        ref_math("\\boxed{\\frac{1}{2}}", example.solution)
    assert get_task("math500").reward("\\boxed{\\frac{1}{2}}", example, "d1").components["correctness"] == 2.0


SOUP = ["<reasoning>", "</reasoning>", "<answer>", "</answer>", "\n", " ", "x", "4", "2", "\\boxed{", "}",
        "\\boxed ", "$", "\x08oxed", "²", "٣", "3+4", "**", "1/2"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(SOUP), max_size=14).map("".join))
def test_every_d1_reward_equals_d1_on_tag_soup(text):
    assert get_task("gsm8k").reward(text, GSM8KExample("q", "42"), "d1").components == ref_gsm8k(text, "42")
    assert get_task("sudoku").reward(text, SUDOKU, "d1").total == ref_sudoku(text, SUDOKU.puzzle, SUDOKU.solution)
    assert get_task("math500").reward(text, MathExample("p", MATH_SOLUTIONS[0], "x"), "d1").components == \
        ref_math(text, MATH_SOLUTIONS[0])
    if small_powers(text):
        blocks = re.findall(r"<answer>(.*?)</answer>", text, re.DOTALL)
        numbers = tuple(int(n) for n in re.findall(r"\d+", blocks[-1] if blocks else ""))
        example = CountdownExample(numbers, 7)
        assert get_task("countdown").reward(text, example, "d1").total == ref_countdown(text, numbers, 7)
