"""VerifierPool: per-item time limit, timeouts and crashes counted apart, replaced processes."""

import time

from dllmrl_core.contract.verdict import VerifyItem
from dllmrl_core.tasks import CountdownExample, TaskConfig
from dllmrl_core.verify.pool import VerifierPool
from tests.core.verify.targets import stalling_serve

EX = CountdownExample((30, 100, 93), 23)
COUNTDOWN = TaskConfig.parse({"name": "countdown", "reward_set": "d1", "eval_protocol": "fixed"})


def test_overrunning_and_dying_verifiers_score_zero_are_counted_and_replaced():
    items = [VerifyItem("<answer>93-(100-30)</answer>", EX), VerifyItem("hang", EX), VerifyItem("die", EX),
             VerifyItem("<answer>93+100-30</answer>", EX), VerifyItem("<answer>93-(100-30)</answer>", EX)]
    with VerifierPool(COUNTDOWN, timeout_s=1.0, processes=2, target=stalling_serve) as pool:
        start = time.monotonic()
        verdicts = pool.map(items)
        assert time.monotonic() - start < 30
        assert [v.reward for v in verdicts] == [1.0, 0.0, 0.0, 0.1, 1.0]
        assert [v.timed_out for v in verdicts] == [False, True, False, False, False]
        assert [v.crashed for v in verdicts] == [False, False, True, False, False]  # a dead verifier is no timeout
        assert pool.timeouts == 1 and pool.crashes == 1 and pool.restarts == 2
        assert [v.reward for v in pool.map(items[:1] * 3)] == [1.0] * 3  # replacements work


def test_a_worker_that_died_while_idle_is_replaced_before_its_next_item():
    with VerifierPool(COUNTDOWN, timeout_s=30) as pool:
        pool.workers[0][0].kill()
        pool.workers[0][0].join()
        assert pool.map([VerifyItem("<answer>93-(100-30)</answer>", EX)])[0].reward == 1.0


def test_real_verifier_processes_match_in_process_verification():
    with VerifierPool(COUNTDOWN, timeout_s=30) as pool:
        verdicts = pool.map([VerifyItem("<answer>93-(100-30)</answer>", EX), VerifyItem("no", EX)])
    assert [(v.reward, v.correct, v.well_formed) for v in verdicts] == [(1.0, True, True), (0.0, False, False)]
