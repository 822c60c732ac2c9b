"""Crashes cost no training step: killed rollout/reward actors' jobs run again (a dead rollout
worker's on a live one); a killed learner restarts the group from the last checkpoint, and so does
a learner placement group that is not ready in time (bounded, reported). The status endpoint
answers during the run."""

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from ray.util.placement_group import placement_group, remove_placement_group

from services.launch import run as ray_run
from services.settings import SystemConfig
from tests.services.conftest import run_config

pytestmark = pytest.mark.ray


def start(cfg: dict, name: str) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def target():
        try:
            result.update(ray_run(SystemConfig.parse(cfg), name=name))
        except Exception as err:  # surfaced by the test
            result["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


def actor(ray, name: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return ray.get_actor(name)
        except ValueError:  # not created yet
            time.sleep(0.2)
    raise TimeoutError(f"actor {name} never appeared")


def status_url(ray, name: str, timeout: float = 120) -> str:
    return ray.get(actor(ray, f"{name}status", timeout).url.remote())


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def wait_for(url: str, condition, what: str, timeout: float = 300) -> dict:
    """The first status snapshot that meets `condition`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, body = get(url + "/status")
        if code == 200 and condition(json.loads(body)):
            return json.loads(body)
        time.sleep(0.2)
    raise TimeoutError(f"{what} not reached")


def wait_for_step(url: str, step: int, timeout: float = 300) -> dict:
    return wait_for(url, lambda status: status["step"] >= step, f"step {step}", timeout)


def test_killed_rollout_worker_and_reward_actor_cost_no_step(ray_session, warm_dir, tmp_path):
    ray = ray_session
    cfg = run_config(warm_dir, tmp_path / "faults", steps=5, status={"enabled": True})
    thread, result = start(cfg, "t-fault/")
    url = status_url(ray, "t-fault/")
    status = wait_for_step(url, 1)
    assert status["total_steps"] == 5 and {w["role"] for w in status["workers"]} == {"rollout", "reward", "learner"}
    code, metrics = get(url + "/metrics")
    assert code == 200 and "dllmrl_step " in metrics and "dllmrl_weight_version" in metrics
    assert get(url + "/health") == (200, '{"ok":true,"reasons":[]}')
    post = urllib.request.Request(url + "/status", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(post, timeout=10)
    assert refused.value.code == 405
    ray.kill(ray.get_actor("t-fault/rollout-0"), no_restart=False)
    ray.kill(ray.get_actor("t-fault/reward-0"), no_restart=False)
    # each restarted actor beats before it takes the job again: /status counts the restart
    restarted = wait_for(url, lambda s: all(w["restarts"] == 1 for w in s["workers"] if w["role"] != "learner"),
                         "the restarts in /status")
    assert [w["restarts"] for w in restarted["workers"] if w["role"] == "learner"] == [0]
    thread.join(timeout=600)
    assert "error" not in result, result.get("error")
    baseline = ray_run(SystemConfig.parse(run_config(warm_dir, tmp_path / "base", steps=5)), name="t-fault-base/")
    assert result["steps"] == 5 and result["adapter_sha256"] == baseline["adapter_sha256"]


def kill_learner_at(ray, cfg: dict, name: str, step: int) -> dict:
    """Run `cfg`, kill learner rank 0 for good once `step` is reached, return the run's summary."""
    thread, result = start(cfg, name)
    wait_for_step(status_url(ray, name), step)
    ray.kill(ray.get_actor(f"{name}learner-0"), no_restart=True)
    thread.join(timeout=600)
    assert "error" not in result, result.get("error")
    return result


def test_killed_learner_restarts_the_group_from_the_checkpoint(ray_session, warm_dir, tmp_path):
    cfg = run_config(warm_dir, tmp_path / "learner", steps=8, status={"enabled": True},
                     checkpoint={"save_every": 2})
    result = kill_learner_at(ray_session, cfg, "t-lfault/", 3)
    assert result["steps"] == 8 and result["learner_restarts"] == 1
    baseline = ray_run(SystemConfig.parse(run_config(warm_dir, tmp_path / "base", steps=8)), name="t-lfault-base/")
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


def test_a_dead_rollout_workers_chunks_are_generated_by_a_live_worker(ray_session, warm_dir, tmp_path):
    ray, two = ray_session, {"num_workers": 2}
    cfg = run_config(warm_dir, tmp_path / "dead", steps=3, rollout=two)
    thread, result = start(cfg, "t-dead/")
    # gone for good (no restart to wait for) while the run starts: every batch's chunk 0 is lost
    ray.kill(actor(ray, "t-dead/rollout-0"), no_restart=True)
    thread.join(timeout=600)
    assert "error" not in result, result.get("error")
    assert result["chunks_regenerated"] >= 1 and result["placement"]["rollout"][0]["node"] is None
    baseline = ray_run(SystemConfig.parse(run_config(warm_dir, tmp_path / "base", steps=3, rollout=two)),
                       name="t-dead-base/")
    assert result["steps"] == 3 and result["adapter_sha256"] == baseline["adapter_sha256"]


def test_a_learner_placement_group_not_ready_in_time_is_retried_and_reported(ray_session, warm_dir, tmp_path):
    ray = ray_session
    blocker = placement_group([{"GPU": 4}])  # every GPU of the session's cluster
    ray.get(blocker.ready(), timeout=60)
    cfg = run_config(warm_dir, tmp_path, steps=1, status={"enabled": True},
                     learner={"num_gpus_per_worker": 1, "placement_timeout_s": 1, "max_restarts": 5,
                              "restart_backoff_s": 0.1})
    try:
        thread, result = start(cfg, "t-pgwait/")
        status = wait_for(status_url(ray, "t-pgwait/"), lambda s: s["totals"]["learner_restarts"] >= 1,
                          "a learner failure")
    finally:
        remove_placement_group(blocker)
    assert status["state"] == "recovering"
    assert "not ready within learner.placement_timeout_s = 1 s" in status["last_failure"]
    thread.join(timeout=300)
    assert "error" not in result, result.get("error")
    assert result["steps"] == 1 and result["learner_restarts"] >= 1


def test_a_learner_placement_group_that_never_fits_ends_naming_the_bound(ray_session, warm_dir, tmp_path):
    cfg = run_config(warm_dir, tmp_path, steps=1,
                     learner={"resources": {"nowhere": 1}, "placement_timeout_s": 0.5, "max_restarts": 1})
    with pytest.raises(Exception) as failed:
        ray_run(SystemConfig.parse(cfg), name="t-pgnever/")
    assert "learner group failed 2 times (learner.max_restarts = 1)" in str(failed.value)
    assert "learner.placement_timeout_s = 0.5 s" in str(failed.value)
