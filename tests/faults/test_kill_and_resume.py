"""Processes killed at every point of a step (os._exit inside the actor, as kill -9 would end it)
change nothing: a run whose rollout worker dies mid-rollout, whose reward actor dies
mid-verification and whose learner dies mid-learn, mid-publish and mid-checkpoint-write ends with
the uninterrupted run's adapter (sha256), each step logged once, in both staleness modes.

Learner deaths restart the group from the last checkpoint (under max_staleness 1 that checkpoint
also holds the older version the next batch samples with); rollout and reward jobs run again.
Hits count each site across the cluster (dllmrl_core/faults.py); with one actor of each kind,
one chunk per batch and a checkpoint after every step, they fall as commented.

The default run injects every kill in both modes (five faults per run); `-m slow` adds two runs with
two faults each (one kills the checkpoint write at another point: after the adapter, before the
optimizer state). The on-policy reference is the
single-process loop, which trains the Ray system's adapter bit for bit (docs/architecture.md)."""

import pytest

from dllmrl_core.drive.loop import run as loop_run
from services.launch import run as ray_run
from services.settings import SystemConfig
from tests.faults.conftest import fault_config, steps_logged

pytestmark = pytest.mark.ray
STEPS = 3
ROLLOUT = {"site": "rollout.generate", "hit": 2}  # batch 1's rollout
REWARD = {"site": "reward.verify", "hit": 2}  # batch 1's verification
LEARN = {"site": "learner.learn", "hit": 2}  # step 2: restart from checkpoint 1
PUBLISH = {"site": "learner.publish", "hit": 5}  # version 3 (after 0, 1, 1 again on the restart, 2)
WRITE_2 = {"site": "checkpoint.write", "hit": 2}  # checkpoint 2, adapter written, optimizer state not
WRITE_3 = {"site": "checkpoint.write", "hit": 3}  # checkpoint 3, after the two restarts above
EVERY = [ROLLOUT, {**REWARD, "hit": 3}, LEARN, PUBLISH, WRITE_3]
CASES = [
    pytest.param(0, EVERY, id="on-policy-every-kill"),
    pytest.param(1, EVERY, id="overlap-every-kill"),
    pytest.param(0, [ROLLOUT, WRITE_2], id="on-policy-rollout-checkpoint", marks=pytest.mark.slow),
    pytest.param(1, [REWARD, LEARN], id="overlap-reward-learn", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module")
def references(ray_session, warm_dir, tmp_path_factory):
    """One uninterrupted run per staleness mode, made when first asked for, shared by the module."""
    done: dict[int, dict] = {}

    def reference(staleness: int) -> dict:
        if staleness not in done:
            cfg = SystemConfig.parse(fault_config(warm_dir, tmp_path_factory.mktemp("reference"), staleness, STEPS))
            done[staleness] = (ray_run(cfg, name=f"t-ref{staleness}/") if staleness
                               else loop_run(cfg, on_step=lambda *_: None))
        return done[staleness]
    return reference


@pytest.mark.parametrize("staleness, schedule", CASES)
def test_killed_actors_leave_the_adapter_and_the_log_unchanged(references, plan, warm_dir, tmp_path, staleness,
                                                                schedule):
    plan.install(schedule)
    out = tmp_path / "faulty"
    summary = ray_run(SystemConfig.parse(fault_config(warm_dir, out, staleness, STEPS)), name=f"t-kill{staleness}/")
    assert plan.fired() == list(range(len(schedule)))  # every fault happened
    learner_kills = sum(rule["site"].startswith(("learner", "checkpoint")) for rule in schedule)
    assert summary["learner_restarts"] == learner_kills and summary["steps"] == STEPS
    assert summary["adapter_sha256"] == references(staleness)["adapter_sha256"]
    assert steps_logged(out) == list(range(1, STEPS + 1))
