"""What the Controller and every worker actor tell the status server, and how rates are measured.

    Beat        a worker's state: alive (it arrived), busy and with what, jobs done, busy seconds
    Beacon      held by each actor: sends a Beat every status.heartbeat_s seconds from a daemon
                thread, and at once when a job starts or ends (`with beacon.working("generate"): ...`)
    Progress    the Controller's report: state, step, the batch in progress, rates, totals, resume
    CurvePoint  one point of the training-reward or held-out-accuracy curve
    Throughput  steps and completions per second over the last N batches of training time

Messages go fire-and-forget to the StatusActor (`services/status.py`), which stamps each with its
own arrival time: a worker counts as alive while its beats keep arriving. Each Beat carries the
whole state of its sender, numbered, so a late or lost message never leaves a wrong flag behind.
This module stays free of torch: the reward actors import it.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["controller", "rollout", "reward", "learner"]
State = Literal["starting", "evaluating", "training", "recovering", "finishing", "finished", "failed"]


class Beat(BaseModel):
    """One worker's whole state. `incarnation` is new each time the actor (re)starts; `seq` orders
    the beats of one incarnation."""

    role: Role
    index: int
    incarnation: str
    seq: int
    busy: bool = False
    doing: str = ""
    jobs: int = 0
    busy_s: float = 0.0


@dataclass(frozen=True)
class StatusLink:
    """What an actor needs to report: the StatusActor's handle and the heartbeat interval."""

    actor: object
    heartbeat_s: float


class Beacon:
    """A worker's side of the status: heartbeats, and the busy flag around each job. With no link
    (status disabled) it only runs the job."""

    def __init__(self, link: StatusLink | None, role: Role, index: int):
        self.link, self.role, self.index = link, role, index
        self.incarnation, self.seq = uuid.uuid4().hex, itertools.count()
        self.doing, self.jobs, self.busy_s = "", 0, 0.0
        self.lock = threading.Lock()
        if link is not None:
            self.send()
            threading.Thread(target=self._beat, daemon=True, name=f"beacon-{role}-{index}").start()

    def send(self) -> None:
        if self.link is None:
            return
        with self.lock:  # the heartbeat thread and the job's thread: numbered in the order sent
            beat = Beat(role=self.role, index=self.index, incarnation=self.incarnation, seq=next(self.seq),
                        busy=bool(self.doing), doing=self.doing, jobs=self.jobs, busy_s=self.busy_s)
            self.link.actor.beat.remote(beat)

    def _beat(self) -> None:
        while True:
            time.sleep(self.link.heartbeat_s)
            try:
                self.send()
            except Exception:  # noqa: BLE001 - the status actor is gone (shutdown): stop beating
                return

    @contextmanager
    def working(self, doing: str) -> Iterator[None]:
        """Busy with `doing` for the length of the block, reported when it starts and when it ends."""
        self.doing, start = doing, time.monotonic()
        self.send()
        try:
            yield
        finally:
            self.doing, self.jobs = "", self.jobs + 1
            self.busy_s += time.monotonic() - start
            self.send()


class Totals(BaseModel):
    """Counters since the run started (Prometheus counters `dllmrl_<name>_total`)."""

    learner_restarts: int = Field(0, description="learner group restarts from the last checkpoint")
    chunks_regenerated: int = Field(0, description="rollout chunks lost with their worker and generated again")
    reward_timeouts: int = Field(0, description="training verifications that ran past verify.timeout_s")
    reward_crashes: int = Field(0, description="training verifications whose verifier process died")
    completions: int = Field(0, description="training completions generated and verified (branches included)")


class Progress(BaseModel):
    """The Controller's report. Rates are over the last status.rate_window batches of training
    (set-up and evaluation excluded); None until a batch has finished."""

    model_config = ConfigDict(ser_json_inf_nan="null")

    state: State = Field("starting", description="what the Controller is doing")
    roster: dict[str, int] = Field(default_factory=dict, description="worker actors the run has, per role")
    step: int = Field(0, description="optimizer steps done")
    total_steps: int = Field(0, description="train.steps")
    batch: int | None = Field(None, description="the batch being trained")
    chunks_done: int = Field(0, description="chunks of that batch generated so far")
    chunks_total: int = Field(0, description="chunks of that batch")
    weight_version: int = Field(0, description="the newest published weight version")
    queue_depth: int = Field(0, description="batches admitted and not yet trained")
    staleness: float | None = Field(None, description="optimizer steps between the weights that generated the "
                                                      "last batch and those it trained")
    steps_per_s: float | None = Field(None, description="optimizer steps per second of training")
    completions_per_s: float | None = Field(None, description="completions generated per second of training")
    reward_mean: float | None = Field(None, description="mean reward of the last trained batch")
    eval_accuracy: float | None = Field(None, description="held-out accuracy of the last evaluation (percent)")
    resumed_from: str | None = Field(None, description="the checkpoint this run resumed from")
    resumed_step: int | None = Field(None, description="the step it resumed at")
    last_failure: str = Field("", description="the last learner failure")
    totals: Totals = Totals()


class CurvePoint(BaseModel):
    """One point of a curve the status page draws."""

    series: Literal["reward", "accuracy"]
    step: int
    value: float


class Throughput:
    """Steps and completions per second over the last `window` batches, counting only the time
    spent training them (the Controller records each batch; evaluation and set-up are never in it)."""

    def __init__(self, window: int):
        self.batches: deque[tuple[float, int, int]] = deque(maxlen=window)

    def record(self, seconds: float, steps: int, completions: int) -> None:
        self.batches.append((seconds, steps, completions))

    def rates(self) -> tuple[float | None, float | None]:
        """(steps per second, completions per second), or (None, None) before the first batch."""
        seconds = sum(b[0] for b in self.batches)
        if not self.batches or seconds <= 0:
            return None, None
        return sum(b[1] for b in self.batches) / seconds, sum(b[2] for b in self.batches) / seconds
