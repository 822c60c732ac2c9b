"""Fault plans for the session's Ray cluster (dllmrl_core/faults.py) and the runs they disturb."""

import json

import pytest

from tests.services.conftest import run_config


class Plan:
    """The rules a test installs in the cluster's fault directory, and which of them fired."""

    def __init__(self, directory):
        self.dir = directory

    def install(self, rules: list[dict]) -> None:
        (self.dir / "plan.json").write_text(json.dumps(rules))

    def fired(self) -> list[int]:
        return sorted(int(p.name.removeprefix("fired-")) for p in self.dir.glob("fired-*"))

    def clear(self) -> None:
        for path in self.dir.iterdir():
            path.unlink()


@pytest.fixture
def plan(fault_dir):
    """A fault plan for one test; removed afterwards, so no other test is disturbed."""
    plan = Plan(fault_dir)
    plan.clear()
    yield plan
    plan.clear()


def fault_config(warm_dir, out, staleness: int, steps: int) -> dict:
    """A tiny Ray run that checkpoints after every step and restarts its learners without waiting."""
    return run_config(warm_dir, out, steps=steps, train={"max_staleness": staleness},
                      checkpoint={"save_every": 1, "keep": 2}, learner={"max_restarts": 5, "restart_backoff_s": 0})


def steps_logged(directory) -> list[int]:
    """The optimizer steps in metrics.jsonl, in file order (evaluation records left out)."""
    records = [json.loads(line) for line in (directory / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in records if "reward/mean" in r]
