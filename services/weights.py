"""Versioned adapters through the object store.

Learner rank 0 hands each adapter it publishes to this actor, which puts it into the object
store itself, so the object is owned here and outlives a learner crash (Ray 2.56 removed
`ray.put(_owner=...)`). Rollout workers fetch the exact version their job names, as numpy arrays
read zero-copy from shared memory. Only the newest `keep` versions are held.
"""

from __future__ import annotations

import numpy as np
import ray
import torch

from dllmrl_core.types import tensor_views


def to_numpy(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Adapter tensors as numpy arrays: the object store serves them zero-copy on a node."""
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def to_torch(state: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Tensors viewing the fetched arrays, no copy: `load_adapter_state` copies from them once."""
    return tensor_views(state)


@ray.remote(num_cpus=0)
class WeightStore:
    def __init__(self, keep: int):
        self.keep = keep
        self.versions: dict[int, ray.ObjectRef] = {}

    def publish(self, version: int, state: dict[str, np.ndarray]) -> None:
        self.versions[version] = ray.put(state)
        for old in sorted(self.versions)[:-self.keep]:
            del self.versions[old]

    def get(self, version: int) -> list[ray.ObjectRef]:
        if version not in self.versions:
            raise KeyError(f"weight version {version} is not held (held: {sorted(self.versions)})")
        return [self.versions[version]]

    def clear(self) -> None:
        self.versions.clear()

    def held(self) -> list[int]:
        return sorted(self.versions)


def publish(store, version: int, state: dict[str, torch.Tensor]) -> None:
    """Hand `state` to the store, which keeps it in the object store under `version`."""
    ray.get(store.publish.remote(version, to_numpy(state)))


def fetch(store, version: int) -> dict[str, torch.Tensor]:
    [ref] = ray.get(store.get.remote(version))
    return to_torch(ray.get(ref))
