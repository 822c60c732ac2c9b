"""The Ray system's settings: where each actor runs and with what, and the status endpoint.

These sections sit in the same run config file as the core's (`dllmrl_core/drive/config.py`), and
only the Ray layer reads them. `SystemConfig` is the whole file: the core's `RunConfig` plus

    placement:  disaggregated (rollout and learner actors) or colocated (one worker per GPU does both)
    rollout:    RolloutConfig, the rollout workers
    reward:     RewardConfig, the reward actors and their verifier processes
    learner:    LearnerConfig, the learner ranks (DDP) and their placement group
    status:     StatusConfig, the read-only status endpoint

The core sees none of them: the memory plan reads the `Topology` they describe, and each actor
gets the sections it uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from dllmrl_core.contract.configbase import ConfigModel, Seconds
from dllmrl_core.drive.config import RunConfig, load_config
from dllmrl_core.planning import Topology


class RolloutConfig(ConfigModel):
    """Rollout workers (Ray actors; the single-process loop ignores this section)."""

    num_workers: int = Field(1, ge=1, description="rollout worker actors; scale freely, learners are unaffected")
    num_gpus_per_worker: float = Field(0, ge=0, description="GPUs per worker (1 for LLaDA-8B)")
    num_cpus_per_worker: float = Field(1, gt=0, description="CPUs per worker (also its torch threads)")
    resources: dict[str, float] = Field(default_factory=dict, description="custom Ray resources per worker")


class RewardConfig(ConfigModel):
    """Reward actors on CPU, each with worker processes (the per-item time limit is `verify.timeout_s`)."""

    num_actors: int = Field(1, ge=1, description="reward actors")
    processes_per_actor: int = Field(2, ge=1, description="verifier processes per actor")
    num_cpus_per_actor: float = Field(0.5, gt=0, description="CPUs per reward actor")
    resources: dict[str, float] = Field(default_factory=dict, description="custom Ray resources per actor")


class LearnerConfig(ConfigModel):
    """The learner actor group (DDP). The loop is one learner."""

    num_workers: int = Field(1, ge=1, description="learner ranks (DDP); each takes a shard of every batch")
    num_gpus_per_worker: float = Field(0, ge=0, description="GPUs per rank")
    num_cpus_per_worker: float = Field(1, gt=0, description="CPUs per rank (also its torch threads)")
    backend: Literal["auto", "gloo", "nccl"] = Field("auto", description="auto = nccl on GPU, gloo on CPU")
    timeout_s: Seconds = Field(600, description="collective timeout")
    max_restarts: int = Field(2, ge=0, description="group restarts from the last checkpoint before giving up (a rank "
                                                   "failure or a placement group not ready in time)")
    restart_backoff_s: float = Field(1.0, ge=0, le=60, description="wait before the first restart; doubled for "
                                                                   "each further one, at most 60 s")
    placement_timeout_s: Seconds = Field(600, description="wait this long for the ranks' placement group; then "
                                                              "the group start counts as a failure and is retried")
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = Field(
        "PACK", description="Ray placement-group strategy for the ranks' bundles")
    resources: dict[str, float] = Field(default_factory=dict, description="custom Ray resources per rank")


class StatusConfig(ConfigModel):
    """The read-only status endpoint of a Ray run (the single-process loop ignores this section)."""

    enabled: bool = Field(True, description="serve /, /health, /status, /metrics during a Ray run")
    host: str = Field("127.0.0.1", description="bind address; anything but loopback requires a token")
    port: int = Field(0, ge=0, le=65535, description="0 = a free port")
    token: SecretStr | None = Field(
        None, exclude=True, description="bearer token (or env DLLMRL_STATUS_TOKEN); a secret: never written to a "
                                        "run's config.yaml or checkpoints, nor shown in logs")
    heartbeat_s: float = Field(2.0, gt=0, le=3600, description="every actor reports this often; one silent for 5 "
                                                               "beats counts as dead in /health")
    rate_window: int = Field(8, ge=1, description="steps/s and completions/s are over this many recent batches "
                                                  "of training (set-up and evaluation excluded)")


class SystemConfig(RunConfig):
    """One RL run: the sections below, each validated before any work starts."""

    placement: Literal["disaggregated", "colocated"] = Field(
        "disaggregated", description="disaggregated: rollout workers and learner ranks are separate actors (weights "
                                     "travel); colocated: learner.num_workers workers, each samples its share of the "
                                     "batch and then trains under DDP (rollout section unused)")
    rollout: RolloutConfig = RolloutConfig()
    reward: RewardConfig = RewardConfig()
    learner: LearnerConfig = LearnerConfig()
    status: StatusConfig = StatusConfig()

    @model_validator(mode="after")
    def _placement_fits(self) -> SystemConfig:
        if self.placement == "colocated" and self.train.max_staleness:
            raise ValueError("train.max_staleness: placement colocated samples and learns on the same GPU in turn, "
                             "so there is nothing to overlap: use 0")
        return self

    @property
    def colocated(self) -> bool:
        return self.placement == "colocated"

    def topology(self) -> Topology:
        """The actors that hold a model, as the memory plan reads them."""
        return Topology(colocated=self.colocated, rollout_workers=self.rollout.num_workers,
                        rollout_gpus=self.rollout.num_gpus_per_worker, learner_ranks=self.learner.num_workers,
                        learner_gpus=self.learner.num_gpus_per_worker)



def load_system_config(path: str | Path, overrides: list[str] = ()) -> SystemConfig:
    """Read, override and validate a whole run config file; one-line errors, as the core's."""
    return load_config(SystemConfig, path, overrides)
