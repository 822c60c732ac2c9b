"""LearnerGroup: N learner actors in a placement group, DDP over gloo (CPU) or NCCL (GPU).

Rendezvous by hand: rank 0 binds a free port and reports (address, port); every rank then calls
init_process_group with an explicit timeout. Each rank holds a `Learner` (dllmrl_core), takes its
shard of every scored batch and runs one optimizer step per call; rank 0 publishes the adapter.

Under placement colocated the ranks also sample: chunk c of every batch goes to rank c mod N,
which generates it with its own weights (`run_job`, as a RolloutWorker does) through the module
under the DDP wrapper. Weights never travel: the model that learns is the model that samples.

Learners are not restartable one by one: on any failure (a rank dies or raises, or the placement
group is not ready within learner.placement_timeout_s) the group raises LearnerFailure and the
controller restarts it from the last checkpoint.
"""

from __future__ import annotations

import datetime
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import ray
import torch
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from dllmrl_core.contract.types import RolloutBatch
from dllmrl_core.drive.config import RunConfig
from dllmrl_core.drive.runtime import configure_process
from dllmrl_core.faults import fault_point
from dllmrl_core.planning import Topology, micro_rows
from dllmrl_core.training.ddp import wrap_ddp
from dllmrl_core.training.learner import Learner, merge_metrics
from dllmrl_core.training.policy import load_policy
from dllmrl_core.training.step import StepMetrics
from dllmrl_core.verify.batch import scored_batch
from services.jobs import Chunk, as_completed, submit
from services.rollout_worker import RolloutJob, run_job
from services.settings import LearnerConfig, SystemConfig
from services.telemetry import Beacon, StatusLink
from services.weight_store import publish


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def join_group(lc: LearnerConfig, rank: int, world: int, addr: str, port: int) -> None:
    """torch.distributed over learner.backend (auto: NCCL with CUDA, else gloo), rank 0's rendezvous."""
    backend = lc.backend if lc.backend != "auto" else ("nccl" if torch.cuda.is_available() else "gloo")
    torch.distributed.init_process_group(backend, init_method=f"tcp://{addr}:{port}", rank=rank, world_size=world,
                                         timeout=datetime.timedelta(seconds=lc.timeout_s))


@ray.remote(max_restarts=0)
class LearnerActor:
    """One DDP rank holding a `Learner`; under placement colocated it also samples (`generate`)."""

    def __init__(self, cfg: RunConfig, group: LearnerConfig, topology: Topology, rank: int, world: int,
                 status: StatusLink | None = None):
        self.cfg, self.group, self.topology, self.rank, self.world = cfg, group, topology, rank, world
        configure_process(group.num_cpus_per_worker)
        self.beacon = Beacon(status, "learner", rank)

    def address(self) -> tuple[str, int]:
        return ray.util.get_node_ip_address(), free_port()

    def setup(self, addr: str, port: int) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.train.seed)  # the same adapter init on every rank, and as in the loop
        policy, self.tokenizer = load_policy(cfg.model)
        # colocated sampling uses the module itself: DDP's forward can run collectives, and ranks
        # sample different amounts
        self.sampling_policy = replace(policy)
        if self.world > 1:
            join_group(self.group, self.rank, self.world, addr, port)
            policy.model = wrap_ddp(policy.model, policy.device)
        self.learner = Learner.build(cfg.learn_settings(), policy, micro_rows(cfg, self.topology, policy.device),
                                     self.rank, self.world)

    @ray.method(num_returns=2)
    def generate(self, job: RolloutJob) -> tuple[RolloutBatch, list]:
        """Placement colocated: one chunk, sampled with this rank's weights. They are version
        job.version: the controller admits a batch only once its version has been trained."""
        self.sampling_policy.version = job.version
        with self.beacon.working("generate"):
            return run_job(self.sampling_policy, self.tokenizer, self.cfg.algorithm, self.cfg.train.seed, job)

    def learn(self, chunks: list, verdicts: list, k: int) -> StepMetrics:
        """Optimizer step k of a batch; k = 0 first builds the scored batch and its terms."""
        with self.beacon.working("learn"):
            fault_point("learner.learn")
            if k == 0:
                rollout = RolloutBatch.cat(ray.get(chunks)).to(self.learner.policy.device)
                self.learner.prepare(scored_batch(rollout, verdicts))
            return self.learner.step(k)

    def publish(self, store, version: int) -> None:
        if self.rank == 0:
            publish(store, version, self.learner.forward_adapter())
            fault_point("learner.publish")

    def digest(self) -> tuple[str, float]:
        """`adapter_digest` of the full-precision adapter."""
        return self.learner.digest()

    def save(self, path: str) -> None:
        self.learner.save(Path(path))

    def load(self, path: str) -> None:
        self.learner.load(Path(path))

    def save_final(self, directory: Path) -> None:
        """The trained adapter in PEFT format (PeftModel.from_pretrained loads it)."""
        self.learner.save_final(directory)

    def placement(self) -> dict:
        return {"rank": self.rank, "node": ray.get_runtime_context().get_node_id(), "gpus": ray.get_gpu_ids()}


class LearnerFailure(RuntimeError):
    """A learner rank died or failed, or the group could not start: restart from the last checkpoint."""


def _failure(err: Exception) -> LearnerFailure:
    return LearnerFailure(str(err).splitlines()[0])


def _get(refs):
    try:
        return ray.get(refs)
    except (RayActorError, RayTaskError) as err:
        raise _failure(err) from err


class LearnerGroup:
    """The controller's handle on the learner ranks. Every call raises LearnerFailure if a rank
    fails; a group that fails to start releases what it took."""

    def __init__(self, cfg: SystemConfig, name: str = "", status: StatusLink | None = None):
        lc = cfg.learner
        self.bundle = {"CPU": lc.num_cpus_per_worker, **({"GPU": lc.num_gpus_per_worker} if lc.num_gpus_per_worker
                                                         else {}), **lc.resources}
        self.pg = placement_group([dict(self.bundle) for _ in range(lc.num_workers)], strategy=lc.placement_strategy)
        self.actors: list = []
        try:
            self._start(cfg, name, status)
        except LearnerFailure:
            self.shutdown()
            raise

    def _start(self, cfg: SystemConfig, name: str, status: StatusLink | None) -> None:
        lc = cfg.learner
        try:
            ray.get(self.pg.ready(), timeout=lc.placement_timeout_s)
        except GetTimeoutError:
            raise LearnerFailure(f"placement group of {lc.num_workers} x {self.bundle} not ready within "
                                 f"learner.placement_timeout_s = {lc.placement_timeout_s:g} s") from None
        self.actors = [
            LearnerActor.options(
                name=f"{name}learner-{rank}" if name else None, num_cpus=lc.num_cpus_per_worker,
                num_gpus=lc.num_gpus_per_worker, resources=lc.resources,
                scheduling_strategy=PlacementGroupSchedulingStrategy(self.pg, placement_group_bundle_index=rank),
            ).remote(cfg, lc, cfg.topology(), rank, lc.num_workers, status)
            for rank in range(lc.num_workers)
        ]
        addr, port = _get(self.actors[0].address.remote())
        _get([a.setup.remote(addr, port) for a in self.actors])

    # --- placement colocated: the ranks sample too (the interface of services.jobs.RolloutPool) ---
    def __len__(self) -> int:
        return len(self.actors)

    def submit(self, jobs: list[RolloutJob]) -> list[Chunk]:
        return submit(self.actors, jobs)

    def completed(self, chunks: list[Chunk]) -> Iterator[Chunk]:
        """Chunks as they finish; a rank lost while sampling is a group failure like any other."""
        try:
            yield from as_completed(chunks)
        except (RayActorError, RayTaskError) as err:
            raise _failure(err) from err

    # --- training ---------------------------------------------------------------------------------
    def learn(self, chunks: list, verdicts: list, k: int) -> StepMetrics:
        return merge_metrics(_get([a.learn.remote(chunks, verdicts, k) for a in self.actors]))

    def publish(self, store, version: int) -> None:
        _get(self.actors[0].publish.remote(store, version))

    def digest(self) -> tuple[str, float]:
        return _get(self.actors[0].digest.remote())

    def save(self, path: str) -> None:
        _get([a.save.remote(path) for a in self.actors])

    def load(self, path: str) -> None:
        _get([a.load.remote(path) for a in self.actors])

    def save_final(self, directory: Path) -> None:
        _get(self.actors[0].save_final.remote(directory))

    def placement(self) -> list[dict]:
        return _get([a.placement.remote() for a in self.actors])

    def shutdown(self) -> None:
        for a in self.actors:
            ray.kill(a, no_restart=True)
        remove_placement_group(self.pg)
