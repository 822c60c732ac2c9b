"""Fan rollout jobs out to the actors that sample and their completions out to reward actors.

Shared by the Controller (training and periodic evaluation) and the evaluation service. The
actors that sample are the rollout workers (`RolloutPool`) or, under placement colocated, the
learner ranks (`services.learner_group.LearnerGroup`); both take chunk c on actor c mod n and hand
finished chunks to `verify_chunks` through `completed`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import ray
import torch
from ray.exceptions import ActorUnavailableError, RayActorError

from dllmrl_core.drive.heldout import Generate, eval_chunks, eval_prompts
from dllmrl_core.sampling import SamplerConfig
from dllmrl_core.training.policy import ModelConfig
from services.reward_actors import gather, verify_items
from services.rollout_worker import RolloutJob, RolloutWorker
from services.settings import RolloutConfig
from services.telemetry import StatusLink

UNAVAILABLE_PAUSE_S = 0.2  # before handing a job to the next worker when one was restarting

@dataclass
class Chunk:
    """A job on its way: the refs of its two results and the actor that generates it.

    batch:    ref of the RolloutBatch (CPU)
    items:    ref of the verification items (main rows, then branches)
    worker:   index of the actor generating it
    attempt:  how many actors lost this job before (0 on the first)
    """

    job: RolloutJob
    batch: ray.ObjectRef
    items: ray.ObjectRef
    worker: int
    attempt: int = 0


def send(actors: list, job: RolloutJob, worker: int, attempt: int = 0) -> Chunk:
    batch, items = actors[worker].generate.remote(job)
    return Chunk(job, batch, items, worker, attempt)


def submit(actors: list, jobs: list[RolloutJob]) -> list[Chunk]:
    """Chunk c goes to actor c mod n."""
    return [send(actors, job, job.chunk % len(actors)) for job in jobs]


def as_completed(chunks: list[Chunk], replace: Callable[[Chunk, RayActorError], Chunk] | None = None
                 ) -> Iterator[Chunk]:
    """Each chunk once it is generated, in the order they finish. A chunk whose actor died is handed
    to `replace`, which submits it again (the new chunk is yielded when it finishes); without
    `replace` the actor's error is raised."""
    pending = {c.items: c for c in chunks}
    while pending:
        [ref], _ = ray.wait(list(pending), num_returns=1)
        chunk = pending.pop(ref)
        try:
            ray.get(ref)  # the verification items: small, and they tell whether the task failed
        except RayActorError as err:
            if replace is None:
                raise
            again = replace(chunk, err)
            pending[again.items] = again
            continue
        yield chunk


class RolloutPool:
    """The rollout workers as one pool. A chunk whose worker died is generated again on the next
    worker instead of waiting for that one to restart: a job is a pure function of (seed, batch,
    chunk), so any worker produces the same chunk. A job lost twice by every worker is an error."""

    def __init__(self, workers: list):
        self.workers = workers
        self.regenerated = 0  # chunks lost with their worker and generated again

    @classmethod
    def start(cls, settings: RolloutConfig, model: ModelConfig, algorithm, seed: int, store,
              name: str = "", status: StatusLink | None = None) -> RolloutPool:
        """settings.num_workers rollout workers with the model (and adapter) of `model`, pulling
        versions from `store` (None: never), reporting to `status`; named `<name>rollout-<i>` when
        `name` is given."""
        return cls([RolloutWorker.options(name=f"{name}rollout-{i}" if name else None,
                                          num_cpus=settings.num_cpus_per_worker, num_gpus=settings.num_gpus_per_worker,
                                          resources=settings.resources)
                    .remote(model, algorithm, seed, store, max(1, int(settings.num_cpus_per_worker)), status, i)
                    for i in range(settings.num_workers)])

    def __len__(self) -> int:
        return len(self.workers)

    def submit(self, jobs: list[RolloutJob]) -> list[Chunk]:
        return submit(self.workers, jobs)

    def completed(self, chunks: list[Chunk]) -> Iterator[Chunk]:
        return as_completed(chunks, self._reroute)

    def _reroute(self, chunk: Chunk, err: RayActorError) -> Chunk:
        """Hand the job to the next worker. A worker that is restarting never ran it: no loss, only a
        short pause (a lone worker is not polled in a spin while it restarts). One that died lost it."""
        job, attempt, worker = chunk.job, chunk.attempt, (chunk.worker + 1) % len(self.workers)
        if isinstance(err, ActorUnavailableError):
            time.sleep(UNAVAILABLE_PAUSE_S)
            return send(self.workers, job, worker, attempt)
        attempt += 1
        if attempt >= 2 * len(self.workers):
            raise RuntimeError(f"chunk {job.chunk} of batch {job.batch} was lost by {attempt} rollout workers in "
                               f"turn; last error: {str(err).splitlines()[0]}") from err
        print(f"rollout worker {chunk.worker} lost chunk {job.chunk} of batch {job.batch}; "
              f"generating it on worker {worker}", flush=True)
        self.regenerated += 1
        return send(self.workers, job, worker, attempt)

    def placement(self) -> list[dict]:
        """Node and GPU ids of each worker ({"node": None, "gpus": []} for a dead one)."""
        out = []
        for worker in self.workers:
            try:
                out.append(ray.get(worker.placement.remote()))
            except RayActorError:
                out.append({"node": None, "gpus": []})
        return out

    def shutdown(self) -> None:
        for worker in self.workers:
            ray.kill(worker, no_restart=True)


def verify_chunks(pool, rewards: list, chunks: list[Chunk], on_chunk: Callable[[Chunk], None] | None = None
                  ) -> tuple[list[Chunk], list, list, float]:
    """Verify each chunk on the reward actors as soon as it is generated (and tell `on_chunk`).
    Returns the chunks as they were generated (a lost one replaced), the (main, branch) verdicts,
    all in batch order, and the moment (time.perf_counter) the last chunk was seen generated."""
    done, parts = {}, {}
    for chunk in pool.completed(chunks):
        done[chunk.job.chunk], parts[chunk.job.chunk] = chunk, verify_items(rewards, chunk.items)
        if on_chunk is not None:
            on_chunk(chunk)
    generated = time.perf_counter()
    ordered = [done[c.job.chunk] for c in chunks]
    main, branch = [], []
    for chunk in ordered:
        scored = gather(ray.get(parts[chunk.job.chunk]))
        main += scored[: len(chunk.job.examples)]
        branch += scored[len(chunk.job.examples):]
    return ordered, main, branch, generated


def eval_jobs(tokenizer, task, examples: list, style: str, sampler: SamplerConfig, version: int | None,
              parts: int) -> list[RolloutJob]:
    """Evaluation prompts (with the task's prefill) split into `parts` greedy, branch-free jobs."""
    ids, mask = eval_prompts(tokenizer, task, examples, style)
    rows = torch.arange(len(examples))
    return [RolloutJob(-1, c, version, ids[r], mask[r], rows[r], [examples[i] for i in r.tolist()], sampler,
                       branching=False)
            for c, r in enumerate(rows.tensor_split(parts)) if len(r)]


def texts(chunks: list[Chunk]) -> list[str]:
    """The completions of evaluation chunks (no branches), in batch order."""
    return [item.text for chunk in chunks for item in ray.get(chunk.items)]


def remote_generate(samplers, rewards: list, tokenizer, task, style: str, version: int | None,
                    batch_rows: int | None) -> Generate:
    """Evaluation on actors (`DriverCore.evaluate`, services.evaluate): the examples split into
    greedy jobs over the actors that sample (weights of `version`), verified on `rewards`."""
    def generate(examples: list, sampler: SamplerConfig) -> tuple[list[str], list]:
        parts = eval_chunks(len(examples), len(samplers), batch_rows)
        chunks = samplers.submit(eval_jobs(tokenizer, task, examples, style, sampler, version, parts))
        chunks, main, _, _ = verify_chunks(samplers, rewards, chunks)
        return texts(chunks), main
    return generate
