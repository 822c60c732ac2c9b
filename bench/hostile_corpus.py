"""A seeded generator of hostile completions for every task (issue 16): huge numbers in every syntax
Math-Verify and sympy accept, deep nesting, long digit strings, Unicode and control characters, and
injection strings that would create a canary file if any verifier ran them as code.

`corpus(task, n, seed, canary)` is deterministic: the same arguments give the same list.
"""

from __future__ import annotations

import random

BIG = ["99", "999", "10", "9", "2", "123456789", "1e999", "1.5e308", "10^{10}", "0.0001"]

POWERS = [
    "{a}^{{{a}^{{{a}}}}}", "{a}^{a}^{a}^{a}", "{a}**{a}**{a}", "(((({a}^{{{a}}})^{{{a}}})^{{{a}}})^{{{a}}})",
    "{{({a}^{{{a}}})}}^{{{a}}}", "\\left({a}^{{{a}}}\\right)^{{{a}}}", "{a}^{{{a}!}}", "{a}!!!!!", "({a}!)!",
    "\\frac{{{a}^{{{a}^{{{a}}}}}}}{{{a}}}", "\\sqrt[{a}^{{{a}}}]{{{a}}}", "\\sqrt{{{a}^{{{a}^{{{a}}}}}}}",
    "{a} \\cdot {a}^{{{a}^{{{a}}}}}", "{a}\\times10^{{{a}^{{{a}}}}}", "{a}e{a}{a}{a}{a}", "{a}E+99999",
    "\\underbrace{{{a}^{{{a}^{{{a}}}}}}}_{{{a}}}", "\\overbrace{{{a}!}}", "e^{{e^{{e^{{{a}}}}}}}", "\\exp(\\exp({a}))",
    "\\binom{{{a}^{{{a}}}}}{{{a}}}", "\\sum_{{n=1}}^{{{a}^{{{a}}}}} n^{{n}}", "\\prod_{{k=1}}^{{{a}}} k!",
    "\\int_0^{{{a}}} x^{{{a}^{{{a}}}}} dx", "\\lim_{{x\\to\\infty}} x^{{{a}}}", "{a}^{{{a}}} \\bmod {a}",
    "\\Gamma({a}^{{{a}}})", "\\tan(\\sin(\\cos(\\log({a}))))", "{a}⁹⁹⁹", "{a}^(9^(9^9))", "pow({a}, {a}**{a})",
    "{a}^{{-{a}^{{{a}}}}}", "\\frac{{1}}{{0}}", "0^{{0}}", "\\infty^{{\\infty}}", "\\mathrm{{{a}}}^{{{a}^{{{a}}}}}",
]

INJECTIONS = [
    "__import__('os').system('touch {canary}')", "eval(\"open('{canary}','w')\")",
    "exec(\"open('{canary}','w').write('x')\")", "(lambda: __import__('os').system('touch {canary}'))()",
    "\\input{{/etc/passwd}}", "\\include{{/etc/shadow}}", "\\write18{{touch {canary}}}",
    "\\immediate\\write18{{touch {canary}}}",
    "$(touch {canary})", "`touch {canary}`", "{{0.__class__.__mro__}}", "%s%s%s%n", "\\def\\x{{\\x}}\\x",
    "\\newcommand{{\\a}}{{\\a\\a}}\\a", "Symbol('x').__class__.__init__.__globals__", "import os; os.system('id')",
    "sympify(\"__import__('os').system('touch {canary}')\")", "<script>alert(1)</script>", "'; DROP TABLE x; --",
]

UNICODE = ["\u202e", "\u200b", "\ufeff", "９", "٣", "𝟗", "²", "½", "∞", "√", "−", "×", "÷", "🙂",
           "\ud800", "ｘ", "ℵ", "\u0301", "Ⅻ", "〇"]


def _fragment(rng: random.Random, canary: str) -> str:
    kind = rng.randrange(8)
    a = rng.choice(BIG)
    if kind <= 2:
        return rng.choice(POWERS).format(a=a)
    if kind == 3:
        return rng.choice(INJECTIONS).format(canary=canary)
    if kind == 4:
        depth = rng.choice([6, 30, 200, 3000])
        opener, closer = rng.choice([("(", ")"), ("{", "}"), ("[", "]"), ("\\left(", "\\right)"), ("\\frac{1}{", "}"),
                                     ("\\sqrt{", "}"), ("\\boxed{", "}")])
        return opener * depth + a + closer * rng.choice([depth, depth - 1, 0])
    if kind == 5:
        return rng.choice("123456789") * rng.choice([41, 400, 4301, 20000]) + rng.choice(["", ".5", "e5", "!"])
    if kind == 6:
        pieces = UNICODE + [chr(rng.randrange(32)), a, "^", "{", "}"]
        return "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 40)))
    return " ".join(rng.choice(POWERS).format(a=rng.choice(BIG)) for _ in range(rng.randrange(2, 5)))


def _wrap(rng: random.Random, task: str, inner: str) -> str:
    """Put the fragment where each task's extractors look: boxes, answer tags, equations, grids."""
    forms = ["{x}", "\\boxed{{{x}}}", "<answer>{x}</answer>", "<answer>\\boxed{{{x}}}</answer>",
             "<reasoning>\n{x}\n</reasoning>\n<answer>\n{x}\n</answer>\n",
             "<think>{x}</think><answer>\\boxed{{{x}}}</answer>",
             "<answer>{x}</answer>" * 3, "\\boxed{{{x}" + "\\boxed{{" * 5]
    if task == "countdown":
        forms += ["<answer>{x} = 23</answer>", "<answer>93-(100-30)*{x}</answer>", "<answer>\n{x} = {x}\n</answer>"]
    elif task == "sudoku":
        forms += ["<answer>3142{x}2431</answer>", "<answer>```{x}```</answer>", "{x}3142243142131324"]
    else:
        forms += ["The answer is {x}.", "#### {x}", "<answer>${x}$</answer>"]
    return rng.choice(forms).format(x=inner)


def corpus(task: str, n: int, seed: int = 0, canary: str = "/tmp/dllmrl-hostile-canary") -> list[str]:
    """n hostile completions for `task`, the same for the same (task, n, seed, canary)."""
    rng = random.Random(f"{seed}:{task}")
    return [_wrap(rng, task, _fragment(rng, canary)) for _ in range(n)]
