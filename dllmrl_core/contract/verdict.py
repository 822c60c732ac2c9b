"""What a verifier says about one completion, and what it is asked.

Kept free of torch so that verifier processes start quickly (`dllmrl_core/verify/verifier.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Verdict:
    """reward: total training reward; components: its parts; points / total: the evaluation
    score (accuracy over a set = Σ points / Σ total; Sudoku counts cells); correct: points = total;
    well_formed: an answer could be extracted; timed_out: the verifier hit its time limit (all 0);
    crashed: the verifier process died on this item (all 0)."""

    reward: float
    components: dict[str, float] = field(default_factory=dict)
    points: float = 0.0
    total: float = 1.0
    well_formed: bool = False
    timed_out: bool = False
    crashed: bool = False

    @property
    def correct(self) -> bool:
        return self.total > 0 and self.points >= self.total


# Training completions answer the training prompt (`<answer>` blocks, no box), which d1's evaluation
# parsers do not read (its Countdown parser wants \boxed{}): their `correct` flag (SAPO's "reward
# correct", the reward/correct metric) uses the repaired parsers. `task.eval_protocol` is for
# held-out evaluation, whose prompts ask for the format its parsers expect.
TRAINING_PROTOCOL = "fixed"


@dataclass(frozen=True)
class VerifyItem:
    """One completion to verify: decoded text, the example it answers, and the evaluation protocol
    that scores it (None: the verifier's own, i.e. the run's `task.eval_protocol`)."""

    text: str
    example: object
    protocol: str | None = None
