"""The status server's state: the Controller's last report, every worker's last beat, the curves,
and what they add up to (`/status`, `/health`, `/metrics`, `/curves`). Plain Python, no Ray or
FastAPI: the StatusActor (`services/status.py`) feeds it and serves it.

Health is a verdict, not a constant: 503 while the Controller has not reported, has failed or has
stopped beating, or while a role the run has (the roster in its report) has no live worker. A
worker is alive while its beats keep arriving: it missed fewer than `DEAD_AFTER_BEATS` of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from typing import get_args

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, StateSetMetricFamily
from pydantic import BaseModel, ConfigDict

from services.telemetry import Beat, CurvePoint, Progress, State, Totals

DEAD_AFTER_BEATS = 5  # heartbeats missed in a row before a worker counts as dead


class WorkerView(BaseModel):
    role: str
    index: int
    alive: bool
    busy: bool
    doing: str
    jobs: int
    busy_s: float
    restarts: int
    last_seen_s: float  # seconds since its last beat


class Health(BaseModel):
    ok: bool
    reasons: list[str]


class StatusView(Progress):
    """`/status`: the Controller's report, every worker and the health verdict (NaN and inf as null)."""

    model_config = ConfigDict(ser_json_inf_nan="null")

    workers: list[WorkerView]
    health: Health


class Curves(BaseModel):
    """`/curves`: [step, value] pairs of the training reward and the held-out accuracy."""

    model_config = ConfigDict(ser_json_inf_nan="null")

    reward: list[tuple[int, float]]
    accuracy: list[tuple[int, float]]


class _Worker:
    def __init__(self, beat: Beat, seen: float):
        self.beat, self.seen, self.incarnations = beat, seen, {beat.incarnation}


class Board:
    """Thread-safe: the actor's methods write, the server's thread reads. `clock` is monotonic
    seconds of this process (arrival times, so senders' clocks never matter)."""

    def __init__(self, heartbeat_s: float, clock=time.monotonic):
        self.heartbeat_s, self.clock = heartbeat_s, clock
        self.lock = threading.Lock()
        self.progress: Progress | None = None
        self.progress_seen = 0.0
        self.controller_seen: float | None = None
        self.workers: dict[tuple[str, int], _Worker] = {}
        self.curves: dict[str, list[tuple[int, float]]] = {"reward": [], "accuracy": []}

    # --- writes -----------------------------------------------------------------------------------
    def report(self, progress: Progress) -> None:
        with self.lock:
            self.progress, self.progress_seen = progress, self.clock()

    def beat(self, beat: Beat) -> None:
        now = self.clock()
        with self.lock:
            if beat.role == "controller":
                self.controller_seen = now
                return
            known = self.workers.get((beat.role, beat.index))
            if known is None:
                self.workers[(beat.role, beat.index)] = _Worker(beat, now)
            elif beat.incarnation != known.beat.incarnation and beat.incarnation not in known.incarnations:
                known.incarnations.add(beat.incarnation)  # the actor restarted
                known.beat, known.seen = beat, now
            elif beat.incarnation == known.beat.incarnation and beat.seq > known.beat.seq:
                known.beat, known.seen = beat, now

    def point(self, point: CurvePoint) -> None:
        with self.lock:
            self.curves[point.series].append((point.step, point.value))

    # --- reads ------------------------------------------------------------------------------------
    def _alive(self, seen: float | None, now: float) -> bool:
        return seen is not None and now - seen < DEAD_AFTER_BEATS * self.heartbeat_s

    def _workers(self, now: float) -> list[WorkerView]:
        return [WorkerView(role=role, index=index, alive=self._alive(w.seen, now), busy=w.beat.busy,
                           doing=w.beat.doing, jobs=w.beat.jobs, busy_s=w.beat.busy_s,
                           restarts=len(w.incarnations) - 1, last_seen_s=now - w.seen)
                for (role, index), w in sorted(self.workers.items())]

    def _health(self, progress: Progress | None, workers: list[WorkerView], now: float) -> Health:
        if progress is None:
            return Health(ok=False, reasons=["the controller has not reported yet"])
        reasons = []
        if progress.state == "failed":
            reasons.append(f"the controller failed: {progress.last_failure or 'see the job log'}")
        elif progress.state != "finished" and not self._alive(self.controller_seen, now):
            reasons.append("the controller sends no heartbeat")
        if progress.state != "finished":
            for role, count in progress.roster.items():
                alive = sum(w.alive for w in workers if w.role == role)
                if not alive:
                    reasons.append(f"no {role} worker alive (of {count})")
        return Health(ok=not reasons, reasons=reasons)

    def view(self) -> StatusView:
        now = self.clock()
        with self.lock:
            progress, workers = self.progress, self._workers(now)
        health = self._health(progress, workers, now)
        return StatusView(**(progress or Progress()).model_dump(), workers=workers, health=health)

    def curve_data(self) -> Curves:
        with self.lock:
            return Curves(reward=list(self.curves["reward"]), accuracy=list(self.curves["accuracy"]))


def metric_families(view: StatusView) -> Iterator[Metric]:
    """The view as Prometheus metrics: the report's numbers as gauges (HELP = the field's
    description), its totals and each worker's jobs and restarts as counters."""
    for name, field in Progress.model_fields.items():
        value = getattr(view, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            yield GaugeMetricFamily(f"dllmrl_{name}", field.description or name, value=value)
    for name, field in Totals.model_fields.items():
        yield CounterMetricFamily(f"dllmrl_{name}", field.description or name, value=getattr(view.totals, name))
    yield GaugeMetricFamily("dllmrl_up", "1 when /health answers 200", value=float(view.health.ok))
    yield StateSetMetricFamily("dllmrl_state", "what the Controller is doing",
                               value={state: state == view.state for state in get_args(State)})
    busy = GaugeMetricFamily("dllmrl_worker_busy", "1 while the worker runs a job", labels=["role", "index"])
    alive = GaugeMetricFamily("dllmrl_worker_alive", "1 while the worker's heartbeats arrive", labels=["role", "index"])
    jobs = CounterMetricFamily("dllmrl_worker_jobs", "jobs the worker finished", labels=["role", "index"])
    busy_s = CounterMetricFamily("dllmrl_worker_busy_seconds", "seconds the worker spent on jobs",
                                 labels=["role", "index"])
    restarts = CounterMetricFamily("dllmrl_worker_restarts", "times the worker's actor was restarted",
                                   labels=["role", "index"])
    for w in view.workers:
        labels = [w.role, str(w.index)]
        busy.add_metric(labels, float(w.busy))
        alive.add_metric(labels, float(w.alive))
        jobs.add_metric(labels, w.jobs)
        busy_s.add_metric(labels, w.busy_s)
        restarts.add_metric(labels, w.restarts)
    yield from (busy, alive, jobs, busy_s, restarts)
