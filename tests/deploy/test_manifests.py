"""The deploy manifests parse, agree with each other and with constraints.txt, and the cluster run
config's actors fit the node pools the manifests advertise (KubeRay and the VM cluster launcher)."""

import re
from pathlib import Path

import pytest
import yaml

from services.settings import load_system_config
from tests.deploy.manifests import (DEPLOY, DOCKERFILE, RAYCLUSTER, RAYJOB, ROOT, RUNTIME_ENV, VM_CLUSTER,
                                    cluster_config, demands, dockerfile_workdir, entrypoint_config,
                                    kuberay_pools, load, package_version, per_node, pins, serving, vm_pools)

MANIFESTS = sorted(DEPLOY.rglob("*.yaml"))
POOLS = {"kuberay": lambda: kuberay_pools(load(RAYCLUSTER)["spec"]), "vm": lambda: vm_pools(load(VM_CLUSTER))}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_manifest_is_a_yaml_mapping(path):
    assert isinstance(yaml.safe_load(path.read_text()), dict), f"{path.name} is not a YAML mapping"


def test_the_deploy_files_exist():
    for path in (RAYCLUSTER, RAYJOB, VM_CLUSTER, RUNTIME_ENV, DOCKERFILE):
        assert path.is_file(), f"missing {path.relative_to(ROOT)}"


def test_dockerfile_pins_ray_and_the_torch_of_constraints():
    text, pin = DOCKERFILE.read_text(), pins()
    base = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert base and all(b.startswith(f"rayproject/ray:{pin['ray']}-") for b in base), f"FROM {base} != ray {pin['ray']}"
    assert f"torch=={pin['torch']}" in text, f"Dockerfile does not install torch=={pin['torch']}"
    cuda = re.search(r"-(cu\d+)$", base[-1]).group(1)
    assert f"download.pytorch.org/whl/{cuda}" in text, f"torch is not the {cuda} build of the base image"
    assert "-c /tmp/constraints-gpu.txt" in text and "grep -v '^torch=='" in text, "rest not pinned by constraints"


def test_vm_setup_installs_the_pinned_torch_and_constraints():
    setup, pin = " ".join(load(VM_CLUSTER)["setup_commands"]), pins()
    assert f"torch=={pin['torch']}" in setup, f"setup_commands do not install torch=={pin['torch']}"
    assert "grep -v '^torch==' ~/dllmrl/constraints.txt" in setup and "-c /tmp/constraints-gpu.txt" in setup, \
        "setup_commands do not pin the rest by constraints.txt"


def test_kuberay_manifests_agree_on_kind_version_image_and_spec():
    cluster, job, pin = load(RAYCLUSTER), load(RAYJOB), pins()
    assert (cluster["apiVersion"], cluster["kind"], job["apiVersion"], job["kind"]) == (
        "ray.io/v1", "RayCluster", "ray.io/v1", "RayJob")
    assert job["spec"]["rayClusterSpec"] == cluster["spec"], "rayjob.yaml's cluster spec drifted from raycluster.yaml"
    assert cluster["spec"]["rayVersion"] == pin["ray"], "rayVersion differs from the ray pin"
    version = package_version()
    groups = [cluster["spec"]["headGroupSpec"], *cluster["spec"]["workerGroupSpecs"]]
    containers = [c for g in groups for c in g["template"]["spec"]["containers"]]
    assert {c["image"] for c in containers} == {f"dllmrl:{version}"}, "every pod runs the image of deploy/Dockerfile"
    assert {c["workingDir"] for c in containers} == {dockerfile_workdir()}, "workingDir != the image's WORKDIR"


def test_rayjob_entrypoint_names_a_config_that_validates():
    path = entrypoint_config()
    assert path.is_file(), f"entrypoint config {path} does not exist"
    cfg = load_system_config(path)
    assert cfg.rollout.num_gpus_per_worker == cfg.learner.num_gpus_per_worker == 1
    assert cfg.checkpoint.resume == "latest", "a retried RayJob must resume from its checkpoints"


def flat(cfg: dict) -> dict[tuple[str, str], object]:
    """(section, key) -> value of a dumped config ("" as the key of a section that is not a mapping)."""
    return {(section, key): value for section, values in cfg.items()
            for key, value in (values.items() if isinstance(values, dict) else [("", values)])}


def test_cluster_config_is_the_generated_recipe_plus_deploy_fields():
    cfg = cluster_config().model_dump()
    task, method = entrypoint_config().stem.split("_", 1)[1].split("_", 1)
    recipe = load_system_config(ROOT / "configs" / "llada8b" / f"{method}_{task}.yaml").model_dump()
    deploy_only = {("model", "path"), ("task", "train_source"), ("task", "test_source"), ("checkpoint", "dir"),
                   ("rollout", "resources"), ("learner", "resources"), ("reward", "resources"),
                   # the recipe runs colocated on one 8-GPU node; the cluster places it disaggregated
                   # over its rollout and learner node pools
                   ("placement", ""), ("rollout", "num_workers"), ("rollout", "num_gpus_per_worker"),
                   ("rollout", "num_cpus_per_worker"), ("learner", "num_workers")}
    ours, theirs = flat(cfg), flat(recipe)
    differ = sorted(k for k in theirs if k not in deploy_only and ours[k] != theirs[k])
    assert not differ, f"differs from configs/llada8b/{method}_{task}.yaml: {differ}"


def shared_mounts(group: dict) -> list[str]:
    """Mount paths of a pod that are backed by a PersistentVolumeClaim (shared storage)."""
    spec = group["template"]["spec"]
    claims = {v["name"] for v in spec.get("volumes", []) if "persistentVolumeClaim" in v}
    return [m["mountPath"] for m in spec["containers"][0].get("volumeMounts", []) if m["name"] in claims]


def test_config_paths_are_on_storage_every_pod_shares():
    cfg, spec = cluster_config(), load(RAYCLUSTER)["spec"]
    paths = [cfg.checkpoint.dir, cfg.model.path, cfg.task.train_source, cfg.task.test_source]
    for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        mounts = shared_mounts(group)
        for path in paths:
            assert any(Path(path).is_relative_to(m) for m in mounts), f"{path} is not on a shared mount of every pod"


@pytest.mark.parametrize("manifest", sorted(POOLS))
def test_each_actor_kind_has_exactly_one_pool(manifest):
    pools = POOLS[manifest]()
    for kind, (_, request) in demands(cluster_config()).items():
        assert len(serving(pools, request)) == 1, f"{manifest}: {kind} actors may land in {serving(pools, request)}"


@pytest.mark.parametrize("manifest", sorted(POOLS))
def test_each_actor_kind_fits_its_pool_at_max_size(manifest):
    pools = POOLS[manifest]()
    for kind, (count, request) in demands(cluster_config()).items():
        for name in serving(pools, request):
            node, most = pools[name]
            capacity = per_node(node, request) * most
            assert capacity >= count, f"{manifest}/{name}: room for {capacity} {kind} actors, config wants {count}"
            assert per_node(node, request) >= 1, f"{manifest}/{name}: one {kind} actor does not fit a node"


@pytest.mark.parametrize("manifest", sorted(POOLS))
def test_the_learner_group_fits_on_one_node_for_nccl(manifest):
    pools, (count, request) = POOLS[manifest](), demands(cluster_config())["learner"]
    for name in serving(pools, request):
        assert per_node(pools[name][0], request) >= count, f"{manifest}/{name}: {count} ranks do not share a node"


@pytest.mark.parametrize("manifest", sorted(POOLS))
def test_head_advertises_no_cpus_and_no_pool(manifest):
    head = POOLS[manifest]()["head"][0]
    assert head["CPU"] == 0 and set(head) <= {"CPU", "GPU"}, f"{manifest}: the head would take actors: {head}"


def test_runtime_env_uploads_the_code_and_excludes_local_state():
    from ray._private.thirdparty.pathspec import PathSpec  # the matcher Ray applies to `excludes`

    env = load(RUNTIME_ENV)
    assert env["working_dir"] == ".", "working_dir must be the repository root"
    spec = PathSpec.from_lines("gitwildmatch", env["excludes"])
    for path in (".git/HEAD", ".venv/bin/python", "runs/x/metrics.jsonl", "checkpoints/step_1/state.json",
                 "data/gsm8k.jsonl", "services/__pycache__/launch.cpython-311.pyc", "dllmrl.egg-info/PKG-INFO"):
        assert spec.match_file(path), f"runtime_env uploads {path}"
    code = [p.relative_to(ROOT) for d in ("dllmrl_core", "services", "configs") for p in (ROOT / d).rglob("*.py")]
    code += [p.relative_to(ROOT) for p in (ROOT / "configs").rglob("*.yaml")]
    assert not [p for p in code if spec.match_file(str(p))], "runtime_env excludes project code or configs"
