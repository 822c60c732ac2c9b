"""RolloutWorker: holds the base model + LoRA adapter, generates rollout batches for jobs.

A job names the weight version to use; the worker pulls that adapter version from the
WeightStore before generating. Every random draw of a job comes from a generator seeded by
(seed, batch, chunk), so a job is a pure function of its inputs: when a worker dies, its job is
generated again on another worker (`services.jobs.RolloutPool`) and the result is the same. Ray
restarts a dead worker, which then takes new jobs.

`run_job` is what any actor holding a policy does with a job: the RolloutWorker here, and the
learner ranks under placement colocated (services/learner_group.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import ray
import torch

from dllmrl_core.contract.types import RolloutBatch
from dllmrl_core.contract.verdict import TRAINING_PROTOCOL
from dllmrl_core.drive.runtime import configure_process
from dllmrl_core.faults import fault_point
from dllmrl_core.objectives import get_objective
from dllmrl_core.rollout.generate import batch_generator, generate_rollouts
from dllmrl_core.sampling import SamplerConfig, sample
from dllmrl_core.training.lora import load_adapter_state
from dllmrl_core.training.policy import ModelConfig, load_policy
from dllmrl_core.verify.batch import completions_to_verify
from services.telemetry import Beacon, StatusLink
from services.weight_store import fetch


@dataclass
class RolloutJob:
    """One chunk of a batch: rows [R] of prompts (already tokenized and padded for the whole batch).

    batch, chunk:  position in the run (seed the chunk's RNG)
    version:       the weight version to generate with (None: the weights the worker was built with)
    prompt_ids:    [R, P] int64 left-padded; prompt_mask [R, P] bool; group_ids [R] int64
    examples:      [R] the example of each row (for verification)
    sampler:       decoding settings
    branching:     apply the training method's recording and branching (False for evaluation)
    """

    batch: int
    chunk: int
    version: int | None
    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    group_ids: torch.Tensor
    examples: list
    sampler: SamplerConfig
    branching: bool = True


def run_job(policy, tokenizer, algorithm, seed: int, job: RolloutJob) -> tuple[RolloutBatch, list]:
    """(rollout batch on CPU, verification items: main rows then branches) of `job` on `policy`."""
    device = policy.device
    gen = batch_generator(seed, job.batch, job.chunk, device)
    ids, mask, groups = job.prompt_ids.to(device), job.prompt_mask.to(device), job.group_ids.to(device)
    if job.branching:
        batch = generate_rollouts(policy, ids, mask, groups, job.sampler, get_objective(algorithm.name),
                                  algorithm.selected, gen)
    else:
        was_training = policy.model.training
        policy.model.eval()
        batch = sample(policy, ids, mask, job.sampler, generator=gen)
        policy.model.train(was_training)
    protocol = TRAINING_PROTOCOL if job.branching else None  # training rollouts vs held-out evaluation
    return batch.to("cpu"), completions_to_verify(batch, tokenizer, job.examples, protocol)


@ray.remote(max_restarts=-1, max_task_retries=0)
class RolloutWorker:
    def __init__(self, model: ModelConfig, algorithm, seed: int, weights, threads: int,
                 status: StatusLink | None = None, index: int = 0):
        configure_process(threads)
        self.policy, self.tokenizer = load_policy(model)
        self.algorithm, self.seed, self.weights = algorithm, seed, weights
        self.version: int | None = None
        self.beacon = Beacon(status, "rollout", index)  # after loading: alive means ready for jobs

    def _use_version(self, version: int | None) -> None:
        if version is not None and version != self.version:
            load_adapter_state(self.policy.model, fetch(self.weights, version))
            self.version = self.policy.version = version

    @ray.method(num_returns=2)
    def generate(self, job: RolloutJob) -> tuple[RolloutBatch, list]:
        """(rollout batch on CPU, verification items: main rows then branches)."""
        with self.beacon.working("generate"):
            self._use_version(job.version)
            fault_point("rollout.generate")
            return run_job(self.policy, self.tokenizer, self.algorithm, self.seed, job)

    def placement(self) -> dict:
        return {"node": ray.get_runtime_context().get_node_id(), "gpus": ray.get_gpu_ids()}
