"""Safe evaluation of Countdown expressions: an `ast` walker, never Python's evaluator.

d1 checks the characters of an equation against `^[\\d+\\-*/().\\s]+$` and then hands it to Python
with builtins disabled. Here the expression is parsed with `ast.parse(mode="eval")` (the same
grammar, so the same syntax errors) and only numeric literals, `+ - * /`, unary `+ -` and
parentheses are evaluated, with intermediate values bounded by MAX_ABS.

`python_ops=True` is d1's evaluator: also `**` and `//` (the other operators its whitelist lets
through), with Python's results (a negative base to a fractional power is complex; floats may
overflow to inf), and integers bounded by MAX_INT_BITS instead of MAX_ABS, a power being refused
before it is computed. In both modes an operation Python rejects (division by zero, `//` of a
complex, a float overflow in `**` or `/`) gives None, as d1's evaluator fails there too, and
expressions longer than MAX_CHARS or nested deeper than MAX_DEPTH are refused. So d1's Countdown
score differs only on those long or deep expressions, and where d1 would compute an integer beyond
MAX_INT_BITS that a later division or multiplication by zero brings back to the target.
"""

from __future__ import annotations

import ast
import math
import operator
import re

MAX_CHARS = 512
MAX_DEPTH = 32
MAX_LITERAL_DIGITS = 30
MAX_ABS = 1e30
MAX_INT_BITS = 4096  # d1 semantics: integers up to 2**4096 (about 1233 digits)

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_PYTHON_BINOPS = {**_BINOPS, ast.Pow: operator.pow, ast.FloorDiv: operator.floordiv}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_D1_CHARS = re.compile(r"[\d+\-*/().\s]+")


class Refused(ValueError):
    """The expression is not a bounded +-*/ arithmetic expression."""


def d1_allowed_chars(expr: str) -> bool:
    """d1's character whitelist `re.match(r"^[\\d+\\-*/().\\s]+$", expr)`."""
    return _D1_CHARS.fullmatch(expr) is not None  # `$` before a final "\n" adds nothing: \s covers it


def nesting_depth(expr: str) -> int:
    """Deepest bracket nesting of any kind: ( [ {."""
    depth = deepest = 0
    for ch in expr:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


def parse_arithmetic(expr: str, python_ops: bool = False) -> ast.expr:
    """The expression's AST, or Refused. Leading/trailing spaces and tabs are ignored (as Python's
    own evaluator does for source strings). python_ops: also `**` and `//`."""
    expr = expr.strip(" \t")
    if not expr or len(expr) > MAX_CHARS or nesting_depth(expr) > MAX_DEPTH:
        raise Refused("empty, too long or too deeply nested")
    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise Refused("not an expression") from None
    _check(tree.body, 0, _PYTHON_BINOPS if python_ops else _BINOPS)
    return tree.body


def _check(node: ast.AST, depth: int, binops: dict) -> None:
    if depth > MAX_DEPTH:
        raise Refused("too deeply nested")
    if isinstance(node, ast.BinOp) and type(node.op) in binops:
        _check(node.left, depth + 1, binops)
        _check(node.right, depth + 1, binops)
    elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        _check(node.operand, depth + 1, binops)
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        if binops is _BINOPS and type(node.value) is int and len(str(abs(node.value))) > MAX_LITERAL_DIGITS:
            raise Refused("literal too long")
    else:
        raise Refused(f"{type(node).__name__} is not allowed")


def _value(node: ast.expr, python_ops: bool = False) -> int | float | complex:
    bounded = _bounded_python if python_ops else _bounded
    if isinstance(node, ast.Constant):
        return bounded(node.value)
    if isinstance(node, ast.UnaryOp):
        return bounded(_UNARY[type(node.op)](_value(node.operand, python_ops)))
    left, right = _value(node.left, python_ops), _value(node.right, python_ops)
    if isinstance(node.op, ast.Pow) and _power_too_large(left, right):
        raise Refused("power out of range")
    try:
        return bounded(_PYTHON_BINOPS[type(node.op)](left, right))
    except (ArithmeticError, TypeError, ValueError):  # x/0, x//0, 0**-1, float overflow, complex // y
        raise Refused(f"{type(node.op).__name__} failed") from None


def _power_too_large(base: int | float | complex, exponent: int | float | complex) -> bool:
    """Whether an integer power would exceed MAX_INT_BITS (checked before computing it; float and
    complex powers cost the same whatever their size, and overflow with an error)."""
    if type(base) is not int or type(exponent) is not int or abs(base) <= 1 or exponent <= 0:
        return False
    return exponent * math.log2(abs(base)) > MAX_INT_BITS


def _bounded(x: int | float | complex) -> int | float:
    """+-*/ arithmetic: finite real values within MAX_ABS."""
    if isinstance(x, complex) or not math.isfinite(x) or abs(x) > MAX_ABS:
        raise Refused("value out of range")
    return x


def _bounded_python(x: int | float | complex) -> int | float | complex:
    """d1 semantics: any float or complex (inf and nan included); integers within MAX_INT_BITS."""
    if type(x) is int and x.bit_length() > MAX_INT_BITS:
        raise Refused("integer out of range")
    return x


def evaluate_arithmetic(expr: str, python_ops: bool = False) -> int | float | complex | None:
    """Value of a +-*/ expression (Python number semantics: `/` is true division), or None.
    python_ops: d1's evaluator (`**` and `//` too, the result may be complex or infinite)."""
    try:
        return _value(parse_arithmetic(expr, python_ops), python_ops)
    except Refused:
        return None


def integer_literals(expr: str) -> list[int] | None:
    """The integer literals of an expression (None if it is not a valid expression or uses a
    non-integer literal): the "fixed" Countdown number check."""
    try:
        tree = parse_arithmetic(expr)
    except Refused:
        return None
    values = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    return values if all(type(v) is int for v in values) else None
