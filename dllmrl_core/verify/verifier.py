"""The per-item function reward workers run: the training reward and the evaluation score of one
decoded completion, and `serve`, the loop a verifier process runs (`VerifierPool` in `pool.py`
starts it under a per-item time limit, for every verification path).

Kept free of torch so that verifier processes start quickly.
"""

from __future__ import annotations

from dllmrl_core.contract.verdict import Verdict


def verify(task, reward_set: str, protocol: str, completion: str, example) -> Verdict:
    """The training reward and the evaluation score of one completion."""
    result = task.reward(completion, example, reward_set)
    score = task.score(completion, example, protocol)
    return Verdict(reward=result.total, components=result.components, points=score.correct, total=score.total,
                   well_formed=score.well_formed)


def serve(conn, task_name: str, reward_set: str, protocol: str) -> None:
    """Verifier process: receive (index, VerifyItem), send back (index, Verdict), until None."""
    from dllmrl_core.tasks import get_task

    task = get_task(task_name)
    while True:
        job = conn.recv()
        if job is None:
            return
        index, item = job
        conn.send((index, verify(task, reward_set, item.protocol or protocol, item.text, item.example)))
