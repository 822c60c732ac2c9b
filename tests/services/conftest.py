"""Tiny run configs for the Ray tests (the session's Ray cluster, `ray_session`, is in tests/conftest.py)."""

from tests.conftest import WARM_TASK


def run_config(model_dir, out, *, steps=3, **sections) -> dict:
    """A tiny run: 4 prompts x G=4, gen 24, on the warm-started small model; sections override
    (a dict updates its section, anything else replaces the key: placement="colocated")."""
    cfg = {"model": {"path": str(model_dir), "device": "cpu", "lora": {"r": 4, "alpha": 8, "dropout": 0.0}},
           "task": WARM_TASK,
           "sampler": {"gen_length": 24, "steps": 12, "block_length": 24, "temperature": 1.0},
           "algorithm": {"name": "diffu_grpo", "diffu_grpo": {"num_iterations": 1, "beta": 0.04}},
           "optim": {"lr": 1e-3, "max_grad_norm": 1.0, "schedule": "constant"},
           "train": {"steps": steps, "prompts_per_step": 4, "group_size": 4, "seed": 0},
           "reward": {"processes_per_actor": 1},
           "checkpoint": {"dir": str(out)},
           "status": {"enabled": False}}
    for section, values in sections.items():
        cfg[section] = {**cfg.get(section, {}), **values} if isinstance(values, dict) else values
    return cfg
