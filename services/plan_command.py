"""The memory plan of a run config: every actor's peak, item by item, and whether it fits its GPU.

`dllmrl plan CFG.yaml [key.path=value ...] [--gpu-memory GiB]`. A subcommand of the Ray layer
because the actors it plans are the system's: how many there are and what GPU share each gets
comes from the system's settings (services/settings.py).
"""

from __future__ import annotations

import argparse

from dllmrl_core.contract.jsontext import dumps


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="run config YAML")
    parser.add_argument("overrides", nargs="*", help="key.path=value")
    parser.add_argument("--gpu-memory", type=float, default=None, metavar="GiB",
                        help="memory of one GPU (default: the config's plan.gpu_memory_gib)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the table, then one JSON line ({"fits", "actors": {name: {"peak_gib", "capacity_gib", ...}}});
    exit 1 if an actor does not fit."""
    from dllmrl_core.planning import plan_run, render
    from dllmrl_core.planning.estimate import GiB
    from services.settings import load_system_config

    overrides = list(args.overrides)
    if args.gpu_memory is not None:
        overrides.append(f"plan.gpu_memory_gib={args.gpu_memory}")
    cfg = load_system_config(args.config, overrides)
    plans = plan_run(cfg, cfg.topology())
    print(render(plans))
    fits = all(p.fits for p in plans)
    print(dumps({"fits": fits, "actors": {p.actor: {
        "count": p.count, "device": p.device, "peak_gib": round(p.total / GiB, 2), "peak_phase": p.peak_phase,
        "capacity_gib": None if p.capacity is None else round(p.capacity / GiB, 2), "fits": p.fits,
        **({} if p.fits else {"knob": p.knob})} for p in plans}}))
    return 0 if fits else 1

