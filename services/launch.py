"""Launch the distributed RL run.

    python -m services.launch CFG.yaml [key.path=value ...]
    ray job submit --working-dir . -- python -m services.launch CFG.yaml [key.path=value ...]

Validates the whole config, the paths it names (`preflight`) and its memory plan (every actor fits
its GPU) before any work, then joins a running Ray cluster only when asked to (RAY_ADDRESS, which
`ray job submit` sets, or `--address`) and otherwise starts a private local one, even if `ray start`
left a cluster on this machine; it prints which. Then it starts the Controller actor and waits. The
resolved config is saved beside the checkpoints; the last printed line is the same JSON summary as
the single-process loop's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

from dllmrl_core.contract.jsontext import dumps
from dllmrl_core.drive.preflight import preflight
from dllmrl_core.drive.runtime import keep_freed_memory
from services.settings import SystemConfig, load_system_config


def local_resources(cfg: SystemConfig) -> dict:
    """Logical resources for a local cluster: whatever the config asks for (at least the cores).
    Placement colocated has no rollout workers."""
    import torch

    rollouts = 0 if cfg.colocated else cfg.rollout.num_workers
    cpus = (rollouts * cfg.rollout.num_cpus_per_worker + cfg.reward.num_actors
            * cfg.reward.num_cpus_per_actor + cfg.learner.num_workers * cfg.learner.num_cpus_per_worker)
    gpus = rollouts * cfg.rollout.num_gpus_per_worker + cfg.learner.num_workers * cfg.learner.num_gpus_per_worker
    custom: dict[str, float] = {}
    for count, res in ((rollouts, cfg.rollout.resources), (cfg.reward.num_actors, cfg.reward.resources),
                       (cfg.learner.num_workers, cfg.learner.resources)):
        for key, value in res.items():
            custom[key] = custom.get(key, 0.0) + count * value
    return {"num_cpus": max(int(cpus + 0.999), os.cpu_count() or 1),
            "num_gpus": max(int(gpus + 0.999), torch.cuda.device_count()), "resources": custom}


def connect(cfg: SystemConfig, address: str | None = None) -> bool:
    """Join the cluster at `address` (else RAY_ADDRESS; 'auto' = the one `ray start` left on this
    machine) or, with neither (or 'local'), start a private local cluster sized by the config, even
    if one is running. Prints which. True if this call connected (so the caller disconnects at the
    end), False if Ray was already initialised in this process."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    if address == "local":
        resources = local_resources(cfg)
        context = ray.init(address="local", include_dashboard=False, **resources)
        print(f"ray: started a local cluster for this run ({resources['num_cpus']} CPUs, {resources['num_gpus']} "
              f"GPUs) at {context.address_info['gcs_address']}", flush=True)
    else:
        context = ray.init(address=address)
        print(f"ray: joined the cluster at {context.address_info['gcs_address']} (address {address})", flush=True)
    return True


def run(cfg: SystemConfig, name: str | None = None) -> dict:
    """Start the Controller on the connected cluster, print the status URL, wait for the summary."""
    import ray

    from services.controller import ON_HEAD, Controller

    name = name or f"dllmrl-{uuid.uuid4().hex[:8]}/"
    controller = Controller.options(name=f"{name}controller", **ON_HEAD).remote(cfg, name)
    try:
        url = ray.get(controller.setup.remote())
        if url:
            print(f"status: {url}/status  (also /, /health, /metrics)", flush=True)
        return ray.get(controller.run.remote())
    finally:
        try:
            ray.get(controller.shutdown.remote(), timeout=60)
        except Exception:  # noqa: BLE001 - setup may have failed half way; kill what is left
            pass
        ray.kill(controller, no_restart=True)


def check_memory(cfg: SystemConfig) -> None:
    """The memory plan (`dllmrl plan`): every actor must fit its GPU before anything starts."""
    from dllmrl_core.planning import check

    for plan in check(cfg, cfg.topology()):
        if plan.capacity is not None:
            print(f"memory plan: {plan.verdict()}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Launch distributed RL for masked diffusion LMs on Ray")
    parser.add_argument("config", help="run config YAML")
    parser.add_argument("overrides", nargs="*", help="key.path=value")
    parser.add_argument("--address", default=None,
                        help="join this Ray cluster ('auto': the one `ray start` left on this machine); default: "
                             "RAY_ADDRESS, else a new local cluster")
    args = parser.parse_args(argv)
    try:
        cfg = load_system_config(args.config, args.overrides)
        preflight(cfg)  # the paths it names: a missing one fails here, not inside the Controller
        from services.status import resolve_token

        if cfg.status.enabled:
            resolve_token(cfg.status.host, cfg.status.token)
        if cfg.plan.enforce:
            check_memory(cfg)
        if (note := cfg.staleness_warning()) is not None:
            print(f"warning: {note}", file=sys.stderr, flush=True)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    keep_freed_memory()  # the warm start trains in this process
    start = time.perf_counter()
    if cfg.warm_start is not None:
        from dllmrl_core.training.warm_start import warm_start_with_progress

        warm_start_with_progress(cfg.warm_start, cfg.task, cfg.model.device)
    import ray

    owned = connect(cfg, args.address)
    try:
        summary = run(cfg)
    finally:
        if owned:
            ray.shutdown()  # stops log forwarding, so the summary below stays the last line
    summary["wall_s"] = round(time.perf_counter() - start, 1)  # everything, warm start included
    print(dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
