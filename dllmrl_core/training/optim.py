"""AdamW over the trainable (adapter) parameters and a learning-rate schedule."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field

from dllmrl_core.contract.configbase import ConfigModel, Fraction


class OptimConfig(ConfigModel):
    """The learner's step. Defaults: d1's recipe (AdamW β (0.9, 0.99), wd 0.1, lr 3e-6, constant with
    warmup, clip 0.2); memory knobs (micro-batches, activation checkpointing) change no result."""

    lr: float = Field(3e-6, gt=0, le=1, description="learning rate")
    betas: tuple[Fraction, Fraction] = Field((0.9, 0.99), description="AdamW betas, each in [0, 1)")
    weight_decay: float = Field(0.1, ge=0, le=1, description="AdamW weight decay")
    max_grad_norm: float = Field(0.2, gt=0, description="gradient-norm clip")
    schedule: Literal["constant", "constant_with_warmup", "cosine", "linear"] = Field(
        "constant_with_warmup", description="learning-rate schedule over train.steps (transformers get_scheduler)")
    warmup_steps: int = Field(0, ge=0, description="linear warmup steps")
    micro_batch_rows: Annotated[int, Field(ge=1)] | Literal["auto"] | None = Field(
        None, description="rows per forward/backward chunk (None = all; auto = the largest the memory plan "
                                "allows on the learner's GPU)")
    activation_checkpointing: bool = Field(
        False, description="recompute each block in the backward pass instead of keeping its activations")


def build_optimizer(params, cfg: OptimConfig, total_steps: int):
    """(optimizer, scheduler) for the given parameters."""
    from transformers import get_scheduler

    trainable = [p for p in params if p.requires_grad]
    if not trainable:
        raise ValueError("no trainable parameters (is the LoRA adapter attached?)")
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    sched = get_scheduler(cfg.schedule, opt, num_warmup_steps=cfg.warmup_steps, num_training_steps=max(total_steps, 1))
    return opt, sched
