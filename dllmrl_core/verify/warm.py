"""Importing this module warms Math-Verify: the verifier processes' forkserver imports it once
(`pool.PRELOAD`), so every verifier process forked from it, a replacement after a timeout included,
starts with sympy's and the LaTeX parser's caches filled, and its first item does not spend a large
part of the time limit on them (about 1 s on a loaded 2-core machine)."""

from __future__ import annotations

from dllmrl_core.tasks.agrpo import verified
from dllmrl_core.tasks.equivalence import math_equivalent

WARM_PAIRS = (("\\frac{1}{2}", "0.5"), ("x^2+1", "1+x^{2}"), ("\\sqrt{4}", "2"), ("(1,2)", "(1, 2)"),
              ("3\\pi", "\\pi\\cdot 3"), ("\\{1, 2\\}", "[1, 2]"))


def warm() -> None:
    for gold, pred in WARM_PAIRS:
        math_equivalent(pred, gold)
    verified("23", "93 - (100 - 30)", latex=False)


warm()
