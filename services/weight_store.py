"""Versioned adapters through the object store.

Learner rank 0 hands each adapter it publishes to this actor, which puts it into the object
store itself, so the object is owned here and outlives a learner crash (Ray 2.56 removed
`ray.put(_owner=...)`). Rollout workers fetch the exact version their job names, as arrays read
zero-copy from shared memory. The store holds the newest `keep` versions: the controller keeps
those a rollout can still ask for (max_staleness + 1: the versions of in-flight batches, and the
newest).

An adapter travels as an `AdapterWire` in its own dtype. numpy has no bfloat16, so a bf16 tensor
travels as an int16 view of its bytes and is viewed back as bf16 on arrival; every other dtype
travels as the numpy array of the same memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import ray
import torch

from dllmrl_core.contract.types import tensor_views

_BITS = {torch.bfloat16: torch.int16}  # dtypes numpy lacks -> a numpy dtype of the same size


@dataclass
class AdapterWire:
    """Adapter tensors as numpy arrays (pickled out of band: the object store serves them zero-copy)
    and the torch dtype each one is viewed back as."""

    arrays: dict[str, np.ndarray]
    dtypes: dict[str, torch.dtype]

    @classmethod
    def pack(cls, state: dict[str, torch.Tensor]) -> AdapterWire:
        """Views of `state`'s (CPU) memory, no copy."""
        arrays = {k: v.detach().view(_BITS.get(v.dtype, v.dtype)).numpy() for k, v in state.items()}
        return cls(arrays, {k: v.dtype for k, v in state.items()})

    def unpack(self) -> dict[str, torch.Tensor]:
        """Tensors viewing the arrays, no copy: served by the object store they are read-only shared
        memory, so read them or copy from them (`load_adapter_state` copies once)."""
        return {k: v.view(self.dtypes[k]) for k, v in tensor_views(self.arrays).items()}


@ray.remote(num_cpus=0)
class WeightStore:
    def __init__(self, keep: int):
        self.keep = keep
        self.versions: dict[int, ray.ObjectRef] = {}

    def publish(self, version: int, wire: AdapterWire) -> None:
        self.versions[version] = ray.put(wire)
        for old in sorted(self.versions)[:-self.keep]:
            del self.versions[old]

    def get(self, version: int) -> list[ray.ObjectRef]:
        if version not in self.versions:
            raise KeyError(f"weight version {version} is not held (held: {sorted(self.versions)})")
        return [self.versions[version]]

    def clear(self) -> None:
        self.versions.clear()


def publish(store, version: int, state: dict[str, torch.Tensor]) -> None:
    """Hand `state` (CPU tensors) to the store, which keeps it in the object store under `version`."""
    ray.get(store.publish.remote(version, AdapterWire.pack(state)))


def fetch(store, version: int) -> dict[str, torch.Tensor]:
    """The adapter published as `version`, in the dtypes it was published in (views of the store's memory)."""
    [ref] = ray.get(store.get.remote(version))
    return ray.get(ref).unpack()
