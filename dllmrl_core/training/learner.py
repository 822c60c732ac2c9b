"""What one learner process holds and does: policy, optimizer, schedule, the method's terms.

The single-process loop holds one `Learner`; each Ray learner actor holds one too, with the
policy's module wrapped in DDP. Every rank prepares the *whole* scored batch (the estimator
draws are identical on every rank because each rank's generator advances identically), then
keeps its shard of the rows: normalizers stay global, so the ranks' losses add up to the
full-batch loss and DDP's gradient average is scaled back to a sum (`loss_scale = world`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch

from dllmrl_core.contract.configbase import ConfigModel
from dllmrl_core.contract.types import ScoredBatch
from dllmrl_core.models.llada import set_activation_checkpointing
from dllmrl_core.models.predictor import MaskPredictor
from dllmrl_core.models.tokens import special_tokens
from dllmrl_core.objectives import get_objective
from dllmrl_core.objectives.common import PolicyTerm
from dllmrl_core.training import checkpoint
from dllmrl_core.training.lora import adapter_digest, adapter_state
from dllmrl_core.training.optim import OptimConfig, build_optimizer
from dllmrl_core.training.step import BatchStats, StepMetrics, batch_stats, freeze_old_and_ref, train_step, unwrap


def shard(term: PolicyTerm, rank: int, world: int) -> PolicyTerm:
    """Units (rows, for unit 1) rank, rank+world, ... of a term. A rank left without any gets the first
    unit with weight 0, so it still joins DDP's gradient all-reduce."""
    units = torch.arange(rank, len(term) // term.unit, world)
    if len(units):
        return term.rows((units[:, None] * term.unit + torch.arange(term.unit)).flatten())
    idle = term.rows(torch.arange(term.unit))
    return replace(idle, weights=torch.zeros_like(idle.weights))


@dataclass(frozen=True)
class LearnSettings:
    """What a learner reads of the run config (`RunConfig.learn_settings()`)."""

    method: str           # algorithm.name
    algo: ConfigModel     # algorithm.<name>: the method's own Config
    optim: OptimConfig
    total_steps: int      # train.steps: the learning-rate schedule's length
    seed: int             # train.seed: the estimator generator starts from seed + 1


@dataclass
class Learner:
    settings: LearnSettings
    policy: MaskPredictor  # with a LoRA adapter (its module possibly DDP-wrapped)
    optimizer: torch.optim.Optimizer
    scheduler: object
    generator: torch.Generator  # CPU: estimator draws (mask seeds, sampled steps)
    rank: int = 0
    world: int = 1
    micro_rows: int | None = None  # optim.micro_batch_rows, "auto" resolved by the memory plan
    batch_terms: list[list[PolicyTerm]] = field(default_factory=list)  # the terms of each of the batch's μ steps
    batch_stats: BatchStats | None = None  # what the prepared batch looks like (lengths, zero-advantage share)

    @classmethod
    def build(cls, settings: LearnSettings, policy: MaskPredictor, micro_rows: int | None = None, rank: int = 0,
              world: int = 1) -> Learner:
        """`micro_rows`: optim.micro_batch_rows with "auto" resolved (`dllmrl_core.planning.micro_rows`)."""
        opt, sched = build_optimizer(policy.model.parameters(), settings.optim, settings.total_steps)
        if settings.optim.activation_checkpointing:
            enable_activation_checkpointing(policy)
        return cls(settings, policy, opt, sched, torch.Generator().manual_seed(settings.seed + 1), rank, world,
                   micro_rows)

    @property
    def objective(self):
        return get_objective(self.settings.method)

    def prepare(self, scored: ScoredBatch) -> None:
        """Advantages and queries for the μ iterations of a new batch; old/ref log-probs frozen now."""
        algo = self.settings.algo
        self.batch_stats = batch_stats(scored, self.policy.eos_id)
        full = self.objective.prepare(scored, algo, special_tokens(self.policy), self.generator)
        self.batch_terms = [[shard(t, self.rank, self.world) for t in terms] for terms in full]
        freeze_old_and_ref(self.policy, self.batch_terms, self.objective.needs_ref(algo), self.micro_rows)

    def step(self, k: int) -> StepMetrics:
        """Optimizer step k of the prepared batch."""
        metrics = train_step(self.policy, self.optimizer, self.scheduler, self.batch_terms[k],
                          partial(self.objective.loss, cfg=self.settings.algo),
                          max_grad_norm=self.settings.optim.max_grad_norm, micro_rows=self.micro_rows,
                          loss_scale=float(self.world))
        return replace(metrics, batch=self.batch_stats)

    def adapter(self) -> dict[str, torch.Tensor]:
        """The full-precision adapter (what checkpoints hold and `adapter_digest` identifies)."""
        return adapter_state(unwrap(self.policy.model))

    def forward_adapter(self) -> dict[str, torch.Tensor]:
        """The adapter in the dtype the forward computes with. Under the CUDA policy that is bf16:
        autocast rounds each fp32 LoRA weight to bf16 before its matmul, so bf16(W) is exactly what
        this learner's own forward uses and a sampler that loads it (into its fp32 parameters)
        computes the same numbers, from half the bytes (vanilla LoRA: its weights enter matmuls only).
        Elsewhere: fp32, unchanged."""
        return adapter_state(unwrap(self.policy.model), self.policy.autocast_dtype)

    def digest(self) -> tuple[str, float]:
        """`adapter_digest` of the full-precision adapter (what a run's summary reports)."""
        return adapter_digest(self.adapter())

    def save_final(self, directory: Path) -> None:
        """The trained adapter in PEFT format under `directory`/adapter (PeftModel.from_pretrained loads it)."""
        if self.rank == 0:
            unwrap(self.policy.model).save_pretrained(Path(directory) / "adapter")

    def save(self, path: Path) -> None:
        checkpoint.save_learner(path, self.rank, unwrap(self.policy.model), self.optimizer, self.scheduler,
                                {"estimator": self.generator})

    def load(self, path: Path) -> None:
        checkpoint.load_learner(path, self.rank, unwrap(self.policy.model), self.optimizer, self.scheduler,
                                {"estimator": self.generator})


def enable_activation_checkpointing(policy) -> None:
    """Recompute blocks in the backward pass: the native LLaDA module's own switch, else the
    transformers one (non-reentrant); a model that has neither is a one-line error."""
    if set_activation_checkpointing(policy.model, True):
        return
    base = policy.base_model
    if not getattr(base, "supports_gradient_checkpointing", False):
        raise ValueError(f"optim.activation_checkpointing: {type(base).__name__} does not support it")
    base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def merge_metrics(parts: list[StepMetrics]) -> StepMetrics:
    """One step's metrics from every rank's shard: sums add, means are token-weighted."""
    total = sum(m.tokens for m in parts) or 1.0

    def mean(name: str) -> float:
        return sum(getattr(m, name) * m.tokens for m in parts) / total

    first = parts[0]
    return replace(first, loss=sum(m.loss for m in parts), kl=mean("kl"), clip_frac=mean("clip_frac"),
                   ratio_mean=mean("ratio_mean"), ratio_max=max(m.ratio_max for m in parts), entropy=mean("entropy"),
                   tokens=sum(m.tokens for m in parts))
