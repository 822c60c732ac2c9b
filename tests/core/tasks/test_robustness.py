"""Every reward and scorer, on random and adversarial text: no exception, finite, and fast.

Bound: < 100 ms for the median call over the adversarial corpus, < 1 s for any single call (slack
for sympy's first use of a function on the 2-core test machine). Inputs are up to 64 KB, plus one
10^6-digit number.
"""

import math
import statistics
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dllmrl_core.tasks import TASKS, CountdownExample, GSM8KExample, MathExample, SudokuExample

EXAMPLES = {"gsm8k": GSM8KExample("q", "18"), "math500": MathExample("p", "\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
            "countdown": CountdownExample((30, 100, 93), 23),
            "sudoku": SudokuExample("3102200002100320", "3142243142131324")}

ADVERSARIAL = [
    "<answer>9**9**9</answer>\\boxed{9**9**9}",
    "<answer>\\boxed{9^{9^{9}}}</answer>",
    "<answer>9^9^9^9</answer>\\boxed{2^{2^{2^{2^{2}}}}}",
    "<answer>" + "(" * 30000 + "1" + ")" * 30000 + "</answer>",
    "\\boxed{" + "(" * 30000 + "93-(100-30)" + ")" * 30000 + "}",
    "<answer>" + "9" * 65000 + "</answer>",
    "<answer>\\boxed{" + "7" * 1_000_000 + "}</answer>",
    "<answer>" * 8000,
    "<reasoning>" + "</reasoning><answer>" * 3200,
    "<reasoning>" + "</reasoning>\n<answer>" * 3000,
    "\\boxed{" * 9000,
    "\\boxed{1}" * 7000,
    "<answer>" + "```1 " * 12000,
    "</answer>" * 7000,
    ("1" * 15 + " </answer>") * 2500,
    " " * 65000,
    "<answer>\\boxed{" + "\\frac{" * 1000 + "1" + "}{2}" * 1000 + "}</answer>",
    "<answer>\\boxed{" + "\\frac{1}{" * 1000 + "2" + "}" * 1000 + "}</answer>",
    "<answer>\x00" * 5000 + "</answer>",
    "<answer>\ud800\udfff\ud83d</answer>" * 1000,
    (b"<answer>\xff\xfe\xc3(" * 4000 + b"</answer>").decode("utf-8", errors="replace"),
    "<answer>\\boxed{1000000!}</answer>",
    "<answer>\\boxed{(x+1)^{99}}</answer>",
    "<answer>\\boxed{\\sum_{n=1}^{\\infty} 1/n^2}</answer>",
    "<answer>\\boxed{\\cos(\\sin(\\tan(\\pi^{99})))}</answer>",
    "<answer>" + "1+" * 20000 + "1=2</answer>",
    "<answer>" + "1=" * 20000 + "9" * 5000 + "</answer>",
    "<think>" * 9000 + "<ANSWER>" + "=\n" * 9000,
    "1 " * 32000 + "=",
    "<answer>" + "1 " * 30000 + "</answer>" + "\t" * 1000,
    ("<reasoning>\n" + "x" * 100 + "\n</reasoning>\n<answer>\n\\boxed{18}\n</answer>\n") * 300,
    "\\boxed " * 9000 + "$" * 100,
    "\\text{ " * 9000,
    "1/" * 20000,
    "",
]

TOKENS = ["<reasoning>", "</reasoning>", "<answer>", "</answer>", "\n", " ", "\\boxed{", "\\boxed ", "}", "{", "$",
          "\\frac", "\\sqrt", "^", "!", "9", "=", "/", "(", ")", "```", "<|eot_id|>", "\x00", "\ud800", "²"]
TEXT = st.one_of(
    st.text(max_size=400),
    st.lists(st.sampled_from(TOKENS), max_size=60).map("".join),
    st.binary(max_size=400).map(lambda b: b.decode("utf-8", errors="replace")),
)


def run_all(text: str) -> list[float]:
    """Call every reward and scorer on text; check the results; return the call durations."""
    durations = []
    for name, task in TASKS.items():
        ex = EXAMPLES[name]
        for variant in ("d1", "fixed", "agrpo"):
            start = time.perf_counter()
            reward = task.reward(text, ex, variant)
            durations.append(time.perf_counter() - start)
            assert math.isfinite(reward.total) and reward.total == pytest.approx(sum(reward.components.values()))
            start = time.perf_counter()
            score = task.score(text, ex, variant)
            durations.append(time.perf_counter() - start)
            assert math.isfinite(score.correct) and 0 <= score.correct <= score.total
            assert score.total == (len(ex.empty_cells) if name == "sudoku" and variant != "agrpo" else 1)
    return durations


@pytest.fixture(scope="module", autouse=True)
def warm_up():
    """First use imports math-verify and sympy (about a second); not part of the bound."""
    run_all("<answer>\\boxed{\\frac{1}{2}}</answer>")


def test_adversarial_inputs_are_fast():
    durations = [d for text in ADVERSARIAL for d in run_all(text)]
    assert statistics.median(durations) < 0.1 and max(durations) < 1.0, (statistics.median(durations), max(durations))


def _with_examples(test):
    for text in ADVERSARIAL[:12]:  # also replayed through the property (hypothesis @example)
        test = example(text)(test)
    return test


@settings(max_examples=60, deadline=None)
@given(TEXT)
@_with_examples
def test_random_text_never_breaks_a_reward_or_scorer(text):
    assert max(run_all(text)) < 1.0
