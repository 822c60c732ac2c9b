"""RewardActor: verifies completions in worker processes, each item under a time limit.

A verification that overruns its limit scores 0 and is counted as a timeout; its process is
killed and replaced. One whose process dies scores 0 and is counted as a crash (a verifier bug,
not a slow input); its process is replaced too. Processes, not threads: no `signal.alarm`, and a runaway
verifier can always be stopped. Verification is idempotent, so the actor restarts and retries.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from multiprocessing.connection import wait
from typing import TYPE_CHECKING

import ray

from dllmrl_core.contract.verdict import Verdict, VerifyItem
from dllmrl_core.faults import fault_point
from dllmrl_core.verify.verifier import serve

if TYPE_CHECKING:  # verifier processes import this module: keep it free of torch
    from dllmrl_core.tasks import TaskConfig
    from services.settings import RewardConfig
    from services.telemetry import StatusLink


class TimedPool:
    """`processes` verifier processes for one task (each builds it from its config: a plug-in task
    is imported by name there); `map` keeps each busy with one item at a time."""

    def __init__(self, processes: int, task: TaskConfig, target=serve):
        self.args, self.target = (task,), target
        self.ctx = mp.get_context("spawn")
        self.workers = [self._spawn() for _ in range(processes)]
        self.timeouts = self.crashes = self.restarts = 0

    def _spawn(self):
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=self.target, args=(child, *self.args), daemon=True)
        proc.start()
        child.close()
        return proc, parent

    def _replace(self, i: int) -> None:
        proc, conn = self.workers[i]
        proc.kill()
        proc.join(timeout=5)
        conn.close()
        self.workers[i] = self._spawn()
        self.restarts += 1

    def _lost(self, i: int, verdict: Verdict) -> Verdict:
        """Count a lost item (a timeout or a crash), replace its process; returns its verdict."""
        self.timeouts += verdict.timed_out
        self.crashes += verdict.crashed
        self._replace(i)
        return verdict

    def map(self, items: list[VerifyItem], timeout_s: float) -> list[Verdict]:
        results: list[Verdict | None] = [None] * len(items)
        todo = list(range(len(items)))[::-1]
        busy: dict[int, tuple[int, float]] = {}  # worker -> (item, deadline)
        while todo or busy:
            for w in range(len(self.workers)):
                if w not in busy and todo:
                    item = todo.pop()
                    self.workers[w][1].send((item, items[item]))
                    busy[w] = (item, time.monotonic() + timeout_s)
            soonest = min(deadline for _, deadline in busy.values())
            ready = wait([self.workers[w][1] for w in busy], timeout=max(0.0, soonest - time.monotonic()))
            for w in list(busy):
                item, deadline = busy[w]
                conn = self.workers[w][1]
                if conn in ready:
                    try:
                        results[item] = conn.recv()[1]
                    except (EOFError, OSError):  # the process died on this item
                        results[item] = self._lost(w, Verdict(reward=0.0, crashed=True))
                    del busy[w]
                elif time.monotonic() >= deadline:
                    results[item] = self._lost(w, Verdict(reward=0.0, timed_out=True))
                    del busy[w]
        return results

    def close(self) -> None:
        for proc, conn in self.workers:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            proc.join(timeout=2)
            if proc.is_alive():
                proc.kill()


@ray.remote(max_restarts=-1, max_task_retries=-1)
class RewardActor:
    def __init__(self, task: TaskConfig, processes: int, timeout_s: float, status: StatusLink | None = None,
                 index: int = 0):
        from services.telemetry import Beacon  # here, not at the top: verifier processes need none of it

        self.pool = TimedPool(processes, task)
        self.timeout_s = timeout_s
        self.beacon = Beacon(status, "reward", index)

    def verify(self, items_ref: list, part: int, parts: int) -> list[Verdict]:
        """Verdicts for items[part::parts] of the list behind items_ref[0]."""
        with self.beacon.working("verify"):
            items = ray.get(items_ref[0])[part::parts]
            fault_point("reward.verify")
            return self.pool.map(items, self.timeout_s)


def start_reward_actors(settings: RewardConfig, task: TaskConfig, name: str = "", status: StatusLink | None = None
                        ) -> list:
    """settings.num_actors reward actors for `task` (its reward set and evaluation protocol),
    reporting to `status`; named `<name>reward-<i>` when `name` is given."""
    return [RewardActor.options(name=f"{name}reward-{i}" if name else None, num_cpus=settings.num_cpus_per_actor,
                                resources=settings.resources)
            .remote(task, settings.processes_per_actor, settings.timeout_s, status, i)
            for i in range(settings.num_actors)]


def verify_items(actors: list, items_ref) -> list:
    """Fan one list of items out over the actors; returns refs whose results `gather` interleaves."""
    return [a.verify.remote([items_ref], k, len(actors)) for k, a in enumerate(actors)]


def gather(parts: list[list[Verdict]]) -> list[Verdict]:
    """Undo the items[k::K] split."""
    out: list[Verdict] = [None] * sum(len(p) for p in parts)  # type: ignore[list-item]
    for k, part in enumerate(parts):
        out[k::len(parts)] = part
    return out
