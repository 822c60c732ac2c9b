"""The `dllmrl` command: the core's subcommands (`dllmrl_core/commands/`) and the Ray system's
`train` (services/launch.py), `eval` (services/evaluate.py) and `plan`."""

from __future__ import annotations

import sys

from dllmrl_core import cli
from services import evaluate, plan_command, train_command

COMMANDS = {**cli.COMMANDS, "plan": plan_command, "train": train_command, "eval": evaluate}


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, COMMANDS)


if __name__ == "__main__":
    sys.exit(main())
