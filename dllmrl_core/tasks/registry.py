"""The task registry: name -> task object."""

from __future__ import annotations

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


def get_task(name: str) -> Task:
    """The task called `name`; ValueError listing the valid names otherwise."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[name]
