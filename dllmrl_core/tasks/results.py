"""What a task's reward and scorer return (every task module and AGRPO's set-up build on these)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RewardResult:
    """A scalar reward and its named parts (d1 sums its reward functions with weight 1)."""

    total: float
    components: dict[str, float]

    @classmethod
    def of(cls, **components: float) -> RewardResult:
        parts = {name: float(value) for name, value in components.items()}
        return cls(total=float(sum(parts.values())), components=parts)


@dataclass(frozen=True)
class EvalScore:
    """One evaluated completion: accuracy over a set is sum(correct) / sum(total).

    total is 1 except for Sudoku, where it is the number of empty cells of the puzzle (d1 reports
    cell accuracy). well_formed says whether an answer could be extracted at all.
    """

    correct: float
    total: float
    well_formed: bool
    extracted: str | None
