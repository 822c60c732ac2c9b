"""Shared fixtures: tiny models built from a config (no downloads), CPU only."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest  # noqa: E402
import torch  # noqa: E402

from dllmrl_core.models.tiny import TinySpec, write_tiny  # noqa: E402

# Tiny models gain nothing from intra-op threads, and on a 2-core machine spinning OpenMP threads
# slow everything down by orders of magnitude as soon as another process wants a core.
torch.set_num_threads(1)

SMALL = TinySpec(d_model=32, n_heads=4, n_kv_heads=2, n_layers=2, mlp_hidden_size=64)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A small LLaDA-architecture checkpoint + character tokenizer (GQA on: 4 heads, 2 kv heads)."""
    return write_tiny(tmp_path_factory.mktemp("tiny"), seed=0, spec=SMALL)


@pytest.fixture(scope="session")
def tokenizer(tiny_dir):
    from dllmrl_core.models import load_tokenizer

    return load_tokenizer(tiny_dir)


@pytest.fixture(scope="session")
def predictor(tiny_dir, tokenizer):
    from dllmrl_core.models import load_mask_predictor

    return load_mask_predictor(tiny_dir, device="cpu", tokenizer=tokenizer)
