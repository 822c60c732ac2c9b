"""The `dllmrl` command: the core's subcommands (`dllmrl_core/commands/`) and the Ray system's `plan`."""

from __future__ import annotations

import sys

from dllmrl_core import cli
from services import plan_command

COMMANDS = {**cli.COMMANDS, "plan": plan_command}


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, COMMANDS)


if __name__ == "__main__":
    sys.exit(main())
