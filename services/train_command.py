"""Train on Ray: `dllmrl train CFG.yaml [key.path=value ...]`, the same as `python -m services.launch`.

The arguments go to `services.launch.main` unchanged, so both commands validate, plan, warm-start
and train alike and print the same JSON summary last.
"""

from __future__ import annotations

import argparse


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="run config YAML")
    parser.add_argument("overrides", nargs="*", help="key.path=value")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from services import launch

    return launch.main([args.config, *args.overrides])
