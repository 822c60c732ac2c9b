"""Always-solvable Countdown problems, generated the way Countdown-Tasks-3to4 was.

Jiayi-Pan/Countdown-Tasks-3to4 (d1's training set) and d1's `countdown_cd3_test.jsonl` come from
the Stream-of-Search generator (`countdown.py` / `countdown_generate.py`): draw a target, then draw
numbers until a depth-first search finds a solution, combining two numbers at a time with `a+b`,
`a*b`, `larger-smaller` and exact `larger/smaller`, so every intermediate value is a non-negative
integer. d1's test file has 3 numbers in 1..100 and targets in 1..100 (all 256 rows solvable
under these rules), which are the defaults here. Every option can be narrowed, e.g. numbers 1-9
with `+` and `-` only for a tiny CPU model.
"""

from __future__ import annotations

import random
from functools import lru_cache
from itertools import combinations

from pydantic import Field, model_validator

from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.tasks.arithmetic import evaluate_arithmetic


class CountdownOptions(ConfigModel):
    """Problem distribution of the Countdown generator."""

    count: int = Field(3, ge=2, le=5, description="numbers per problem (d1 keeps exactly 3)")
    min_number: int = Field(1, ge=0, description="smallest number drawn")
    max_number: int = Field(100, ge=1, description="largest number drawn")
    min_target: int = Field(1, ge=0, description="smallest target")
    max_target: int = Field(100, ge=0, description="largest target")
    operators: str = Field("+-*/", description="allowed operators, a subset of '+-*/'")

    @model_validator(mode="after")
    def _check(self) -> CountdownOptions:
        if self.min_number > self.max_number:
            raise ValueError(f"min_number ({self.min_number}) must not exceed max_number ({self.max_number})")
        if self.min_target > self.max_target:
            raise ValueError(f"min_target ({self.min_target}) must not exceed max_target ({self.max_target})")
        if not self.operators or set(self.operators) - set("+-*/") or len(set(self.operators)) != len(self.operators):
            raise ValueError(f"operators must be distinct characters from '+-*/', got {self.operators!r}")
        return self


# A partial solution: (value, expression, is the expression a bare number)
_Item = tuple[int, str, bool]


def _wrap(item: _Item) -> str:
    return item[1] if item[2] else f"({item[1]})"


def _combine(a: _Item, b: _Item, operators: str) -> list[_Item]:
    """Stream-of-Search `combine_nums`: the results of one operation on two numbers."""
    big, small = (a, b) if a[0] >= b[0] else (b, a)
    x, y = big[0], small[0]
    out: list[_Item] = []
    if "+" in operators:
        out.append((x + y, f"{_wrap(big)}+{_wrap(small)}", False))
    if "*" in operators:
        out.append((x * y, f"{_wrap(big)}*{_wrap(small)}", False))
    if "-" in operators:
        out.append((x - y, f"{_wrap(big)}-{_wrap(small)}", False))
    if "/" in operators and y != 0 and x % y == 0:
        out.append((x // y, f"{_wrap(big)}/{_wrap(small)}", False))
    return out


def _search(items: list[_Item], target: int, operators: str) -> str | None:
    if len(items) == 1:
        return items[0][1] if items[0][0] == target else None
    for i, j in combinations(range(len(items)), 2):
        rest = [items[k] for k in range(len(items)) if k not in (i, j)]
        for combined in _combine(items[i], items[j], operators):
            found = _search(rest + [combined], target, operators)
            if found is not None:
                return found
    return None


def _values(a: int, b: int, operators: str) -> list[int]:
    x, y = (a, b) if a >= b else (b, a)
    out = []
    if "+" in operators:
        out.append(x + y)
    if "*" in operators:
        out.append(x * y)
    if "-" in operators:
        out.append(x - y)
    if "/" in operators and y != 0 and x % y == 0:
        out.append(x // y)
    return out


def solvable(numbers: tuple[int, ...], target: int, operators: str) -> bool:
    """Whether some order of operations on all the numbers reaches target (values only, fast)."""
    return _solvable(tuple(sorted(numbers)), target, operators)


def _reaches(numbers: tuple[int, ...], target: int, operators: str) -> bool:
    if len(numbers) == 1:
        return numbers[0] == target
    if len(numbers) == 2:
        return target in _values(numbers[0], numbers[1], operators)
    for i, j in combinations(range(len(numbers)), 2):
        rest = tuple(numbers[k] for k in range(len(numbers)) if k not in (i, j))
        if any(_reaches(rest + (v,), target, operators) for v in _values(numbers[i], numbers[j], operators)):
            return True
    return False


# generators redraw the same small number sets many thousands of times; only whole sets are cached
_solvable = lru_cache(maxsize=1 << 16)(_reaches)


def solve_countdown(numbers: tuple[int, ...] | list[int], target: int, operators: str = "+-*/") -> str | None:
    """An expression using every number once that equals target (Stream-of-Search rules), or None."""
    if len(numbers) > 6:
        raise ValueError("solve_countdown supports at most 6 numbers")
    return _search([(n, str(n), True) for n in numbers], target, operators)


def generate_countdown(n: int, seed: int, options: CountdownOptions | None = None,
                       max_attempts: int | None = None) -> list[tuple[tuple[int, ...], int, str]]:
    """n problems as (numbers, target, reference expression), seeded by `seed`.

    A target is drawn uniformly, then numbers until one set is solvable (as Stream-of-Search does);
    after 200 unsolvable draws a new target is drawn. Raises ValueError if the options admit no
    solvable problem within max_attempts draws (default 2000 + 2000 n).
    """
    options = options or CountdownOptions()
    rng = random.Random(seed)
    budget = 2000 + 2000 * n if max_attempts is None else max_attempts
    problems: list[tuple[tuple[int, ...], int, str]] = []
    target, tries = rng.randint(options.min_target, options.max_target), 0
    while len(problems) < n:
        if budget <= 0:
            raise ValueError(f"countdown generator found no solvable problem for {options.model_dump()}")
        budget, tries = budget - 1, tries + 1
        numbers = tuple(rng.randint(options.min_number, options.max_number) for _ in range(options.count))
        ok = solvable(numbers, target, options.operators)
        reference = solve_countdown(numbers, target, options.operators) if ok else None
        if reference is not None and evaluate_arithmetic(reference) == target:
            problems.append((numbers, target, reference))
        if reference is not None or tries >= 200:
            target, tries = rng.randint(options.min_target, options.max_target), 0
    return problems
