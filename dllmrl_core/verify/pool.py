"""VerifierPool: completions verified in worker processes, each item under a hard wall-clock limit.

Every verification path goes through it: the single-process loop and its evaluation, `dllmrl
score`, and each Ray reward actor. A verification that overruns its limit scores 0 and is counted
as a timeout; its process is killed and replaced. One whose process dies scores 0 and is counted as
a crash (a verifier bug, not a slow input); its process is replaced too. Processes, not threads: no
`signal.alarm` (Math-Verify's own timeouts use it and fail off the main thread), and a runaway
verifier (sympy building a huge number) can always be stopped.

The processes live as long as the pool, one item at a time each, so the common case costs a pipe
round trip per item, not a process start. They are forked from a forkserver that has already
imported the tasks and warmed Math-Verify (`warm.py`), so a replacement after a timeout starts in
milliseconds, ready, and the parent's threads (torch, Ray) are never forked. Where the platform has
no forkserver they are spawned (each then imports the tasks itself).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from multiprocessing.connection import wait

from typing import TYPE_CHECKING

from dllmrl_core.contract.verdict import Verdict, VerifyItem
from dllmrl_core.verify.verifier import serve

if TYPE_CHECKING:
    from dllmrl_core.tasks import TaskConfig

# "__main__": a main module run from a file (a console script, Ray's worker) is imported once by the
# forkserver, not again by each verifier process; one run with -m is imported again by each (keep
# such entry modules light: dllmrl_core/loop.py, dllmrl_core/cli.py).
PRELOAD = ["__main__", "dllmrl_core.verify.verifier", "dllmrl_core.tasks", "dllmrl_core.verify.warm"]
STARTUP_S = 300.0  # a process must be ready within this (not counted against any item's limit)


READY = "ready"


def _ready_then(conn, target, *args) -> None:
    """A verifier process: say it is ready (imports done), then run the verifier loop."""
    conn.send(READY)
    target(conn, *args)


def _context():
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


class VerifierPool:
    """`processes` verifier processes for one task; `map` keeps each busy with one item at a time.

    task: the task's config (each process builds the task from it, by name: a plug-in task is imported
    there), its reward set (the training reward) and evaluation protocol (of an item that names none,
    `VerifyItem.protocol`); timeout_s: the limit per item. `target` replaces the verifier loop (tests)."""

    def __init__(self, task: TaskConfig, timeout_s: float, processes: int = 1, target=serve):
        if timeout_s <= 0 or processes < 1:
            raise ValueError(f"VerifierPool: need timeout_s > 0 and processes >= 1, got {timeout_s}, {processes}")
        self.args, self.target, self.timeout_s = (task,), target, timeout_s
        self.ctx = _context()
        self.workers = [self._spawn() for _ in range(processes)]
        self.timeouts = self.crashes = self.restarts = 0

    def _spawn(self):
        """A started verifier process that has said it is ready: an item's time limit starts when it is
        sent, so it never pays for a process start (the main module's re-import included)."""
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_ready_then, args=(child, self.target, *self.args), daemon=True)
        proc.start()
        child.close()
        if not (wait([parent, proc.sentinel], timeout=STARTUP_S) and parent.poll() and parent.recv() == READY):
            proc.kill()
            raise RuntimeError(f"a verifier process for {self.args[0].name} did not start within {STARTUP_S:g} s")
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

    def _send(self, w: int, job: tuple[int, VerifyItem]) -> None:
        """Hand a job to worker w, replacing the worker first if it died while idle."""
        try:
            self.workers[w][1].send(job)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            self._replace(w)
            self.workers[w][1].send(job)

    def map(self, items: list[VerifyItem]) -> list[Verdict]:
        """A verdict per item, in order; none waits on the verifier longer than timeout_s."""
        results: list[Verdict | None] = [None] * len(items)
        todo = list(range(len(items)))[::-1]
        busy: dict[int, tuple[int, float]] = {}  # worker -> (item, deadline)
        while todo or busy:
            for w in range(len(self.workers)):
                if w not in busy and todo:
                    item = todo.pop()
                    self._send(w, (item, items[item]))
                    busy[w] = (item, time.monotonic() + self.timeout_s)
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
        return results  # type: ignore[return-value]

    def close(self) -> None:
        for proc, conn in self.workers:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            proc.join(timeout=2)
            if proc.is_alive():
                proc.kill()
            conn.close()

    def __enter__(self) -> VerifierPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
