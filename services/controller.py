"""Controller actor: the training loop of the distributed system.

    setup():  StatusActor, RewardActor × K, LearnerGroup (N ranks), and for placement disaggregated
              WeightStore and RolloutWorker × R
    run():    for each batch b:
                admit b (and b+1 when max_staleness = 1)   rollout chunks → object store
                verify b's completions on the reward actors verdicts
                μ optimizer steps on the learner group       version += μ, published
                metrics, checkpoint, evaluation, status

What a run records (config, metrics and step lines, checkpoints, evaluations, the final adapter
and the summary) goes through `DriverCore` (dllmrl_core/drive/driver.py), as in the
single-process loop: the two drivers differ only in where rollout, reward and learning run.

Placement disaggregated: rollout workers sample with adapters the learners publish through the
WeightStore. Placement colocated: the learner ranks sample their chunks themselves and nothing is
published (the model that learns is the model that samples).

Staleness is bounded by admission, never by dropping finished work: batch b is generated with
weight version (b − max_staleness)·μ, so 0 is exact on-policy and 1 overlaps the rollout of b+1
with learning on b. A chunk lost with its rollout worker is generated again on another worker;
reward actors restart and rerun a lost job; a learner failure (colocated: any worker's) restarts
the whole group from the last checkpoint, after a backoff, at most learner.max_restarts times.
Under max_staleness 1 a checkpoint also keeps the older version the next batch samples with, and a
resume or restart publishes it again (`_save`, `_restore`; docs/reliability.md).

The controller (the run's state), the WeightStore (the adapter versions a rollout may still ask
for) and the status actor are pinned to the head node (`ON_HEAD`), which lives as long as the
cluster.

Status: the Controller reports (`Progress`) whenever something changes (a chunk generated, an
optimizer step, an evaluation, a failure), and every actor it starts beats and flags its own jobs
(services/telemetry.py), so /status moves during a batch, not only between batches.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import ray
import torch

from dllmrl_core.drive.driver import DriverCore
from dllmrl_core.drive.heldout import Generate, ItemScore
from dllmrl_core.drive.metrics import PhaseTimes, RewardStats, StepRecord
from dllmrl_core.models import load_tokenizer
from dllmrl_core.rollout.prompts import group_prompts
from dllmrl_core.training import checkpoint
from services.jobs import Chunk, RolloutPool, remote_generate, verify_chunks
from services.learner_group import LearnerFailure, LearnerGroup
from services.reward_actors import start_reward_actors
from services.rollout_worker import RolloutJob
from services.settings import SystemConfig
from services.status import StatusActor
from services.telemetry import Beacon, CurvePoint, Progress, State, StatusLink, Throughput, Totals
from services.weight_store import WeightStore, fetch, publish

ON_HEAD = {"resources": {"node:__internal_head__": 0.001}}  # Ray's resource of the head node
MAX_BACKOFF_S = 60.0  # before restarting a failed learner group: learner.restart_backoff_s, doubled, at most this


@dataclass
class InFlight:
    """A batch whose chunks are being generated."""

    chunks: list[Chunk]
    stream_after: dict  # data position right after this batch's examples were drawn
    started: float = field(default_factory=time.perf_counter)


def split_groups(group_ids: torch.Tensor, parts: int) -> list[torch.Tensor]:
    """Row indices of `parts` chunks made of whole groups (a group never spans two workers)."""
    groups = group_ids.unique()
    return [torch.nonzero(torch.isin(group_ids, g)).flatten() for g in groups.tensor_split(parts) if len(g)]


@ray.remote(num_cpus=0)
class Controller:
    def __init__(self, cfg: SystemConfig, name: str):
        self.cfg, self.name = cfg, name
        self.mu = cfg.iterations
        self.inflight: dict[int, InFlight] = {}
        self.step = self.published = self.restarts = 0
        self.last_failure = ""
        self.state: State = "starting"
        self.batch: int | None = None
        self.chunks_done = 0
        self.totals = Totals()  # reward timeouts, crashes and completions (restarts are counted where they happen)
        self.throughput = Throughput(cfg.status.rate_window)
        self.sent_accuracy: tuple[int, float] | None = None
        self.roster = {"reward": cfg.reward.num_actors, "learner": cfg.learner.num_workers,
                       **({} if cfg.colocated else {"rollout": cfg.rollout.num_workers})}
        self.colocated = cfg.colocated
        self.parts = cfg.learner.num_workers if self.colocated else cfg.rollout.num_workers  # chunks per batch
        self.learners: LearnerGroup | None = None
        self.core: DriverCore | None = None
        self.status = self.link = self.store = self.rollout = None
        self.rewards: list = []

    # --- wiring ---------------------------------------------------------------------------------
    def setup(self) -> str:
        """Start every actor; returns the status URL ('' when disabled)."""
        cfg, n = self.cfg, self.name
        if cfg.status.enabled:
            s = cfg.status
            self.status = StatusActor.options(name=f"{n}status", **ON_HEAD).remote(s.host, s.port, s.token,
                                                                                   s.heartbeat_s)
            self.link = StatusLink(self.status, s.heartbeat_s)
        self.beacon = Beacon(self.link, "controller", 0)
        self._report("starting")
        with self._failing():
            self._setup()
        return ray.get(self.status.url.remote()) if self.status else ""

    def _setup(self) -> None:
        cfg, n = self.cfg, self.name
        self.tokenizer = load_tokenizer(cfg.model.path, trust_remote_code=cfg.model.trust_remote_code)
        self.core = DriverCore(cfg)
        self.task = self.core.task
        if not self.colocated:
            # a rollout can still ask for the version of each in-flight batch, and the newest: with
            # max_staleness s those are the newest s + 1 (a version is published every μ steps)
            self.store = WeightStore.options(name=f"{n}weights", **ON_HEAD).remote(keep=cfg.train.max_staleness + 1)
            self.rollout = RolloutPool.start(cfg.rollout, cfg.model, cfg.algorithm, cfg.train.seed, self.store, name=n,
                                             status=self.link)
        self.rewards = start_reward_actors(cfg.reward, cfg.task, cfg.verify, name=n, status=self.link)
        self._start_learners(cfg.checkpoint.resume)

    @property
    def samplers(self):
        """Who generates the chunks: the rollout pool, or under placement colocated the learner ranks."""
        return self.learners if self.colocated else self.rollout

    def _restore(self, resume: str | None) -> None:
        """Continue from a checkpoint (or start fresh) and push its weights before any generation,
        with the older versions the checkpoint kept for the batches admitted ahead (max_staleness 1)."""
        found: list[Path] = []

        def load(path: Path) -> None:
            self.learners.load(str(path))
            found.append(path)

        self.step, self.stream = self.core.resume(resume, load)
        if self.store is not None:
            ray.get(self.store.clear.remote())
            for version, state in (checkpoint.read_published(found[0]) if found else {}).items():
                publish(self.store, version, state)
        self.inflight.clear()
        self._publish()

    def _stale_versions(self) -> list[int]:
        """Versions other than `step` that the batches admitted next sample with: under
        max_staleness 1, batch b = step / μ needs version step − μ."""
        b, stale = self.step // self.mu, self.cfg.train.max_staleness
        return sorted({max(0, (a - stale) * self.mu) for a in range(b, b + stale + 1)} - {self.step})

    def _save(self, tmp: Path) -> None:
        """The learner ranks' part of a checkpoint, and the stale versions a resume must publish again."""
        self.learners.save(str(tmp))
        for version in self._stale_versions() if self.store is not None else []:
            checkpoint.save_published(tmp, version, fetch(self.store, version))

    def _publish(self) -> None:
        """Make the current weights version `step` (colocated: they are already where they sample)."""
        if self.store is not None:
            self.learners.publish(self.store, self.step)
        self.published = self.step

    # --- one batch --------------------------------------------------------------------------------
    def _admit(self, b: int) -> None:
        """Start generating batch b if its weight version is available (the staleness bound)."""
        cfg = self.cfg
        version = max(0, (b - cfg.train.max_staleness) * self.mu)
        if b in self.inflight or b * self.mu >= cfg.train.steps or version > self.published:
            return
        examples = self.stream.next(cfg.train.prompts_per_step)
        ids, mask, groups, rows = group_prompts(self.tokenizer, self.task, examples, cfg.train.group_size,
                                                cfg.task.prompt_style, torch.device("cpu"))
        jobs = [RolloutJob(b, c, version, ids[r], mask[r], groups[r], [rows[i] for i in r.tolist()], cfg.sampler)
                for c, r in enumerate(split_groups(groups, self.parts))]
        self.inflight[b] = InFlight(self.samplers.submit(jobs), self.stream.state())

    def _train_batch(self, b: int, started: float) -> None:
        """Verify and learn batch b; `started` is when this iteration of the loop began."""
        flight, first = self.inflight[b], self.step
        self.batch, self.chunks_done = b, 0
        self._report("training")
        flight.chunks, main, branch, generated = verify_chunks(self.samplers, self.rewards, flight.chunks,
                                                               self._chunk_done)
        sampled = PhaseTimes(rollout=generated - flight.started, reward=time.perf_counter() - generated)
        self._count(main + branch)
        refs = [chunk.batch for chunk in flight.chunks]
        version, rewards = flight.chunks[0].job.version, RewardStats.of(main, branch)
        for k in range(self.mu):
            if self.step >= self.cfg.train.steps:
                break
            t0 = time.perf_counter()
            metrics = self.learners.learn(refs, main + branch if k == 0 else [], k)
            learned = time.perf_counter()
            self.step += 1
            if self.step % self.mu == 0 or self.step >= self.cfg.train.steps:
                self._publish()
            times = replace(sampled if k == 0 else PhaseTimes(), learn=learned - t0, sync=time.perf_counter() - learned)
            values = self.core.record_step(self.step, StepRecord(rewards, metrics, times, version,
                                                                 self.step - 1 - version))
            self._point("reward", values["reward/mean"])
            self._report()
        del self.inflight[b]
        self.throughput.record(time.perf_counter() - started, self.step - first, len(main) + len(branch))
        self._after_batch(flight)

    def _chunk_done(self, chunk: Chunk) -> None:
        self.chunks_done += 1
        self._report()

    def _count(self, verdicts: list) -> None:
        t = self.totals
        t.completions += len(verdicts)
        t.reward_timeouts += sum(v.timed_out for v in verdicts)
        t.reward_crashes += sum(v.crashed for v in verdicts)

    def _after_batch(self, flight: InFlight) -> None:
        self.core.checkpoint(self.step, flight.stream_after, self._save)
        if self.core.eval_due(self.step):
            self.evaluate()

    # --- the loop -----------------------------------------------------------------------------
    def run(self) -> dict:
        with self._failing():
            return self._run()

    def _run(self) -> dict:
        from ray.experimental.tqdm_ray import tqdm

        start, bar = time.perf_counter(), tqdm(total=self.cfg.train.steps, desc="train")
        bar.update(self.step)
        before = self.evaluate() if self.cfg.eval.before else []
        while self.step < self.cfg.train.steps:
            b, done, started = self.step // self.mu, self.step, time.perf_counter()
            try:
                for ahead in range(self.cfg.train.max_staleness + 1):
                    self._admit(b + ahead)
                self._train_batch(b, started)
            except LearnerFailure as err:
                self._recover(err)
            bar.update(max(0, self.step - done))
        bar.close()
        self.batch = None
        self._report("finishing")
        summary = self.core.finish(self.step, self.learners, self._generate(), before, start,
                                   learner_restarts=self.restarts, chunks_regenerated=self.regenerated)
        self._accuracy_point()
        self._report("finished")
        return {**summary, "placement": self.placement()}

    @contextmanager
    def _failing(self) -> Iterator[None]:
        """Report state `failed` (with the error) before any error leaves the Controller."""
        try:
            yield
        except BaseException as err:
            self.last_failure = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            self._report("failed")
            raise

    # --- learner failures -----------------------------------------------------------------------
    def _start_learners(self, resume: str | None) -> None:
        """Start the learner group and restore `resume` into it, retrying after failures."""
        while True:
            try:
                self.learners = LearnerGroup(self.cfg, name=f"{self.name}r{self.restarts}-" if self.restarts
                                             else self.name, status=self.link)
                self._restore(resume)
                return
            except LearnerFailure as err:
                self._stop_learners()
                self._failed(err)

    def _recover(self, err: LearnerFailure) -> None:
        """Tear the learner group down and restart it from the last checkpoint."""
        self._stop_learners()
        self._failed(err)
        self._start_learners("latest")

    def _stop_learners(self) -> None:
        if self.learners is not None:
            try:
                self.learners.shutdown()
            except Exception:  # noqa: BLE001 - the failed group may be half gone already
                pass
        self.learners = None

    def _failed(self, err: LearnerFailure) -> None:
        """Count a failure (fatal past learner.max_restarts), report it and back off before a restart."""
        self.restarts += 1
        self.last_failure = str(err)
        limit = self.cfg.learner.max_restarts
        if self.restarts > limit:
            raise RuntimeError(f"learner group failed {self.restarts} times (learner.max_restarts = {limit}); "
                               f"last error: {err}") from err
        wait = min(MAX_BACKOFF_S, self.cfg.learner.restart_backoff_s * 2.0 ** (self.restarts - 1))
        print(f"learner failure ({err}); restarting the group from the last checkpoint in {wait:g} s "
              f"(restart {self.restarts} of at most {limit})", flush=True)
        self._report("recovering")
        time.sleep(wait)

    @property
    def regenerated(self) -> int:
        return self.rollout.regenerated if self.rollout else 0

    def placement(self) -> dict:
        """Where every rollout worker and learner rank runs (node id, GPU ids); colocated: the ranks
        are the rollout workers."""
        learner = self.learners.placement()
        return {"rollout": learner if self.colocated else self.rollout.placement(), "learner": learner}

    def shutdown(self) -> None:
        """Stop every actor this controller started and release the learners' placement group."""
        if self.rollout is not None:
            self.rollout.shutdown()
        for actor in [*self.rewards, *(a for a in (self.store, self.status) if a is not None)]:
            ray.kill(actor, no_restart=True)
        self._stop_learners()

    # --- evaluation and status ----------------------------------------------------------------
    def evaluate(self) -> list[ItemScore]:
        """Greedy d1-protocol evaluation of the current weights (`DriverCore.evaluate`)."""
        state = self.state
        self._report("evaluating")
        scores = self.core.evaluate(self.step, self._generate())
        self._accuracy_point()
        self._report(state)
        return scores

    def _generate(self) -> Generate:
        """Evaluation on this run's actors, with the weights of the current version."""
        return remote_generate(self.samplers, self.rewards, self.tokenizer, self.task, self.cfg.task.prompt_style,
                               self.published, self.cfg.eval.batch_rows)

    def _report(self, state: State | None = None) -> None:
        """Send the status actor the run's state (`state` changes it) and progress, fire-and-forget."""
        self.state = state or self.state
        if self.status is None:
            return
        steps_s, completions_s = self.throughput.rates()
        last, resumed = (self.core.last, self.core.resumed) if self.core else ({}, None)
        totals = self.totals.model_copy(update={"learner_restarts": self.restarts,
                                                "chunks_regenerated": self.regenerated})
        flight = self.inflight.get(self.batch) if self.batch is not None else None
        self.status.report.remote(Progress(
            state=self.state, roster=self.roster, step=self.step, total_steps=self.cfg.train.steps, batch=self.batch,
            chunks_done=self.chunks_done, chunks_total=len(flight.chunks) if flight else 0,
            weight_version=self.published, queue_depth=len(self.inflight), staleness=last.get("rollout/staleness"),
            steps_per_s=steps_s, completions_per_s=completions_s, reward_mean=last.get("reward/mean"),
            eval_accuracy=last.get("eval/accuracy"), resumed_from=str(resumed.path) if resumed else None,
            resumed_step=resumed.step if resumed else None, last_failure=self.last_failure, totals=totals))

    def _point(self, series: str, value: float) -> None:
        if self.status is not None:
            self.status.point.remote(CurvePoint(series=series, step=self.step, value=value))

    def _accuracy_point(self) -> None:
        """The last evaluation's accuracy on the curve, once."""
        accuracy = self.core.last.get("eval/accuracy")
        if accuracy is not None and (self.step, accuracy) != self.sent_accuracy:
            self.sent_accuracy = (self.step, accuracy)
            self._point("accuracy", accuracy)
