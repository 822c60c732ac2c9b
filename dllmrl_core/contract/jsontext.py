"""JSON that every parser reads: a float that is not finite (NaN, ±inf) is written as null.

Python's `json.dumps` writes `NaN` and `Infinity`, which are not JSON (RFC 8259) and which strict
readers (jq, JavaScript, FastAPI's responses) refuse. Every JSON a run prints or writes, from a
summary line to a checkpoint's state, goes through `dumps`.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """`value` with every non-finite float inside (dicts, lists, tuples) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """`json.dumps` of `finite(value)`; never emits NaN or Infinity."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)
