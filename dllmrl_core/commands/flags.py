"""Command-line flags generated from a ConfigModel: one `--flag` per field, help from its description."""

from __future__ import annotations

import argparse
from typing import Any, get_args, get_origin


def add_config_arguments(parser: argparse.ArgumentParser, model: Any, defaults: dict | None = None,
                         prefix: str = "") -> None:
    """One `--flag` per field of a ConfigModel (type, default and help taken from the field); a nested
    ConfigModel's fields get `--section-field` flags (`--dream-alg`; read back with `config_values`)."""
    from pydantic import BaseModel

    defaults = defaults or {}
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            add_config_arguments(parser, kind, defaults.get(name), prefix=f"{prefix}{name}.")
            continue
        flag = "--" + (prefix + name).replace("_", "-").replace(".", "-")
        default = defaults.get(name, field.default)
        help_text = f"{field.description or name} (default: {default})"
        options = [a for a in get_args(kind) if a is not type(None)]
        common = dict(dest=prefix + name, default=default, help=help_text)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
        elif get_origin(kind) is not None and all(isinstance(a, str) for a in options):
            parser.add_argument(flag, choices=options, **common)
        else:
            parser.add_argument(flag, type=options[0] if options else kind,
                                metavar=(prefix + name).replace(".", "_").upper(), **common)


def config_values(args: argparse.Namespace, model: Any, prefix: str = "") -> dict[str, Any]:
    """The values of `add_config_arguments`' flags as the (nested) dict `model` parses."""
    from pydantic import BaseModel

    values = {}
    for name, field in model.model_fields.items():
        kind = field.annotation
        nested = isinstance(kind, type) and issubclass(kind, BaseModel)
        values[name] = config_values(args, kind, f"{prefix}{name}.") if nested else getattr(args, prefix + name)
    return values
