"""`ray job submit` against a head started on loopback by this test (own temp dir, token auth)."""

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.services.conftest import run_config

pytestmark = pytest.mark.ray
RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def head(tmp_path):
    """A Ray head with token authentication, its own temp dir and ports; stopped afterwards."""
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(16), "OMP_NUM_THREADS": "1"}
    temp = Path("/tmp") / f"dllmrl-head-{secrets.token_hex(4)}"  # unix socket paths must stay short
    # every service on its own free port: another Ray instance (the session's) may hold the defaults
    ports = [f"--{name}={free_port()}" for name in ("ray-client-server-port", "dashboard-agent-listen-port",
                                                    "dashboard-agent-grpc-port", "runtime-env-agent-port",
                                                    "metrics-export-port", "node-manager-port",
                                                    "object-manager-port")]
    proc = subprocess.Popen([RAY, "start", "--head", "--port=0", "--dashboard-host", "127.0.0.1",
                             "--dashboard-port", str(port), "--temp-dir", str(temp), "--num-cpus", "4", *ports,
                             "--block"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    address = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while subprocess.run([RAY, "job", "list", "--address", address], env=env, capture_output=True).returncode:
        assert time.monotonic() < deadline and proc.poll() is None, "the Ray head did not come up"
        time.sleep(1)
    yield address, env
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # a graceful stop takes ~30 s: the head's processes are this test's alone
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)


def test_ray_job_submit_runs_a_two_step_job_to_success(head, warm_dir, tmp_path):
    address, env = head
    cfg = tmp_path / "job.yaml"
    cfg.write_text(yaml.safe_dump(run_config(warm_dir, tmp_path / "out", steps=2)))
    deadline = time.monotonic() + 120
    while True:  # the head's job agent can lag behind its API server for a few seconds
        job = subprocess.run([RAY, "job", "submit", "--address", address, "--no-wait", "--",
                              sys.executable, "-m", "services.launch", str(cfg)], env=env, capture_output=True, text=True)
        if job.returncode == 0 or "No available agent" not in job.stderr or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert job.returncode == 0, job.stderr
    job_id = re.search(r"raysubmit_[A-Za-z0-9]+", job.stdout + job.stderr).group()
    deadline, state = time.monotonic() + 300, ""
    while time.monotonic() < deadline and state not in ("SUCCEEDED", "FAILED", "STOPPED"):
        time.sleep(2)
        status = subprocess.run([RAY, "job", "status", "--address", address, job_id], env=env, capture_output=True,
                                text=True)
        found = re.search(r"\b(succeeded|failed|stopped|running|pending)\b", status.stdout + status.stderr, re.I)
        state = found.group(1).upper() if found else ""
    logs = subprocess.run([RAY, "job", "logs", "--address", address, job_id], env=env, capture_output=True, text=True)
    assert state == "SUCCEEDED", logs.stdout[-3000:]
    summary = json.loads(logs.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2 and (tmp_path / "out" / "final" / "adapter").is_dir()
