"""Verification in worker processes: per-item time limit, timeouts and crashes counted apart, replaced processes."""

import os
import time

from dllmrl_core.contract.verdict import VerifyItem
from dllmrl_core.tasks import CountdownExample, TaskConfig
from dllmrl_core.verify.verifier import serve
from services.reward_actors import TimedPool, gather

EX = CountdownExample((30, 100, 93), 23)
COUNTDOWN = TaskConfig.parse({"name": "countdown", "reward_set": "d1", "eval_protocol": "fixed"})


def stalling_serve(conn, task):
    """A verifier that hangs on "hang" and dies on "die"; anything else is verified normally."""
    from dllmrl_core.verify.verifier import verify

    while (job := conn.recv()) is not None:
        index, item = job
        if item.text == "hang":
            time.sleep(3600)
        if item.text == "die":
            os._exit(1)
        conn.send((index, verify(task.task, task.reward_set, task.eval_protocol, item.text, item.example)))


def test_overrunning_and_dying_verifiers_score_zero_are_counted_and_replaced():
    pool = TimedPool(2, COUNTDOWN, target=stalling_serve)
    items = [VerifyItem("<answer>93-(100-30)</answer>", EX), VerifyItem("hang", EX), VerifyItem("die", EX),
             VerifyItem("<answer>93+100-30</answer>", EX), VerifyItem("<answer>93-(100-30)</answer>", EX)]
    start = time.monotonic()
    verdicts = pool.map(items, timeout_s=2.0)
    assert time.monotonic() - start < 30
    assert [v.reward for v in verdicts] == [1.0, 0.0, 0.0, 0.1, 1.0]
    assert [v.timed_out for v in verdicts] == [False, True, False, False, False]
    assert [v.crashed for v in verdicts] == [False, False, True, False, False]  # a dead verifier is no timeout
    assert pool.timeouts == 1 and pool.crashes == 1 and pool.restarts == 2
    assert [v.reward for v in pool.map(items[:1] * 3, timeout_s=2.0)] == [1.0] * 3  # replacements work
    pool.close()


def test_real_verifier_processes_match_in_process_verification():
    pool = TimedPool(1, COUNTDOWN, target=serve)
    verdicts = pool.map([VerifyItem("<answer>93-(100-30)</answer>", EX), VerifyItem("no", EX)], timeout_s=30)
    assert [(v.reward, v.correct, v.well_formed) for v in verdicts] == [(1.0, True, True), (0.0, False, False)]
    pool.close()


def test_gather_undoes_the_interleaved_split():
    items = list(range(7))
    parts = [items[k::3] for k in range(3)]
    assert gather(parts) == items
