"""A tiny run on a simulated multi-node Ray cluster; prints where every actor ran.

    python -m tests.deploy.multinode SPEC.json

SPEC: {"pools": {kind: custom resources a node of that pool advertises},
       "requests": {kind: custom resources each actor of that kind asks for},
       "model": warm-started model dir, "out": checkpoint dir}
kinds: rollout, learner, reward. Starts a head with no custom resources and no CPUs (as in
deploy/kuberay/raycluster.yaml) and one 1-CPU node per pool, runs 2 training steps through
services.launch.run, and prints one JSON line: {"nodes": {kind or "head": node id},
"placement": the run summary's placement, "reward": [node id of each RewardActor],
"pinned": {class name: {"node": node id, "resources": what it required}} for the Controller,
WeightStore and StatusActor}.

Run in its own process (it owns a Ray cluster, so it must not share a process with the test
session's ray.init()), with RAY_TMPDIR set to a private directory so its address file and sockets
stay away from any other Ray instance on the machine.
"""

from __future__ import annotations

import json
import os
import socket
import sys

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from services.launch import run  # noqa: E402
from services.settings import SystemConfig  # noqa: E402
from tests.services.conftest import run_config  # noqa: E402

STORE = 100 * 1024**2
ENV = {"env_vars": {"OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1"}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(pools: dict[str, dict]) -> tuple[Cluster, dict[str, str]]:
    """A head without CPUs or custom resources, plus one 1-CPU node per pool. The head's dashboard
    (for the state API) and agent get free ports: another Ray on this machine may hold the defaults."""
    head = {"num_cpus": 0, "object_store_memory": STORE, "include_dashboard": True,
            "dashboard_port": free_port(), "dashboard_agent_listen_port": free_port()}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    nodes = {"head": cluster.head_node.node_id}
    for kind, resources in pools.items():
        nodes[kind] = cluster.add_node(num_cpus=1, resources=resources, object_store_memory=STORE).node_id
    cluster.wait_for_nodes()
    return cluster, nodes


def reward_nodes(address: str) -> list[str]:
    from ray.util.state import list_actors

    return [a.node_id for a in list_actors(address=address, filters=[("class_name", "=", "RewardActor")])]


def pinned(address: str) -> dict[str, dict]:
    """Node and required resources of the actors that must live on the head."""
    from ray.util.state import list_actors

    out = {}
    for name in ("Controller", "WeightStore", "StatusActor"):
        [actor] = list_actors(address=address, filters=[("class_name", "=", name)], detail=True)
        out[name] = {"node": actor.node_id, "resources": actor.required_resources}
    return out


def main(spec_path: str) -> int:
    with open(spec_path) as f:
        spec = json.load(f)
    cluster, nodes = start(spec["pools"])
    try:
        ray.init(address=cluster.address, runtime_env=ENV)
        requests = {kind: {"resources": res} for kind, res in spec["requests"].items()}
        cfg = SystemConfig.parse(run_config(spec["model"], spec["out"], steps=2, status={"enabled": True}, **requests))
        summary = run(cfg, name="t-multinode/")
        print(json.dumps({"nodes": nodes, "placement": summary["placement"], "reward": reward_nodes(cluster.address),
                          "pinned": pinned(cluster.address)}), flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
