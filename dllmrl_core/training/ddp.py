"""DistributedDataParallel over the adapter of a policy whose base is frozen (imports torch only)."""

from __future__ import annotations

import torch
from torch import nn


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.parallel.DistributedDataParallel:
    """DDP over the trainable parameters only. DDP broadcasts rank 0's module state when it wraps;
    every rank loads the same frozen base from the same checkpoint, so the frozen parameters (the
    whole base: 8 B for LLaDA-8B) are left out and only the adapter is broadcast and all-reduced."""
    frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
    nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, frozen)
    device_ids = [device.index or 0] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
