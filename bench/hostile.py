"""Hostile completions through every verification path: p50/p99 seconds per item, per task.

    python -m bench.hostile [--n 10000] [--seed 0] [--timeout-s 5] [--tasks gsm8k,math500,...]

For each task, `n` completions from the seeded generator (`bench/hostile_corpus.py`) go through a
`VerifierPool` (the path of the single-process loop, its evaluation, `dllmrl score` and each Ray
reward actor) once per training reward set (d1, fixed, agrpo), each item scored under one of the
evaluation protocols in turn (d1, fixed, agrpo). Each item is sent alone and timed from send to
verdict (the pipe round trip included). Injection strings name a canary file; it must not exist
afterwards. Prints one line per task, then a JSON object: per task the items, p50/p99/max seconds,
timeouts, crashes, and whether the canary exists.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.hostile_corpus import corpus
from dllmrl_core.contract.verdict import VerifyItem
from dllmrl_core.tasks import CountdownExample, GSM8KExample, MathExample, SudokuExample, TaskConfig
from dllmrl_core.verify.pool import VerifierPool

TASKS = ("gsm8k", "math500", "countdown", "sudoku")
REWARD_SETS = ("d1", "fixed", "agrpo")
PROTOCOLS = ("d1", "fixed", "agrpo")
EXAMPLES = {"gsm8k": GSM8KExample("q", "18"), "math500": MathExample("p", "\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
            "countdown": CountdownExample((30, 100, 93), 23),
            "sudoku": SudokuExample("3102200002100320", "3142243142131324")}


@dataclass
class Report:
    """What one task's corpus did: verdicts, lost items, and the time per item when timed."""

    items: int = 0
    timeouts: int = 0
    crashes: int = 0
    seconds: list[float] | None = None

    def summary(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "seconds"}
        if self.seconds:
            q = statistics.quantiles(self.seconds, n=100)
            out.update(p50_s=round(q[49], 6), p99_s=round(q[98], 6), max_s=round(max(self.seconds), 6))
        return out


def run_task(task: str, texts: list[str], timeout_s: float, processes: int = 1, timed: bool = False) -> Report:
    """Every text under every reward set, each under one protocol in turn; lost items counted."""
    report = Report(seconds=[] if timed else None)
    items = [VerifyItem(t, EXAMPLES[task], PROTOCOLS[i % len(PROTOCOLS)]) for i, t in enumerate(texts)]
    for reward_set in REWARD_SETS:
        config = TaskConfig.parse({"name": task, "reward_set": reward_set, "eval_protocol": "d1"})
        with VerifierPool(config, timeout_s, processes) as pool:
            if timed:
                verdicts = []
                for item in items:
                    start = time.perf_counter()
                    verdicts += pool.map([item])
                    report.seconds.append(time.perf_counter() - start)
            else:
                verdicts = pool.map(items)
        report.items += len(verdicts)
        report.timeouts += sum(v.timed_out for v in verdicts)
        report.crashes += sum(v.crashed for v in verdicts)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="completions per task (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout-s", type=float, default=5.0, help="per-item time limit (verify.timeout_s)")
    parser.add_argument("--tasks", default=",".join(TASKS))
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        canary = Path(tmp) / "canary"
        for task in args.tasks.split(","):
            report = run_task(task, corpus(task, args.n, args.seed, str(canary)), args.timeout_s, timed=True)
            results[task] = {**report.summary(), "canary_exists": canary.exists()}
            r = results[task]
            print(f"{task:9s} items {r['items']:6d}  p50 {1e3 * r['p50_s']:8.3f} ms  p99 {1e3 * r['p99_s']:8.3f} ms  "
                  f"max {r['max_s']:7.3f} s  timeouts {r['timeouts']}  crashes {r['crashes']}  "
                  f"canary {r['canary_exists']}", flush=True)
    print(json.dumps({"n": args.n, "seed": args.seed, "timeout_s": args.timeout_s, "tasks": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
