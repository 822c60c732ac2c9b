"""Answer equivalence for the "fixed" reward set: plain numbers first, then a bounded math-verify.

math-verify's own timeouts use `signal.alarm`, which raises outside the main thread, so they are
switched off (`parsing_timeout=None`, `timeout_seconds=None`) and the work is bounded up front
instead: only short answers are handed over, and shapes that make sympy slow or hang are refused
(exponent towers such as `9^{9^{9}}`, `((9^{9})^{9})^{9}` or `\\exp(\\exp(10^{10}))`, large
exponents, factorials, sums/integrals/limits, chains of functions such as `\\cos(\\sin(\\tan x))`,
deep nesting, very long numbers), which counts as "not equivalent". The guard keeps the common
case fast; the bound that cannot be talked around is the per-item time limit of the verifier
processes (`dllmrl_core/verify/pool.py`).
"""

from __future__ import annotations

import math
import re

from dllmrl_core.tasks.arithmetic import nesting_depth
from dllmrl_core.tasks.tags import ws_end

MAX_VERIFY_CHARS = 200
MAX_NESTING = 5
MAX_DIGIT_RUN = 40
_SLOW_COMMANDS = re.compile(r"\\(sum|prod|int|iint|iiint|oint|lim|limsup|liminf|binom|choose|Gamma|zeta|operatorname)"
                            r"(?![a-zA-Z])")
_FUNCTIONS = re.compile(r"\\(a?(sin|cos|tan|cot|sec|csc)h?|arc(sin|cos|tan)|log|ln|exp)(?![a-zA-Z])")
MAX_FUNCTIONS = 2
_LONG_DIGITS = re.compile(r"\d{%d,}" % (MAX_DIGIT_RUN + 1))
_LETTER_OUTSIDE_COMMAND = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_plain_number(text: str) -> float | None:
    """A plain decimal number, allowing thousands separators, `$`, `%`, `\\$`, `\\%` and spaces."""
    cleaned = text.strip()
    for junk in ("\\$", "\\%", "$", "%", ",", "\\!", "\\,", " "):
        cleaned = cleaned.replace(junk, "")
    cleaned = cleaned.rstrip(".")
    if len(cleaned) > MAX_DIGIT_RUN or not _PLAIN_NUMBER.fullmatch(cleaned):
        return None
    value = float(cleaned)
    return value if math.isfinite(value) else None


def last_number(text: str) -> float | None:
    """The last `-?digits[.digits]` in the text, ignoring thousands separators."""
    found = None
    for m in _NUMBER.finditer(text.replace(",", "")):
        found = m.group()
    return None if found is None or len(found) > MAX_DIGIT_RUN else float(found)


def numbers_close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


def _exponents(text: str) -> list[tuple[str, bool]]:
    """(exponent, followed by another `^`) for each `^`: a brace or bracket group (`^(9^9)` as well as
    `^{9^9}`), a digit run or one char."""
    out = []
    for m in re.finditer(r"\^", text):
        start = ws_end(text, m.end())
        if text[start:start + 1] in ("{", "(", "["):
            opener = text[start]
            closer = {"{": "}", "(": ")", "[": "]"}[opener]
            depth, end = 0, len(text)
            for i in range(start, len(text)):
                depth += (text[i] == opener) - (text[i] == closer)
                if depth == 0:
                    end = i + 1
                    break
            exponent = text[start + 1:end - 1]
        else:
            digits = re.match(r"\d+", text[start:])
            end = start + (len(digits.group()) if digits else 1)
            exponent = text[start:end]
        out.append((exponent, text.startswith("^", ws_end(text, end))))
    return out


_CLOSING = {")": "(", "}": "{", "]": "["}


def _powered_group_has_power(text: str, caret: int) -> bool:
    """Whether the base of the `^` at `caret` is a bracket group that holds a `^` itself: a power of a
    power, `(((99^{99})^{99})^{99})^{99}`, whose value sympy would build digit by digit."""
    end = caret
    while end > 0 and text[end - 1].isspace():
        end -= 1
    if end == 0 or text[end - 1] not in _CLOSING:
        return False
    depth = 0
    for i in range(end - 1, -1, -1):
        depth += (text[i] in _CLOSING) - (text[i] in "([{")
        if depth == 0:
            return "^" in text[i:end]
    return True  # unbalanced: refuse


def too_risky(expr: str) -> bool:
    """True for inputs math-verify/sympy may not finish quickly (see module doc)."""
    if len(expr) > MAX_VERIFY_CHARS or "**" in expr or _SLOW_COMMANDS.search(expr) or _LONG_DIGITS.search(expr):
        return True
    if "!" in expr.replace("\\!", "") or len(_FUNCTIONS.findall(expr)) > MAX_FUNCTIONS:
        return True
    if nesting_depth(expr) > MAX_NESTING:
        return True
    if any(_powered_group_has_power(expr, m.start()) for m in re.finditer(r"\^", expr)):
        return True
    if "\\exp" in expr and ("^" in expr or expr.count("\\exp") > 1):  # \exp(\exp(10^{10})): a tower too
        return True
    max_exponent = 12 if _LETTER_OUTSIDE_COMMAND.search(expr) else 99
    for exponent, chained in _exponents(expr):
        if chained or "^" in exponent or any(int(run) > max_exponent for run in re.findall(r"\d{1,4}", exponent)):
            return True
    return False


def math_equivalent(pred: str, gold: str) -> bool:
    """math-verify equivalence of two short LaTeX/plain answers; False when refused or failing."""
    pred, gold = pred.strip(), gold.strip()
    if not pred or not gold or too_risky(pred) or too_risky(gold):
        return False
    from math_verify import parse, verify

    try:
        gold_parsed = parse(f"${gold}$", parsing_timeout=None)
        pred_parsed = parse(f"${pred}$", parsing_timeout=None)
        if not gold_parsed or not pred_parsed:
            return False
        return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))
    except Exception:  # math-verify/sympy raise many types on odd input; any failure = not equal
        return False


def numeric_equivalent(pred: str, gold: str) -> bool:
    """Plain-number comparison when both sides are plain numbers, else math_equivalent."""
    a, b = parse_plain_number(pred), parse_plain_number(gold)
    if a is not None and b is not None:
        return numbers_close(a, b)
    return math_equivalent(pred, gold)
