"""The task registry: a task name to a task object.

A name is one of the built-in tasks below, `package.module:Object` (a `Task` subclass, which is
instantiated, or a task object), or the name of an entry point in the `dllmrl.tasks` group. Every
process resolves the name itself by importing it, so the Ray actors and the verifier processes
find a plug-in task exactly as the driver does; nothing depends on a registration made elsewhere.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from importlib.metadata import entry_points

from dllmrl_core.tasks.base import Task
from dllmrl_core.tasks.countdown import CountdownTask
from dllmrl_core.tasks.gsm8k import GSM8KTask
from dllmrl_core.tasks.math500 import Math500Task
from dllmrl_core.tasks.sudoku import SudokuTask

TASKS: dict[str, Task] = {
    "gsm8k": GSM8KTask(),
    "math500": Math500Task(),
    "countdown": CountdownTask(),
    "sudoku": SudokuTask(),
}
ENTRY_POINT_GROUP = "dllmrl.tasks"


def get_task(name: str) -> Task:
    """The task called `name`; a one-line ValueError saying what was tried otherwise."""
    if name in TASKS:
        return TASKS[name]
    return _plugin(name)


@lru_cache(maxsize=None)
def _plugin(name: str) -> Task:
    if ":" in name:
        found = import_object(name, "task")
    else:
        points = entry_points(group=ENTRY_POINT_GROUP, name=name)
        if not points:
            raise ValueError(f"unknown task {name!r}; valid: {', '.join(TASKS)}, generic, a module:Class "
                             f"or an entry point of group {ENTRY_POINT_GROUP!r}")
        found = next(iter(points)).load()
    task = found() if isinstance(found, type) else found
    if not isinstance(task, Task):
        raise ValueError(f"task {name!r} is a {type(task).__name__}, not a dllmrl_core.tasks.Task")
    if not task.name:
        task.name = name
    return task


def import_object(name: str, what: str):
    """The object `module:attribute` names (attribute may be dotted); one-line errors."""
    module_name, _, attribute = name.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{what} {name!r}: expected module:object")
    try:
        target = importlib.import_module(module_name)
    except Exception as err:  # noqa: BLE001 - the user's module may fail in any way while importing
        raise ValueError(f"{what} {name!r}: cannot import {module_name} ({type(err).__name__}: {err})") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"{what} {name!r}: {module_name} has no {attribute}")
        target = getattr(target, part)
    return target
