"""The per-item function reward workers run: the training reward and the evaluation score of one
decoded completion, and `serve`, the loop a verifier process runs (`VerifierPool` in `pool.py`
starts it under a per-item time limit, for every verification path).

Kept free of torch so that verifier processes start quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dllmrl_core.contract.verdict import Verdict
from dllmrl_core.tasks.base import reward_of

if TYPE_CHECKING:
    from dllmrl_core.tasks import TaskConfig


def verify(task, reward_set: str, protocol: str, completion: str, example) -> Verdict:
    """The training reward and the evaluation score of one completion."""
    result = reward_of(task, completion, example, reward_set)
    score = task.score(completion, example, protocol)
    return Verdict(reward=result.total, components=result.components, points=score.correct, total=score.total,
                   well_formed=score.well_formed)


def serve(conn, config: TaskConfig) -> None:
    """Verifier process: receive (index, VerifyItem), send back (index, Verdict), until None. The
    task comes from its config here, by name (a plug-in task is imported in this process)."""
    task, reward_set, protocol = config.task, config.reward_set, config.eval_protocol
    while True:
        try:
            job = conn.recv()
        except EOFError:  # the pool's owner is gone (a killed actor): nothing left to verify
            return
        if job is None:
            return
        index, item = job
        conn.send((index, verify(task, reward_set, item.protocol or protocol, item.text, item.example)))
