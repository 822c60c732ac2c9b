"""The resource-name contract on a simulated multi-node cluster: nodes advertise what the KubeRay
worker groups advertise, actors ask for what the cluster config asks for, and every actor lands in
its own pool; the controller, weight store and status actor are pinned to the head. Runs in a subprocess (tests/deploy/multinode.py) with its own Ray cluster, so it
never meets the session's ray.init() (tests/services/conftest.py)."""

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.manifests import RAYCLUSTER, ROOT, cluster_config, demands, kuberay_pools, load, serving

pytestmark = pytest.mark.ray
CUSTOM = lambda resources: {k: v for k, v in resources.items() if k not in ("CPU", "GPU")}  # noqa: E731


def contract() -> dict:
    """{"pools": kind -> custom resources its KubeRay group advertises, "requests": kind -> the config's}."""
    pools, spec = kuberay_pools(load(RAYCLUSTER)["spec"]), {"pools": {}, "requests": {}}
    for kind, (_, request) in demands(cluster_config()).items():
        [group] = serving(pools, request)
        spec["pools"][kind], spec["requests"][kind] = CUSTOM(pools[group][0]), CUSTOM(request)
    return spec


@pytest.fixture()
def ray_tmpdir():
    """A private, short RAY_TMPDIR (unix socket paths must stay under 108 characters)."""
    path = Path("/tmp") / f"dllmrl-mn-{secrets.token_hex(4)}"
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_multinode(spec: dict, tmp_path: Path, ray_tmpdir: Path) -> dict:
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmpdir), "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0",
           "HF_HUB_OFFLINE": "1"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, "-m", "tests.deploy.multinode", str(tmp_path / "spec.json")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [line] = [x for x in proc.stdout.splitlines() if x.startswith('{"nodes"')]
    return json.loads(line)


def test_actors_land_on_the_nodes_of_their_pool(warm_dir, tmp_path, ray_tmpdir):
    spec = {**contract(), "model": str(warm_dir), "out": str(tmp_path / "out")}
    result = run_multinode(spec, tmp_path, ray_tmpdir)
    nodes, placement = result["nodes"], result["placement"]
    assert len(set(nodes.values())) == 4, f"expected a head and three pool nodes, got {nodes}"
    assert [p["node"] for p in placement["rollout"]] == [nodes["rollout"]], f"rollout placed {placement['rollout']}"
    assert [p["node"] for p in placement["learner"]] == [nodes["learner"]], f"learner placed {placement['learner']}"
    assert result["reward"] == [nodes["reward"]], f"reward actors on {result['reward']}"
    assert (tmp_path / "out" / "final" / "adapter").is_dir(), "the two-step run wrote no final adapter"
    for name, actor in result["pinned"].items():
        assert "node:__internal_head__" in actor["resources"], f"{name} is not pinned to the head: {actor}"
        assert actor["node"] == nodes["head"], f"{name} ran on {actor['node']}, not the head {nodes['head']}"
