"""Read the deploy manifests into what Ray will see: per-node resources of each node pool, and
per-actor demands of a run config. Shared by the deploy tests."""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path

import yaml

from services.settings import SystemConfig, load_system_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERAY = DEPLOY / "kuberay"
RAYCLUSTER, RAYJOB = KUBERAY / "raycluster.yaml", KUBERAY / "rayjob.yaml"
VM_CLUSTER, RUNTIME_ENV, DOCKERFILE = DEPLOY / "ray-cluster.yaml", DEPLOY / "runtime_env.yaml", DEPLOY / "Dockerfile"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def pins() -> dict[str, str]:
    """name -> exact version, from constraints.txt."""
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return dict(line.split("==", 1) for line in lines if "==" in line and not line.startswith("#"))


def package_version() -> str:
    return re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)


def dockerfile_workdir() -> str:
    return re.findall(r"^WORKDIR\s+(\S+)", DOCKERFILE.read_text(), re.M)[-1]


def entrypoint_config() -> Path:
    """The run config the RayJob's entrypoint launches (relative to the image's working dir)."""
    argv = shlex.split(load(RAYJOB)["spec"]["entrypoint"])
    assert argv[:3] == ["python", "-m", "services.launch"], f"unexpected entrypoint {argv}"
    return ROOT / argv[3]


# --- what a node pool advertises ---------------------------------------------------------------
def cpu_quantity(value) -> float:
    """Kubernetes CPU quantity: 8, "8", "500m"."""
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def custom_resources(params: dict) -> dict[str, float]:
    """rayStartParams.resources is a JSON object inside a quoted string: '"{\\"name\\": 1}"'."""
    raw = params.get("resources")
    return json.loads(json.loads(raw)) if raw else {}


def kuberay_group(group: dict) -> dict[str, float]:
    """Ray resources of one pod: rayStartParams override the container limits (KubeRay's rule)."""
    params = group.get("rayStartParams", {})
    limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
    cpu = cpu_quantity(params.get("num-cpus", limits.get("cpu", 0)))
    gpu = float(params.get("num-gpus", limits.get("nvidia.com/gpu", 0)))
    return {"CPU": cpu, "GPU": gpu, **custom_resources(params)}


def kuberay_pools(spec: dict) -> dict[str, tuple[dict, int]]:
    """group name -> (resources per pod, max pods); the head is one pod."""
    pools = {"head": (kuberay_group(spec["headGroupSpec"]), 1)}
    for group in spec["workerGroupSpecs"]:
        pools[group["groupName"]] = (kuberay_group(group), group["maxReplicas"])
    return pools


def vm_pools(cluster: dict) -> dict[str, tuple[dict, int]]:
    """node type -> (resources per node, max nodes) of a Ray cluster launcher config; the head
    node type is listed as "head"."""
    head = cluster["head_node_type"]
    return {"head" if name == head else name: ({"GPU": 0.0, **node["resources"]},
                                                1 if name == head else node["max_workers"])
            for name, node in cluster["available_node_types"].items()}


# --- what a run config asks for ----------------------------------------------------------------
def demands(cfg: SystemConfig) -> dict[str, tuple[int, dict[str, float]]]:
    """actor kind -> (number of actors, Ray resources of one actor), as services/ requests them."""
    r, w, lr = cfg.rollout, cfg.reward, cfg.learner
    return {
        "rollout": (r.num_workers, {"CPU": r.num_cpus_per_worker, "GPU": r.num_gpus_per_worker, **r.resources}),
        "learner": (lr.num_workers, {"CPU": lr.num_cpus_per_worker, "GPU": lr.num_gpus_per_worker, **lr.resources}),
        "reward": (w.num_actors, {"CPU": w.num_cpus_per_actor, **w.resources}),
    }


def per_node(node: dict[str, float], request: dict[str, float]) -> int:
    """How many actors with `request` fit on one node with `node` resources."""
    return min(math.floor(node.get(k, 0.0) / v + 1e-9) for k, v in request.items() if v > 0)


def serving(pools: dict[str, tuple[dict, int]], request: dict[str, float]) -> list[str]:
    """The pools that offer every custom resource of `request` (the pools an actor may land in)."""
    custom = [k for k in request if k not in ("CPU", "GPU")]
    return [name for name, (node, _) in pools.items() if all(node.get(k, 0) > 0 for k in custom)]


def cluster_config() -> SystemConfig:
    return load_system_config(entrypoint_config())
