"""Plug-in tasks (module:Class, entry points), capabilities, the generic task and its rewards."""

import json
import multiprocessing as mp
import sys

import pytest

from dllmrl_core.contract.verdict import VerifyItem
from dllmrl_core.drive.config import RunConfig
from dllmrl_core.objectives import task_recipe
from dllmrl_core.tasks import GenericExample, TaskConfig, load_split, registry, training_split
from dllmrl_core.tasks.reward_library import Extraction, code_tests, numeric_match
from dllmrl_core.verify.verifier import serve

PLUGIN = '''
from dataclasses import dataclass
from dllmrl_core.tasks import RewardResult, Task

@dataclass(frozen=True)
class Sum:
    a: int
    b: int

class SumTask(Task):
    def parse_row(self, row):
        return Sum(int(row["a"]), int(row["b"]))
    def train_prompt(self, example, style="d1"):
        return f"{example.a}+{example.b}="
    def reward(self, completion, example):
        return RewardResult.of(correct=completion.strip() == str(example.a + example.b))
'''


@pytest.fixture()
def plugin(tmp_path, monkeypatch):
    """A user's module `sumtask` on sys.path (as the current directory is for `python -m`), and its data."""
    (tmp_path / "sumtask.py").write_text(PLUGIN)
    (tmp_path / "sums.jsonl").write_text("".join(json.dumps({"a": i, "b": 2}) + "\n" for i in range(5)))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("sumtask", None)
    registry._plugin.cache_clear()  # the next test's sumtask is another module


def test_a_task_class_named_module_colon_class_trains_rewards_and_scores(plugin):
    cfg = TaskConfig.parse({"name": "sumtask:SumTask", "train_source": str(plugin / "sums.jsonl")})
    task, examples = cfg.task, training_split(cfg).examples
    assert len(examples) == 5 and task.messages(examples[3])[-1]["content"] == "3+2="
    assert task.reward("5", examples[3]).total == 1.0 and task.reward("6", examples[3]).total == 0.0
    assert task.score("5", examples[3]).correct == 1.0  # the default score: the reward out of max_reward
    assert task_recipe("diffu_grpo", cfg.name) == {} and task_recipe("diffu_grpo", "sudoku")  # default recipe


def test_a_verifier_process_imports_the_plugin_by_name(plugin):
    """A fresh (spawned) process finds the task from its config alone, no registration needed."""
    cfg = TaskConfig.parse({"name": "sumtask:SumTask", "train_source": str(plugin / "sums.jsonl")})
    example = training_split(cfg).examples[1]
    parent, child = mp.get_context("spawn").Pipe()
    proc = mp.get_context("spawn").Process(target=serve, args=(child, cfg), daemon=True)
    proc.start()
    parent.send((0, VerifyItem("3", example)))
    index, verdict = parent.recv()
    parent.send(None)
    proc.join(timeout=30)
    assert index == 0 and verdict.reward == 1.0 and verdict.correct


def test_an_entry_point_names_a_task(plugin):
    info = plugin / "sumtask_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sumtask-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[dllmrl.tasks]\nsums = sumtask:SumTask\n")
    cfg = TaskConfig.parse({"name": "sums", "train_source": str(plugin / "sums.jsonl")})
    assert type(cfg.task).__name__ == "SumTask" and cfg.task.name == "sums"


@pytest.mark.parametrize("data, message", [
    ({"name": "nosuchmodule:Task", "train_source": "x.jsonl"}, "task.name: task 'nosuchmodule:Task': cannot import"),
    ({"name": "json:dumps", "train_source": "x.jsonl"}, "task.name: task 'json:dumps' is a function, not a"),
    ({"name": "sumtask:SumTask"}, "task: train_source: task sumtask:SumTask has no default data"),
    ({"name": "sumtask:SumTask", "train_source": "x.jsonl", "reward_set": "agrpo"}, "task: reward_set: task"),
    ({"name": "generic", "train_source": "x.jsonl"}, "task: generic: set this section exactly when name is generic"),
    ({"name": "generic", "train_source": "x.jsonl", "generic": {"rewards": [{"name": "close_enough"}]}},
     "task.generic.rewards.0.name: unknown reward 'close_enough'"),
    ({"name": "generic", "train_source": "x.jsonl", "generic": {"rewards": [{"name": "sumtask:nothing"}]}},
     "task.generic: reward 'sumtask:nothing': sumtask has no nothing"),
])
def test_bad_plugin_config_is_one_line_naming_the_field(plugin, data, message):
    with pytest.raises(ValueError) as err:
        TaskConfig.parse(data, where="task")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_capability_the_task_lacks_is_a_one_line_error(plugin):
    run = {"model": {"path": "runs/x"}, "warm_start": {"out": "runs/x"},
           "task": {"name": "sumtask:SumTask", "train_source": str(plugin / "sums.jsonl")}}
    with pytest.raises(ValueError, match="^warm_start: task sumtask:SumTask has no reference_completion"):
        RunConfig.parse(run)


def generic(tmp_path, rows: list[dict], **options) -> TaskConfig:
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {"columns": {"prompt": "q", "answer": "a"}, "template": "Q: {prompt} ({level})",
            "rewards": [{"name": "numeric_match", "weight": 1.0}, {"name": "format_tags", "weight": 0.5}], **options}
    return TaskConfig.parse({"name": "generic", "train_source": str(tmp_path / "rows.jsonl"), "generic": spec})


def test_generic_task_maps_columns_fills_the_template_and_weights_its_rewards(tmp_path):
    cfg = generic(tmp_path, [{"q": "2+3", "a": 5, "level": "easy"}, {"question": "1+1", "answer": 2}])
    loaded = training_split(cfg)
    assert len(loaded.examples) == 1 and loaded.skipped == 1 and "no column 'q'" in loaded.describe()
    task, ex = cfg.task, loaded.examples[0]
    assert task.train_prompt(ex) == "Q: 2+3 (easy)"
    good = task.reward("so <answer>5.0</answer>", ex)
    assert good.total == 1.5 and good.components == {"numeric_match": 1.0, "format_tags": 0.5}
    assert task.reward("<answer>4</answer>", ex).total == 0.5 and task.reward("5", ex).total == 0.0
    assert task.score("<answer>5</answer>", ex).correct == 1.0 and not task.score("5", ex).well_formed


def test_rows_without_the_mapped_columns_fail_in_one_line_that_counts_them(tmp_path):
    cfg = generic(tmp_path, [{"question": str(i), "answer": i} for i in range(500)])
    with pytest.raises(ValueError) as err:
        training_split(cfg)
    assert str(err.value).startswith("task.train_source: no training examples (0 examples from")
    assert "500 rows skipped (first: no column 'q' (the row has question, answer))" in str(err.value)


def test_a_users_reward_function_is_named_module_colon_function(tmp_path, monkeypatch):
    (tmp_path / "myrewards.py").write_text("def short(completion, example):\n    return float(len(completion) < 5)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = generic(tmp_path, [{"q": "x", "a": "1"}], rewards=[{"name": "myrewards:short", "weight": 2.0}])
    ex = load_split(cfg, "train").examples[0]
    assert cfg.task.reward("ok", ex).components == {"short": 2.0}
    sys.modules.pop("myrewards", None)


def test_generic_task_reads_a_saved_datasets_directory(tmp_path):
    import pyarrow as pa

    table = pa.table({"q": ["1+1", "2+2"], "a": ["2", "4"], "level": ["a", "b"]})
    with pa.ipc.new_stream(str(tmp_path / "data-00000-of-00001.arrow"), table.schema) as writer:
        writer.write_table(table)
    (tmp_path / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    cfg = generic(tmp_path, []).model_copy(update={"train_source": str(tmp_path)})
    assert [e.answer for e in training_split(cfg).examples] == ["2", "4"]


def test_code_tests_run_sandboxed_with_a_time_limit():
    how = Extraction(answer_tag=None, code_timeout_s=2.0)
    tests = GenericExample("c", "write add", "assert add(2, 3) == 5")
    assert code_tests("```python\ndef add(a, b):\n    return a + b\n```", tests, how) == 1.0
    assert code_tests("def add(a, b):\n    return a - b", tests, how) == 0.0
    assert code_tests("def add(a, b):\n    while True: pass", tests, how) == 0.0  # killed at the limit
    assert numeric_match("<answer>1,000</answer>", GenericExample("n", "", "1000"), Extraction()) == 1.0


def test_verify_in_process_uses_the_generic_tasks_rewards(tmp_path):
    from dllmrl_core.verify.verifier import verify

    cfg = generic(tmp_path, [{"q": "2+3", "a": 5}])
    ex = load_split(cfg, "train").examples[0]
    verdict = verify(cfg.task, cfg.reward_set, cfg.eval_protocol, "<answer>5</answer>", ex)
    assert verdict.reward == 1.5 and verdict.correct and verdict.components["format_tags"] == 0.5
