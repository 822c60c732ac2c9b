"""Subcommands of the `dllmrl` CLI; each module has `register(parser)` and sets `args.run`."""
