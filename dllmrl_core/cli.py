"""`dllmrl` command line: one subcommand per module in `dllmrl_core/commands/`."""

from __future__ import annotations

import argparse
import sys
from typing import Any, get_args, get_origin

from dllmrl_core.commands import generate, plan, score, sft
from dllmrl_core.runtime import keep_freed_memory

COMMANDS = {"generate": generate, "plan": plan, "score": score, "sft": sft}


def add_config_arguments(parser: argparse.ArgumentParser, model: Any, defaults: dict | None = None) -> None:
    """One `--flag` per field of a ConfigModel (type, default and help taken from the field)."""
    defaults = defaults or {}
    for name, field in model.model_fields.items():
        flag = "--" + name.replace("_", "-")
        default = defaults.get(name, field.default)
        help_text = f"{field.description or name} (default: {default})"
        kind = field.annotation
        options = [a for a in get_args(kind) if a is not type(None)]
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif get_origin(kind) is not None and all(isinstance(a, str) for a in options):
            parser.add_argument(flag, choices=options, default=default, help=help_text)
        else:
            parser.add_argument(flag, type=options[0] if options else kind, default=default, help=help_text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dllmrl", description="RL for masked diffusion language models")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        module.register(sub.add_parser(name, help=module.__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    keep_freed_memory()
    try:
        return args.run(args) or 0
    except (ValueError, FileNotFoundError) as err:  # bad input: one line, no traceback
        print(f"dllmrl {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
