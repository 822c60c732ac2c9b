"""Re-score d1 evaluation generation files with d1's answer parsing (or the repaired protocol).

Input: the JSON files d1's eval/eval.py writes, an object with a `generations` list of
`{question, generations, ground_truth}` (plus `gen_length`, `diffusion_steps`, `block_length`).
Ground truth per task, as d1 stores it: GSM8K a float (null when d1 could not parse it), MATH-500
the answer string, Countdown `[numbers, target]`, Sudoku the solution (the puzzle is read from the
question); a malformed one stops the command, before any item is scored, with one line naming the
file and the item. Each item is verified in a worker process under `--timeout-s` (default: the
`verify.timeout_s` default); one that overruns it scores 0 of 1 and is counted in the table's
`timed out` column (`dllmrl_core/verify/pool.py`). Prints a table per file, then one JSON line
aggregated over all files; accuracy is sum(correct) / sum(total) in percent (Sudoku: cell
accuracy, as d1 reports).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dllmrl_core.contract.jsontext import dumps

# Phrases of d1's evaluation prompts that identify the task a file was generated for.
_PROMPT_MARKS = {
    "gsm8k": "Wrap the final answer in a \\boxed{}. \nRespond",
    "math500": "</answer>\" \n",
    "countdown": "Using only the provided numbers",
    "sudoku": "Please solve the following 4x4 Sudoku puzzle",
}


def register(parser: argparse.ArgumentParser) -> None:
    from dllmrl_core.tasks.registry import TASKS
    from dllmrl_core.verify.config import VerifyConfig

    parser.add_argument("--task", required=True, choices=list(TASKS), help="task the files were generated for")
    parser.add_argument("--protocol", choices=("d1", "fixed", "agrpo"), default="d1",
                        help="answer parsing: d1's eval/parse_and_get_acc.py, repaired, or AGRPO's eval.py "
                             "(default: d1)")
    parser.add_argument("--timeout-s", type=_positive(float), default=VerifyConfig().timeout_s,
                        help="per-item time limit: an item whose verification overruns it scores 0 and is counted "
                             "as timed out (default: %(default)s)")
    parser.add_argument("--processes", type=_positive(int), default=1, help="verifier processes (default: 1)")
    parser.add_argument("files", nargs="+", metavar="FILE", help="d1 *_generations.json files")
    parser.set_defaults(run=run)


def _read(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        data = json.loads(file.read_text(encoding="utf-8", errors="replace"))
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("generations"), list):
        raise ValueError(f"{path}: not a d1 generations file (expected an object with a 'generations' list)")
    return data


def _check_task(task: str, item: dict[str, Any], where: str) -> None:
    """Reject an item whose prompt carries another task's d1 evaluation prompt."""
    text = str(item.get("prompt_input", "")) + "\n" + str(item.get("question", ""))
    others = [name for name, mark in _PROMPT_MARKS.items() if name != task and mark in text]
    if others and _PROMPT_MARKS[task] not in text:
        raise ValueError(f"{where}: prompted for {others[0]}, not {task} (wrong --task?)")


def read_items(task_name: str, path: str, protocol: str) -> tuple[list, dict[str, Any]]:
    """The verification items of one file (each under `protocol`), and the file's generation settings;
    a ValueError naming the file and item for anything malformed."""
    from dllmrl_core.contract.verdict import VerifyItem
    from dllmrl_core.tasks.registry import get_task

    task = get_task(task_name)
    data = _read(path)
    items = []
    for i, item in enumerate(data["generations"]):
        where = f"{path}: item {i}"
        if not isinstance(item, dict) or not isinstance(item.get("generations"), str) or "ground_truth" not in item:
            raise ValueError(f"{where}: expected an object with 'generations' text and 'ground_truth'")
        _check_task(task_name, item, where)
        try:
            example = task.from_d1_record(str(item.get("question", "")), item["ground_truth"])
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        items.append(VerifyItem(item["generations"], example, protocol))
    settings = {k: data.get(k) for k in ("gen_length", "diffusion_steps", "block_length")}
    return items, settings


def score_items(task_name: str, items: list, timeout_s: float, processes: int) -> tuple[list, list[bool]]:
    """EvalScores of the items, each verified in a worker process under `timeout_s`, and whether each
    was lost (timed out, or its verifier process died): a lost item scores 0 of a total of 1."""
    from dllmrl_core.tasks import TaskConfig
    from dllmrl_core.tasks.results import EvalScore
    from dllmrl_core.verify.pool import VerifierPool

    task = TaskConfig(name=task_name, reward_set="d1", eval_protocol="d1")
    with VerifierPool(task, timeout_s, processes) as pool:  # the items name their protocol
        verdicts = pool.map(items)
    scores = [EvalScore(v.points, v.total, v.well_formed, None) for v in verdicts]
    return scores, [v.timed_out or v.crashed for v in verdicts]


def _positive(kind: type):
    def parse(text: str):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def _table(path: str, scores: list, lost: list[bool], settings: dict[str, Any]) -> str:
    from dllmrl_core.tasks.base import accuracy, well_formed_share

    correct, total = sum(s.correct for s in scores), sum(s.total for s in scores)
    head = ", ".join(f"{k} {v}" for k, v in settings.items() if v is not None)
    return "\n".join([
        f"{path}" + (f"  ({head})" if head else ""),
        f"  {'items':>7} {'correct':>9} {'total':>9} {'accuracy':>9} {'well-formed':>12} {'timed out':>10}",
        f"  {len(scores):>7} {correct:>9g} {total:>9g} {100 * accuracy(scores):>8.2f}% "
        f"{100 * well_formed_share(scores):>11.2f}% {sum(lost):>10}",
    ])


def run(args: argparse.Namespace) -> int:
    from dllmrl_core.tasks.base import accuracy

    files = [(path, *read_items(args.task, path, args.protocol)) for path in args.files]
    scores, lost = score_items(args.task, [i for _, items, _ in files for i in items], args.timeout_s,
                               args.processes)
    start = 0
    for path, items, settings in files:
        end = start + len(items)
        print(_table(path, scores[start:end], lost[start:end], settings))
        start = end
    print(dumps({"task": args.task, "files": len(files), "items": len(scores), "accuracy": 100 * accuracy(scores)}))
    return 0
