"""4x4 Sudoku: a small backtracking solver, the 288 solution grids, and a unique-puzzle generator.

Puzzles are 16-character strings read row by row, '0' = empty. d1 trains on a file of unique
puzzles and tests on 500 puzzles with 8 empty cells (`4x4_test_sudoku.csv`); SPG re-split the
puzzles by solution grid (200 of the 288 grids for training, the rest for testing) because d1's
test solutions also occur in its training file [SPG dataset/generate_new_sudoku_splitting.py].
The generator blanks cells of a grid in random order, keeping a cell filled whenever removing it
would admit a second solution, until the requested number of cells is empty.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from functools import cache

from pydantic import Field, model_validator

from dllmrl_core.contract.configbase import ConfigModel

DIGITS = "1234"


def _peers(cell: int) -> frozenset[int]:
    r, c = divmod(cell, 4)
    box = [(r // 2 * 2 + i) * 4 + c // 2 * 2 + j for i in range(2) for j in range(2)]
    return frozenset([r * 4 + k for k in range(4)] + [k * 4 + c for k in range(4)] + box) - {cell}


PEERS: tuple[frozenset[int], ...] = tuple(_peers(i) for i in range(16))


def solve_sudoku(puzzle: str, limit: int | None = 2) -> list[str]:
    """Solutions of a puzzle (at most `limit`; None = all), by depth-first backtracking."""
    if len(puzzle) != 16 or any(ch not in "01234" for ch in puzzle):
        raise ValueError(f"not a 4x4 puzzle: {puzzle!r}")
    cells = list(puzzle)
    if any(ch != "0" and any(cells[p] == ch for p in PEERS[i]) for i, ch in enumerate(cells)):
        return []
    found: list[str] = []

    def fill(pos: int) -> None:
        if limit is not None and len(found) >= limit:
            return
        if pos == 16:
            found.append("".join(cells))
            return
        if cells[pos] != "0":
            fill(pos + 1)
            return
        for digit in DIGITS:
            if all(cells[p] != digit for p in PEERS[pos]):
                cells[pos] = digit
                fill(pos + 1)
                cells[pos] = "0"

    fill(0)
    return found


@cache
def all_grids() -> tuple[str, ...]:
    """The 288 valid 4x4 Sudoku grids, sorted."""
    return tuple(sorted(solve_sudoku("0" * 16, limit=None)))


def is_valid_grid(grid: str) -> bool:
    return len(grid) == 16 and all(ch in DIGITS for ch in grid) and not any(
        grid[p] == ch for i, ch in enumerate(grid) for p in PEERS[i])


def split_grids(seed: int, n_train: int = 200, holdout: Iterable[str] | None = None) -> tuple[list[str], list[str]]:
    """SPG-style solution-disjoint split: (train grids, test grids).

    With `holdout` (e.g. the solutions of a test file) the test grids are exactly those and the
    train grids all others; otherwise a seeded shuffle puts n_train grids in train.
    """
    grids = list(all_grids())
    if holdout is not None:
        held = set(holdout)
        return [g for g in grids if g not in held], [g for g in grids if g in held]
    if not 0 < n_train < len(grids):
        raise ValueError(f"n_train must be in 1..{len(grids) - 1}, got {n_train}")
    random.Random(seed).shuffle(grids)
    return sorted(grids[:n_train]), sorted(grids[n_train:])


class SudokuOptions(ConfigModel):
    """Puzzle distribution of the Sudoku generator."""

    min_empty: int = Field(8, ge=1, le=12, description="fewest empty cells (d1's test set: 8)")
    max_empty: int = Field(8, ge=1, le=12, description="most empty cells (SPG's test set: 7-12)")
    solution_disjoint: bool = Field(False, description="SPG split: train and test use different grids")
    split_seed: int = Field(0, description="seed of the 200/88 grid split")
    train_grids: int = Field(200, ge=1, le=287, description="grids in the training part of the split")

    @model_validator(mode="after")
    def _check(self) -> SudokuOptions:
        if self.min_empty > self.max_empty:
            raise ValueError(f"min_empty ({self.min_empty}) must not exceed max_empty ({self.max_empty})")
        return self


def _cell_masks(grids: Sequence[str]) -> list[dict[str, int]]:
    """masks[cell][digit]: bit g set when grid g has that digit in that cell."""
    masks = [{d: 0 for d in DIGITS} for _ in range(16)]
    for g, grid in enumerate(grids):
        for cell, digit in enumerate(grid):
            masks[cell][digit] |= 1 << g
    return masks


def _unique(grid: str, clues: Iterable[int], masks: list[dict[str, int]]) -> bool:
    """Exactly one of the 288 grids agrees with the grid on the clue cells."""
    consistent = (1 << len(all_grids())) - 1
    for cell in clues:
        consistent &= masks[cell][grid[cell]]
    return consistent & (consistent - 1) == 0


def _blank(grid: str, k: int, rng: random.Random, masks: list[dict[str, int]]) -> str | None:
    order = list(range(16))
    rng.shuffle(order)
    clues = set(range(16))
    for cell in order:
        if 16 - len(clues) == k:
            break
        if _unique(grid, clues - {cell}, masks):
            clues.discard(cell)
    if 16 - len(clues) != k:
        return None
    return "".join(grid[i] if i in clues else "0" for i in range(16))


def generate_sudoku(n: int, seed: int, options: SudokuOptions | None = None,
                    grids: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """n (puzzle, solution) pairs with a unique solution, drawn from `grids` (default: all 288)."""
    options = options or SudokuOptions()
    pool = list(all_grids() if grids is None else grids)
    if not pool or not all(is_valid_grid(g) for g in pool):
        raise ValueError("grids must be a non-empty list of valid 4x4 solution grids")
    rng, masks = random.Random(seed), _cell_masks(all_grids())
    out: list[tuple[str, str]] = []
    budget = 200 + 200 * n
    while len(out) < n:
        if budget <= 0:
            raise ValueError(f"sudoku generator could not reach {options.min_empty}-{options.max_empty} empty cells")
        budget -= 1
        grid = rng.choice(pool)
        puzzle = _blank(grid, rng.randint(options.min_empty, options.max_empty), rng, masks)
        if puzzle is not None:
            out.append((puzzle, grid))
    return out
