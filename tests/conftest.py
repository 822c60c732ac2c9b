"""Shared fixtures: tiny models built from a config (no downloads), CPU only."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest  # noqa: E402

from dllmrl_core.drive.runtime import configure_process  # noqa: E402
from dllmrl_core.models.tiny import TinySpec, write_tiny  # noqa: E402

# Tiny models gain nothing from intra-op threads, and on a 2-core machine spinning OpenMP threads
# slow everything down by orders of magnitude as soon as another process wants a core.
configure_process(1)

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


# A small model briefly warm-started on an easy two-number Countdown: it writes well-formed
# answers and gets some of them right, so RL rewards vary within groups.
WARM_TASK = {"name": "countdown", "prompt_style": "compact", "eval_protocol": "fixed",
             "train_source": "generate:2000", "test_source": "generate:64",
             "countdown": {"count": 2, "min_number": 1, "max_number": 9, "max_target": 18, "operators": "+-"}}


@pytest.fixture(scope="session")
def fault_dir(tmp_path_factory):
    """The fault plan directory every process of the session's Ray cluster reads (dllmrl_core/faults.py);
    without a plan.json in it nothing is injected."""
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="session")
def ray_session(fault_dir):
    """One local Ray cluster per test session (4 logical GPUs for placement tests), shared by
    tests/services and tests/faults."""
    import ray

    from dllmrl_core.faults import ENV

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    env = {"OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0", ENV: str(fault_dir)}
    ray.init(num_cpus=8, num_gpus=4, object_store_memory=300 * 1024**2, include_dashboard=False,
             runtime_env={"env_vars": env})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def warm_dir(tiny_dir, tmp_path_factory):
    from dllmrl_core.training.warm_start import SFTRunConfig, run_sft

    out = tmp_path_factory.mktemp("warm")
    cfg = SFTRunConfig.parse({"model": {"path": str(tiny_dir), "device": "cpu"}, "task": WARM_TASK,
                              "sft": {"steps": 450, "batch_size": 32, "lr": 3e-3, "warmup_steps": 20,
                                      "answer_length": 24, "out": str(out)}})
    run_sft(cfg)
    return out
