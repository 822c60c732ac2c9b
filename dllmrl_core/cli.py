"""The core's `dllmrl` subcommands, one per module in `dllmrl_core/commands/`.

The installed `dllmrl` command is `services/cli.py`, which adds the Ray system's `plan`;
`python -m dllmrl_core.cli` runs the core's alone. Importing it stays light (no torch): each verifier
process of `dllmrl score` imports the main module again (`dllmrl_core/verify/pool.py`).
"""

from __future__ import annotations

import argparse
import sys

from dllmrl_core.commands import export, generate, score, sft

COMMANDS = {"export": export, "generate": generate, "score": score, "sft": sft}


def main(argv: list[str] | None = None, commands: dict | None = None) -> int:
    """Parse `argv` and run the chosen subcommand: a module with `register(parser)` that sets `args.run`."""
    parser = argparse.ArgumentParser(prog="dllmrl", description="RL for masked diffusion language models")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in sorted((commands or COMMANDS).items()):
        module.register(sub.add_parser(name, help=module.__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    from dllmrl_core.drive.runtime import keep_freed_memory  # torch: only once a command runs

    keep_freed_memory()
    try:
        return args.run(args) or 0
    except (ValueError, FileNotFoundError) as err:  # bad input: one line, no traceback
        print(f"dllmrl {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
