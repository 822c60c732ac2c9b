"""The one base class for every component config: frozen, typed, unknown keys rejected.

Each component defines its own config next to the code that uses it (SamplerConfig in
`sampling/`, each objective's Config in its file); the run config only composes them.
Validation errors are reported as one line naming the offending field.

Numbers are checked here once for every section: a float is finite (`.inf` and `.nan` are errors,
`allow_inf_nan=False`), a YAML boolean is never read as a number (pydantic would take `true`
for 1) nor a number as a boolean. Ranges are each field's own (`Field(ge=..., le=...)`); the shared
ones are named below.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

C = TypeVar("C", bound="ConfigModel")

MAX_SECONDS = 7 * 24 * 3600.0  # a week: longer time limits are mistakes, and overflow the timers they feed
Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS)]  # a time limit
Fraction = Annotated[float, Field(ge=0, lt=1)]  # a probability that must stay below 1 (dropout, Adam's betas)


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_as_number(cls, value: Any, info: ValidationInfo) -> Any:
        """`steps: true` is a mistake, not 1, and `before: 1` is not true: a boolean only where the field's
        type names bool, and a bool-only field takes nothing else."""
        annotation = cls.model_fields[info.field_name].annotation
        if _has_bool(value) and not _takes_bool(annotation):
            raise ValueError("a boolean (true/false) where a number or string is expected")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and _only_bool(annotation):
            raise ValueError(f"expected true or false, not {value!r}")
        return value

    @classmethod
    def parse(cls: type[C], data: dict[str, Any], where: str = "") -> C:
        """Validate `data`, raising a one-line ValueError that names the field (prefixed by `where`)."""
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise ValueError(one_line(err, where, cls)) from None


def _has_bool(value: Any) -> bool:
    """`value` is a boolean, or a list or mapping holding one."""
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
    return any(isinstance(v, bool) for v in items)


def _takes_bool(annotation: Any) -> bool:
    """The type admits a boolean somewhere (or is a section, which checks its own fields)."""
    if annotation is bool or annotation is Any or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return True
    return any(_takes_bool(arg) for arg in get_args(annotation))


def _only_bool(annotation: Any) -> bool:
    """`bool` or `bool | None`."""
    return annotation is bool or set(get_args(annotation)) == {bool, type(None)}


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
