"""Controller actor: the training loop of the distributed system.

    setup():  StatusActor, RewardActor × K, LearnerGroup (N ranks), and for placement disaggregated
              WeightStore and RolloutWorker × R
    run():    for each batch b:
                admit b (and b+1 when max_staleness = 1)   rollout chunks → object store
                score b's completions on the reward actors  verdicts
                μ optimizer steps on the learner group       version += μ, published
                metrics, evaluation, checkpoint, status

Placement disaggregated: rollout workers sample with adapters the learners publish through the
WeightStore. Placement colocated: the learner ranks sample their chunks themselves and nothing is
published (the model that learns is the model that samples).

Staleness is bounded by admission, never by dropping finished work: batch b is generated with
weight version (b − max_staleness)·μ, so 0 is exact on-policy and 1 overlaps the rollout of b+1
with learning on b. A chunk lost with its rollout worker is generated again on another worker;
reward actors restart and rerun a lost job; a learner failure (colocated: any worker's) restarts
the whole group from the last checkpoint, after a backoff, at most learner.max_restarts times.

The controller (the run's state), the WeightStore (the adapter versions a rollout may still ask
for) and the status actor are pinned to the head node (`ON_HEAD`), which lives as long as the
cluster.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import ray
import torch

from dllmrl_core.drive.config import dump_config
from dllmrl_core.rollout.prompts import PromptStream, group_prompts
from dllmrl_core.drive.heldout import (across_lengths, before_after, eval_chunks, eval_file, eval_metrics, summarize,
                                   write_generations)
from dllmrl_core.drive.metrics import MetricsLog, batch_metrics
from dllmrl_core.drive.plots import plot_run
from dllmrl_core.models import load_tokenizer
from dllmrl_core.tasks import load_split
from dllmrl_core.training import checkpoint
from services.jobs import Chunk, RolloutPool, eval_jobs, score, texts
from services.learner_group import LearnerFailure, LearnerGroup
from services.reward_actors import RewardActor
from services.rollout_worker import RolloutJob, RolloutWorker
from services.settings import SystemConfig
from services.status import StatusActor
from services.weight_store import WeightStore

ON_HEAD = {"resources": {"node:__internal_head__": 0.001}}  # Ray's resource of the head node
MAX_BACKOFF_S = 60.0  # before restarting a failed learner group: 1, 2, 4, ... s, at most this


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
        self.step = self.published = self.restarts = self.generated = 0
        self.last: dict[str, float] = {}
        self.last_failure = ""
        self.colocated = cfg.colocated
        self.parts = cfg.learner.num_workers if self.colocated else cfg.rollout.num_workers  # chunks per batch
        self.learners: LearnerGroup | None = None
        self.started = time.perf_counter()

    # --- wiring ---------------------------------------------------------------------------------
    def setup(self) -> str:
        """Start every actor; returns the status URL ('' when disabled)."""
        cfg, n = self.cfg, self.name
        self.tokenizer = load_tokenizer(cfg.model.path)
        self.task, self.train = cfg.task.task, load_split(cfg.task, "train")
        self.test = load_split(cfg.task, "test") if cfg.eval.active else None
        self.stream = PromptStream(self.train.examples, seed=cfg.train.seed)
        self.status = None
        if cfg.status.enabled:
            s = cfg.status
            self.status = StatusActor.options(name=f"{n}status", **ON_HEAD).remote(s.host, s.port, s.token)
        self.store = self.rollout = None
        if not self.colocated:
            # a rollout can still ask for the version of each in-flight batch, and the newest: with
            # max_staleness s those are the newest s + 1 (a version is published every μ steps)
            self.store = WeightStore.options(name=f"{n}weights", **ON_HEAD).remote(keep=cfg.train.max_staleness + 1)
            rc = cfg.rollout
            self.rollout = RolloutPool([RolloutWorker.options(
                name=f"{n}rollout-{i}", num_cpus=rc.num_cpus_per_worker, num_gpus=rc.num_gpus_per_worker,
                resources=rc.resources).remote(cfg.model, cfg.algorithm, cfg.train.seed, self.store,
                                               max(1, int(rc.num_cpus_per_worker))) for i in range(rc.num_workers)])
        wc = cfg.reward
        self.rewards = [RewardActor.options(name=f"{n}reward-{i}", num_cpus=wc.num_cpus_per_actor,
                                            resources=wc.resources).remote(
            cfg.task.name, cfg.task.reward_set, cfg.task.eval_protocol, wc.processes_per_actor, wc.timeout_s)
            for i in range(wc.num_actors)]
        self.log = MetricsLog(cfg.checkpoint.dir)
        self._start_learners(cfg.checkpoint.resume)
        return ray.get(self.status.url.remote()) if self.status else ""

    @property
    def samplers(self):
        """Who generates the chunks: the rollout pool, or under placement colocated the learner ranks."""
        return self.learners if self.colocated else self.rollout

    def _restore(self, resume: str | None) -> None:
        """Continue from a checkpoint (or start fresh) and push its weights before any generation."""
        found = checkpoint.resolve(self.cfg.checkpoint.dir, resume)
        self.step, self.stream.epoch, self.stream.cursor = 0, 0, 0
        if found is not None:
            state = checkpoint.read_state(found)
            self.learners.load(str(found))
            self.step = state["step"]
            self.stream.epoch, self.stream.cursor = state["stream"]["epoch"], state["stream"]["cursor"]
        if self.store is not None:
            ray.get(self.store.clear.remote())
        self.inflight.clear()
        self._publish()

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

    def _train_batch(self, b: int) -> None:
        flight = self.inflight[b]
        flight.chunks, main, branch = score(self.samplers, self.rewards, flight.chunks)
        self.generated += len(main) + len(branch)
        refs = [chunk.batch for chunk in flight.chunks]
        version = flight.chunks[0].job.version
        for k in range(self.mu):
            if self.step >= self.cfg.train.steps:
                break
            t0 = time.perf_counter()
            metrics = self.learners.learn(refs, main + branch if k == 0 else [], k)
            self.step += 1
            values = {**batch_metrics(main, branch, version), **metrics.as_dict(),
                      "rollout/staleness": float(self.step - 1 - version)}
            self.log.log(self.step, values)
            self.last = values
            print(f"step {self.step:4d}  reward {values['reward/mean']:.3f}  correct {values['reward/correct']:.2f}  "
                  f"loss {metrics.loss:+.4f}  kl {metrics.kl:.4f}  |g| {metrics.grad_norm:.3f}  "
                  f"{time.perf_counter() - t0:.1f}s", flush=True)
        del self.inflight[b]
        self._after_batch(flight)

    def _after_batch(self, flight: InFlight) -> None:
        cfg = self.cfg
        if self.step % self.mu == 0 or self.step >= cfg.train.steps:
            self._publish()
        if cfg.eval.every and self.step % cfg.eval.every == 0 and self.step < cfg.train.steps:
            self.evaluate()
        if cfg.checkpoint.save_every and self.step % cfg.checkpoint.save_every == 0:
            tmp = checkpoint.temp_dir(cfg.checkpoint.dir, self.step)
            self.learners.save(str(tmp))
            state = {"step": self.step, "version": self.step, "stream": flight.stream_after}
            checkpoint.finalize(cfg.checkpoint.dir, tmp, self.step, state, dump_config(cfg), cfg.checkpoint.keep)
        self._report("training")

    # --- the loop -----------------------------------------------------------------------------
    def run(self) -> dict:
        from ray.experimental.tqdm_ray import tqdm

        start, bar = time.perf_counter(), tqdm(total=self.cfg.train.steps, desc="train")
        bar.update(self.step)
        before = self.evaluate() if self.cfg.eval.before else []
        while self.step < self.cfg.train.steps:
            b, done = self.step // self.mu, self.step
            try:
                for ahead in range(self.cfg.train.max_staleness + 1):
                    self._admit(b + ahead)
                self._train_batch(b)
            except LearnerFailure as err:
                self._recover(err)
            bar.update(max(0, self.step - done))
        bar.close()
        after = self.evaluate() if self.cfg.eval.after or self.cfg.eval.every else []
        self._report("finished")
        summary = self._summary(start)
        if before and after:
            summary.update(before_after(before, after))
        return summary

    # --- learner failures -----------------------------------------------------------------------
    def _start_learners(self, resume: str | None) -> None:
        """Start the learner group and restore `resume` into it, retrying after failures."""
        while True:
            try:
                self.learners = LearnerGroup(self.cfg, name=f"{self.name}r{self.restarts}-" if self.restarts
                                             else self.name)
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
        wait = min(MAX_BACKOFF_S, 2.0 ** (self.restarts - 1))
        print(f"learner failure ({err}); restarting the group from the last checkpoint in {wait:g} s "
              f"(restart {self.restarts} of at most {limit})", flush=True)
        self._report("recovering")
        time.sleep(wait)

    def _summary(self, start: float) -> dict:
        final = Path(self.cfg.checkpoint.dir) / "final"
        self.learners.save_final(str(final))
        sha, norm = self.learners.digest()  # the full-precision adapter, whatever dtype was published
        self.log.close()
        plot_run(Path(self.cfg.checkpoint.dir) / "metrics.jsonl", Path(self.cfg.checkpoint.dir) / "curve.png",
                 f"{self.cfg.algorithm.name} on {self.cfg.task.name}")
        return {"steps": self.step, "algorithm": self.cfg.algorithm.name,
                "reward_mean": round(self.last.get("reward/mean", float("nan")), 6),
                "adapter_sha256": sha, "adapter_norm": norm, "learner_restarts": self.restarts,
                "chunks_regenerated": self.rollout.regenerated if self.rollout else 0,
                "wall_s": round(time.perf_counter() - start, 2), "placement": self.placement()}

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
    def evaluate(self) -> list:
        """Greedy d1-protocol evaluation of the current weights on held-out examples at every
        evaluation length: logs the summary (eval/..., and eval/<length>/... with several lengths)
        at the current step and returns each problem's score averaged over the lengths."""
        cfg = self.cfg
        examples, samplers = self.test.examples[: cfg.eval.num_examples], cfg.eval.samplers(cfg.sampler.gen_length)
        parts, per_length = eval_chunks(len(examples), self.parts, cfg.eval.batch_rows), {}
        for sampler in samplers:
            chunks = self.samplers.submit(eval_jobs(self.tokenizer, self.task, examples, cfg.task.prompt_style,
                                                    sampler, self.published, parts))
            chunks, main, _ = score(self.samplers, self.rewards, chunks)
            length = sampler.gen_length if len(samplers) > 1 else None
            write_generations(eval_file(cfg.checkpoint.dir, self.step, length), self.task, examples, texts(chunks),
                              main, sampler)
            per_length[sampler.gen_length] = main
            if len(samplers) > 1:
                at = summarize(main)
                print(f"eval at step {self.step}, {sampler.gen_length} tokens: accuracy {at.accuracy:.1f}% "
                      f"± {at.ci95:.1f}", flush=True)
        metrics, result = eval_metrics(per_length), summarize(across_lengths(per_length))
        self.log.log(self.step, metrics)
        self.last.update(metrics)
        average = f", the average over {len(samplers)} lengths" if len(samplers) > 1 else ""
        print(f"eval at step {self.step}: accuracy {result.accuracy:.1f}% ± {result.ci95:.1f} "
              f"(well-formed {result.well_formed:.0f}%, {result.items} problems{average})", flush=True)
        return across_lengths(per_length)

    def _report(self, state: str) -> None:
        if self.status is None:
            return
        busy = {chunk.worker for f in self.inflight.values() for chunk in f.chunks}
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        sampling = "colocated" if self.colocated else "rollout"
        workers = ([{"role": sampling, "index": i, "busy": i in busy} for i in range(self.parts)]
                   + [{"role": "reward", "index": i, "busy": False} for i in range(len(self.rewards))])
        if not self.colocated:
            workers += [{"role": "learner", "index": i, "busy": False} for i in range(self.cfg.learner.num_workers)]
        self.status.update.remote({
            "state": state, "step": self.step, "total_steps": self.cfg.train.steps, "weight_version": self.published,
            "completions_per_s": self.generated / elapsed, "steps_per_s": self.step / elapsed,
            "reward_mean": self.last.get("reward/mean", 0.0), "queue_depth": len(self.inflight),
            "staleness": self.last.get("rollout/staleness", 0.0), "learner_restarts": self.restarts,
            "last_failure": self.last_failure, "chunks_regenerated": self.rollout.regenerated if self.rollout else 0,
            "workers": workers,
        })
