"""Checkpoint state loads without running pickled code, and the RNG state survives the round trip."""

import pickle
import random

import numpy as np
import pytest
import torch

from dllmrl_core.training.checkpoint import capture_rng, load_tensors, restore_rng


def test_rng_state_round_trips_through_a_weights_only_load(tmp_path):
    g = torch.Generator().manual_seed(3)
    torch.save(capture_rng({"rollout": g}), tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=g))
    np.random.rand(5), random.random(), torch.rand(7, generator=g)  # move every RNG on
    restore_rng(load_tensors(tmp_path / "rng.pt"), {"rollout": g})
    got = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=g))
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert got[2] == expected[2] and torch.equal(got[3], expected[3])


class Planted:
    ran = False

    def __reduce__(self):
        return (setattr, (Planted, "ran", True))


def test_a_planted_pickle_is_refused_and_never_runs(tmp_path):
    with open(tmp_path / "rng-rank0.pt", "wb") as f:
        pickle.dump({"torch": Planted()}, f)
    with pytest.raises(ValueError, match="refusing to unpickle"):
        load_tensors(tmp_path / "rng-rank0.pt")
    assert Planted.ran is False
