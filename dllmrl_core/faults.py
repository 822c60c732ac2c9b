"""Fault injection for the fault-tolerance tests (tests/faults/): a process ends itself with
`os._exit` at a named point of a step, as `kill -9` would end it there.

The code marks each point once with `fault_point(site)`. Nothing happens unless the environment
variable DLLMRL_TEST_FAULTS names a plan directory (the tests set it before Ray starts, so every
actor inherits it) holding `plan.json`, a list of rules:

    [{"site": "learner.learn", "hit": 2}, ...]

A rule ends the process the `hit`-th time any process of the run reaches `site` (hits are
counted in `<site>.hits` in the plan directory, across processes and restarts), once: it leaves
`fired-<i>` behind, which also tells the test that it fired. Sites:

    rollout.generate   a rollout worker, after loading the job's weights, before sampling
    reward.verify      a reward actor, before verifying its share of a chunk
    learner.learn      a learner rank, before an optimizer step
    learner.publish    learner rank 0, after the WeightStore took the new version, before replying
    checkpoint.write   learner rank 0, after the adapter is written and before the optimizer state
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ENV = "DLLMRL_TEST_FAULTS"
EXIT_CODE = 137  # what a shell reports for a process killed by SIGKILL


def fault_point(site: str) -> None:
    """End this process here if the test's fault plan says so (a no-op without DLLMRL_TEST_FAULTS)."""
    directory = os.environ.get(ENV)
    if not directory:
        return
    plan = Path(directory) / "plan.json"
    if not plan.is_file():
        return
    rules = [(i, r) for i, r in enumerate(json.loads(plan.read_text())) if r["site"] == site]
    if not rules:
        return
    with open(Path(directory) / f"{site}.hits", "ab") as f:  # one byte per hit; O_APPEND writes do not interleave
        f.write(b".")
        f.flush()
        hits = f.tell()
    for i, rule in rules:
        if rule.get("hit", 1) == hits:
            try:
                os.close(os.open(Path(directory) / f"fired-{i}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                continue
            os._exit(EXIT_CODE)
