"""The reasoning tasks of d1 (GSM8K, MATH-500, Countdown, 4x4 Sudoku), the generic task (a dataset
and a config) and plug-in tasks (a `Task` subclass named `module:Class`): data, prompts, rewards, scoring.

    task = get_task("countdown")
    example = load_split(TaskConfig.parse({"name": "countdown"}), "test").examples[0]
    text = task.eval_prompt(example)              # user message; render the chat template, then
    prefill = task.eval_prefill()                 # append "<reasoning>" as d1 does
    turns = task.messages(example, "agrpo", "test")  # AGRPO's prompts add a system turn
    task.reward(completion, example, "d1")        # RewardResult(total, components)
    task.score(completion, example, "d1")         # EvalScore(correct, total, well_formed, extracted)
"""

from dllmrl_core.tasks.base import (REASONING_PREFILL, D1Records, LoadResult, PaperTask, ReferenceSolutions, Task,
                                    accuracy, render_prompts, require, well_formed_share)
from dllmrl_core.tasks.config import TaskConfig, load_split, training_split
from dllmrl_core.tasks.countdown import CountdownExample, CountdownTask
from dllmrl_core.tasks.countdown_gen import CountdownOptions, generate_countdown, solve_countdown
from dllmrl_core.tasks.generic import GenericOptions, GenericTask
from dllmrl_core.tasks.gsm8k import GSM8KExample, GSM8KTask
from dllmrl_core.tasks.math500 import MathExample, MathOptions, Math500Task
from dllmrl_core.tasks.registry import TASKS, get_task
from dllmrl_core.tasks.results import EvalScore, RewardResult
from dllmrl_core.tasks.reward_library import GenericExample
from dllmrl_core.tasks.sudoku import SudokuExample, SudokuTask
from dllmrl_core.tasks.sudoku_gen import SudokuOptions, all_grids, generate_sudoku, solve_sudoku, split_grids

__all__ = [
    "REASONING_PREFILL", "TASKS", "CountdownExample", "CountdownOptions", "CountdownTask", "D1Records", "EvalScore",
    "GSM8KExample", "GSM8KTask", "GenericExample", "GenericOptions", "GenericTask", "LoadResult", "Math500Task",
    "MathExample", "MathOptions", "PaperTask", "ReferenceSolutions", "RewardResult", "SudokuExample",
    "SudokuOptions", "SudokuTask", "Task", "TaskConfig", "accuracy", "all_grids", "require",
    "generate_countdown", "generate_sudoku", "get_task", "load_split", "render_prompts", "solve_countdown",
    "solve_sudoku", "split_grids", "training_split", "well_formed_share",
]
