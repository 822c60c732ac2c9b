"""The one base class for every component config: frozen, typed, unknown keys rejected.

Each component defines its own config next to the code that uses it (SamplerConfig in
`sampling/`, each objective's Config in its file); the run config only composes them.
Validation errors are reported as one line naming the offending field.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

C = TypeVar("C", bound="ConfigModel")


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @classmethod
    def parse(cls: type[C], data: dict[str, Any], where: str = "") -> C:
        """Validate `data`, raising a one-line ValueError that names the field (prefixed by `where`)."""
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise ValueError(one_line(err, where, cls)) from None


def one_line(err: ValidationError, where: str = "", root: type[BaseModel] | None = None) -> str:
    """The first validation problem as `field.path: message` (pydantic's own text is multi-line);
    an unknown key also lists the keys valid at that place."""
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"]]
    path = ".".join([*(where.split(".") if where else []), *loc])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        valid = _keys_at(root, loc[:-1]) if root is not None else []
        msg = "unknown key" + (f" (valid: {', '.join(valid)})" if valid else "")
    extra = f" (+{len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{path}: {msg}{extra}" if path else f"{msg}{extra}"


def _keys_at(model: type[BaseModel], loc: list[str]) -> list[str]:
    """Field names of the sub-model reached by following `loc` from `model` (empty if none)."""
    for part in loc:
        field = model.model_fields.get(part)
        kind = getattr(field, "annotation", None)
        if not (isinstance(kind, type) and issubclass(kind, BaseModel)):
            return []
        model = kind
    return list(model.model_fields)
