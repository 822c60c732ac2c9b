"""Issue 16.3: `\\boxed{(((99^{99})^{99})^{99})^{99}}` hung Math-Verify on every in-process path. Every
path now verifies in a VerifierPool under verify.timeout_s; these tests drive the real verifier with the
guard switched off, so only the time limit can stop it."""

import json
import threading
import time

from dllmrl_core.cli import main
from dllmrl_core.contract.verdict import TRAINING_PROTOCOL, VerifyItem
from dllmrl_core.drive.config import RunConfig
from dllmrl_core.drive.loop import verifier_pool
from dllmrl_core.tasks import GSM8KExample, MathExample, TaskConfig
from dllmrl_core.verify.pool import VerifierPool
from tests.core.verify.targets import unguarded_serve

TOWER = "(((99^{99})^{99})^{99})^{99}"
MATH = MathExample("p", "\\boxed{3}", "3")


def test_an_unguarded_math_verify_hang_is_cut_at_the_time_limit_and_counted():
    items = [VerifyItem(f"<answer>\\boxed{{{TOWER}}}</answer>", MATH, "fixed"),
             VerifyItem("<answer>\\boxed{3}</answer>", MATH, "fixed")]
    math500 = TaskConfig.parse({"name": "math500", "reward_set": "fixed", "eval_protocol": "fixed"})
    with VerifierPool(math500, timeout_s=3.0, target=unguarded_serve) as pool:
        start = time.monotonic()
        hung, fine = pool.map(items)
        assert time.monotonic() - start < 20
    assert hung.timed_out and hung.reward == 0 and not hung.correct and pool.timeouts == 1
    assert fine.correct and fine.reward > 2


def test_the_loop_verifies_under_its_configured_limit():
    cfg = RunConfig.parse({"task": {"name": "gsm8k", "reward_set": "fixed"}, "verify": {"timeout_s": 0.5,
                                                                                       "processes": 2}})
    with verifier_pool(cfg) as pool:
        assert (pool.timeout_s, len(pool.workers), pool.args) == (0.5, 2, (cfg.task,))
        assert (cfg.task.name, cfg.task.reward_set, cfg.task.eval_protocol) == ("gsm8k", "fixed", "d1")
        verdict, = pool.map([VerifyItem(f"<answer>\\boxed{{{TOWER}}}</answer>", GSM8KExample("q", "3"),
                                        TRAINING_PROTOCOL)])
    assert verdict.reward < 2 and not verdict.correct


def returns_within(seconds: float, fn, *args):
    """fn(*args) run in a daemon thread: its result, or a test failure if it has not returned in time
    (before the fix it never returned)."""
    out = []
    thread = threading.Thread(target=lambda: out.append(fn(*args)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert out, f"did not return within {seconds} s"
    return out[0]


def test_dllmrl_score_returns_on_the_hanging_answer(tmp_path, capsys):
    """The reporter's command: math500 and gsm8k files under --protocol fixed; it used to never return."""
    for task, truth in (("math500", "3"), ("gsm8k", 3.0)):
        path = tmp_path / f"{task}.json"
        path.write_text(json.dumps({"generations": [
            {"question": "q", "generations": f"\\boxed{{{TOWER}}}", "ground_truth": truth},
            {"question": "q", "generations": "\\boxed{3}", "ground_truth": truth}]}))
        args = ["score", "--task", task, "--protocol", "fixed", "--timeout-s", "3", str(path)]
        assert returns_within(60, main, args) == 0
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["accuracy"] == 50.0
