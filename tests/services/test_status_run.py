"""The status server during a real Ray run. What a run shows (busy flags of every actor kind, moves
within a batch, rates) is checked on the parity run of test_system.py, which costs nothing extra;
here, slow, a resumed run names its checkpoint and step in /status."""

import json
import socket
import threading
import time
import urllib.request

import pytest

from services.launch import run as ray_run
from services.settings import SystemConfig
from tests.services.conftest import run_config

pytestmark = pytest.mark.ray


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(url: str, stop: threading.Event, seen: list) -> None:
    """Every /status snapshot until `stop`, as fast as the server answers (bounded: stops with the run)."""
    while not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                seen.append(json.loads(r.read()))
        except OSError:  # not started yet, or already shut down
            pass
        time.sleep(0.05)


def status_config(port: int) -> dict:
    return {"enabled": True, "port": port, "heartbeat_s": 0.5}


def assert_it_moved(seen: list[dict], steps: int, completions: int) -> None:
    """What a run's /status showed: it changed inside a batch, every kind of actor was busy or did
    jobs, health was ok while training, rates appeared, completions were counted."""
    training = [s for s in seen if s["state"] == "training"]
    # generated, not yet learned: the snapshot changed inside the batch
    assert any(s["chunks_done"] == s["chunks_total"] == 1 and s["step"] == s["batch"] for s in training)
    assert {w["role"] for s in seen for w in s["workers"] if w["busy"]} >= {"rollout", "learner"}
    jobs = {w["role"]: w["jobs"] for w in seen[-1]["workers"]}
    assert min(jobs["rollout"], jobs["reward"], jobs["learner"]) >= steps
    assert any(s["health"]["ok"] for s in training) and any(s["steps_per_s"] for s in seen)
    assert max(s["totals"]["completions"] for s in seen) == completions


def run_polled(cfg: dict, port: int, name: str) -> tuple[dict, list[dict]]:
    """Run `cfg` through Ray while polling its /status; returns the summary and every snapshot."""
    stop, seen = threading.Event(), []
    poller = threading.Thread(target=poll, args=(f"http://127.0.0.1:{port}/status", stop, seen), daemon=True)
    poller.start()
    try:
        summary = ray_run(SystemConfig.parse(cfg), name=name)
    finally:
        stop.set()
        poller.join(timeout=10)
    return summary, seen


@pytest.mark.slow
def test_a_resumed_run_says_from_where_in_its_status(ray_session, warm_dir, tmp_path):
    ray_run(SystemConfig.parse(run_config(warm_dir, tmp_path, steps=1, checkpoint={"save_every": 1})),
            name="t-status-a/")
    port = free_port()
    cfg = run_config(warm_dir, tmp_path, steps=2, checkpoint={"save_every": 1, "resume": "latest"},
                     status=status_config(port))
    summary, seen = run_polled(cfg, port, "t-status-b/")
    training = [s for s in seen if s["state"] == "training"]
    assert summary["steps"] == 2 and training
    assert all(s["resumed_step"] == 1 and s["resumed_from"] == str(tmp_path / "step-00000001") for s in training)
