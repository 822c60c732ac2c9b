"""Crashes cost no training step: killed rollout/reward actors rerun their job; a killed learner
restarts the group from the last checkpoint. The status endpoint answers during the run."""

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from dllmrl_core.config import RunConfig
from services.launch import run as ray_run
from tests.services.conftest import run_config

pytestmark = pytest.mark.ray


def start(cfg: dict, name: str) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def target():
        try:
            result.update(ray_run(RunConfig.parse(cfg), name=name))
        except Exception as err:  # surfaced by the test
            result["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


def status_url(ray, name: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return ray.get(ray.get_actor(f"{name}status").url.remote())
        except ValueError:  # not created yet
            time.sleep(0.2)
    raise TimeoutError("status actor never appeared")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def wait_for_step(url: str, step: int, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, body = get(url + "/status")
        if code == 200 and json.loads(body)["step"] >= step:
            return json.loads(body)
        time.sleep(0.2)
    raise TimeoutError(f"step {step} not reached")


def test_killed_rollout_worker_and_reward_actor_cost_no_step(ray_session, warm_dir, tmp_path):
    ray = ray_session
    cfg = run_config(warm_dir, tmp_path / "faults", steps=5, status={"enabled": True})
    thread, result = start(cfg, "t-fault/")
    url = status_url(ray, "t-fault/")
    status = wait_for_step(url, 1)
    assert status["total_steps"] == 5 and {w["role"] for w in status["workers"]} == {"rollout", "reward", "learner"}
    code, metrics = get(url + "/metrics")
    assert code == 200 and "dllmrl_step " in metrics and "dllmrl_weight_version" in metrics
    assert get(url + "/health") == (200, '{"ok":true}')
    post = urllib.request.Request(url + "/status", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(post, timeout=10)
    assert refused.value.code == 405
    ray.kill(ray.get_actor("t-fault/rollout-0"), no_restart=False)
    ray.kill(ray.get_actor("t-fault/reward-0"), no_restart=False)
    thread.join(timeout=600)
    assert "error" not in result, result.get("error")
    baseline = ray_run(RunConfig.parse(run_config(warm_dir, tmp_path / "base", steps=5)), name="t-fault-base/")
    assert result["steps"] == 5 and result["adapter_sha256"] == baseline["adapter_sha256"]


def test_killed_learner_restarts_the_group_from_the_checkpoint(ray_session, warm_dir, tmp_path):
    ray = ray_session
    cfg = run_config(warm_dir, tmp_path / "learner", steps=8, status={"enabled": True},
                     checkpoint={"save_every": 2})
    thread, result = start(cfg, "t-lfault/")
    wait_for_step(status_url(ray, "t-lfault/"), 3)
    ray.kill(ray.get_actor("t-lfault/learner-0"), no_restart=True)
    thread.join(timeout=600)
    assert "error" not in result, result.get("error")
    assert result["steps"] == 8 and result["learner_restarts"] == 1
    baseline = ray_run(RunConfig.parse(run_config(warm_dir, tmp_path / "base", steps=8)), name="t-lfault-base/")
    assert result["adapter_sha256"] == baseline["adapter_sha256"]  # the replay from step 2 or 4 is exact


def test_learner_failures_beyond_the_limit_end_with_a_clear_error(ray_session, warm_dir, tmp_path):
    ray = ray_session
    cfg = run_config(warm_dir, tmp_path / "limit", steps=50, status={"enabled": True},
                     learner={"max_restarts": 0})
    thread, result = start(cfg, "t-limit/")
    wait_for_step(status_url(ray, "t-limit/"), 1)
    ray.kill(ray.get_actor("t-limit/learner-0"), no_restart=True)
    thread.join(timeout=600)
    assert "learner group failed 1 times (learner.max_restarts = 0)" in str(result.get("error"))
