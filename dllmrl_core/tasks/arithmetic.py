"""Safe evaluation of Countdown expressions: an `ast` walker, never Python's evaluator.

d1 checks the characters of an equation against `^[\\d+\\-*/().\\s]+$` and then hands it to Python
with builtins disabled. Here the expression is parsed with `ast.parse(mode="eval")` (the same
grammar, so the same syntax errors) and only numeric literals, `+ - * /`, unary `+ -` and
parentheses are evaluated. Differences from d1, all on inputs no honest answer contains: `**`, `//`
are refused (d1 would compute them), and expressions longer than MAX_CHARS, nested deeper than
MAX_DEPTH, or with intermediate values beyond MAX_ABS are refused. Division by zero is refused.
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

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
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


def parse_arithmetic(expr: str) -> ast.expr:
    """The expression's AST, or Refused. Leading/trailing spaces and tabs are ignored (as Python's
    own evaluator does for source strings)."""
    expr = expr.strip(" \t")
    if not expr or len(expr) > MAX_CHARS or nesting_depth(expr) > MAX_DEPTH:
        raise Refused("empty, too long or too deeply nested")
    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise Refused("not an expression") from None
    _check(tree.body, 0)
    return tree.body


def _check(node: ast.AST, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise Refused("too deeply nested")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        _check(node.left, depth + 1)
        _check(node.right, depth + 1)
    elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        _check(node.operand, depth + 1)
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        if type(node.value) is int and len(str(abs(node.value))) > MAX_LITERAL_DIGITS:
            raise Refused("literal too long")
    else:
        raise Refused(f"{type(node).__name__} is not allowed")


def _value(node: ast.expr) -> int | float:
    if isinstance(node, ast.Constant):
        return _bounded(node.value)
    if isinstance(node, ast.UnaryOp):
        return _bounded(_UNARY[type(node.op)](_value(node.operand)))
    left, right = _value(node.left), _value(node.right)
    if isinstance(node.op, ast.Div) and right == 0:
        raise Refused("division by zero")
    return _bounded(_BINOPS[type(node.op)](left, right))


def _bounded(x: int | float) -> int | float:
    if not math.isfinite(x) or abs(x) > MAX_ABS:
        raise Refused("value out of range")
    return x


def evaluate_arithmetic(expr: str) -> int | float | None:
    """Value of a +-*/ expression (Python number semantics: `/` is true division), or None."""
    try:
        return _value(parse_arithmetic(expr))
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
