"""TaskConfig, the registry and split loading: bad input is one line naming the problem."""

import importlib.util

import pytest

from dllmrl_core.tasks import TASKS, TaskConfig, get_task, load_split
from dllmrl_core.tasks.sources import read_rows


def test_registry():
    assert list(TASKS) == ["gsm8k", "math500", "countdown", "sudoku"]
    assert all(get_task(name).name == name for name in TASKS)
    with pytest.raises(ValueError, match="unknown task 'gsm8"):
        get_task("gsm8")
    with pytest.raises(ValueError) as err:
        get_task("chess")
    assert "gsm8k, math500, countdown, sudoku" in str(err.value)


@pytest.mark.parametrize("data, message", [
    ({"name": "countdown", "rewardset": "d1"}, "rewardset: unknown key"),
    ({"name": "countdown", "countdown": {"count": 3, "maxnumber": 9}}, "countdown.maxnumber: unknown key"),
    ({"name": "chess"}, "task.name: unknown task 'chess'; valid: gsm8k, math500, countdown, sudoku, generic"),
    ({"name": "gsm8k", "prompt_style": "compact"}, "prompt_style 'compact' is not available for gsm8k"),
    ({"name": "gsm8k", "train_source": "generate:10"}, "train_source: gsm8k has no generator"),
    ({"name": "sudoku", "test_source": "generate:x"}, "test_source: expected generate:<n>"),
    ({"name": "sudoku", "sudoku": {"min_empty": 9, "max_empty": 8}}, "min_empty (9) must not exceed max_empty (8)"),
    ({"name": "countdown", "reward_set": "best"}, "reward_set: Input should be 'd1', 'fixed' or 'agrpo'"),
])
def test_bad_config_is_one_line_naming_the_field(data, message):
    with pytest.raises(ValueError) as err:
        TaskConfig.parse(data, where="task")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_generated_splits():
    config = TaskConfig.parse({"name": "countdown", "prompt_style": "compact", "train_source": "generate:30",
                               "countdown": {"max_number": 9, "operators": "+-", "max_target": 20}})
    train, test = load_split(config, "train"), load_split(config, "test")
    # training problems that are also test problems are dropped (counted in `filtered`)
    assert (len(train.examples) + train.filtered, len(test.examples), train.skipped, train.source) == \
        (30, 256, 0, "generate:30")
    assert train.examples != test.examples[:30] and load_split(config, "train") == train
    assert all(max(e.numbers) <= 9 and e.reference for e in train.examples)


def test_sudoku_solution_disjoint_against_a_test_file(data_dir):
    spg = str(data_dir / "sudoku_4x4_test_spg.csv")
    config = TaskConfig.parse({"name": "sudoku", "train_source": "generate:200", "test_source": spg,
                               "sudoku": {"solution_disjoint": True, "min_empty": 7, "max_empty": 12}})
    train, test = load_split(config, "train"), load_split(config, "test")
    assert len(test.examples) == 256 and test.filtered == 0
    assert not {e.solution for e in train.examples} & {e.solution for e in test.examples}
    leaky = TaskConfig.parse({"name": "sudoku", "train_source": str(data_dir / "sudoku_4x4_test_d1.csv"),
                              "test_source": spg, "sudoku": {"solution_disjoint": True}})
    kept = load_split(leaky, "train")
    assert kept.filtered > 0 and not {e.solution for e in kept.examples} & {e.solution for e in test.examples}


def test_countdown_file_split_keeps_the_configured_number_count(tmp_path):
    path = tmp_path / "cd.jsonl"
    path.write_text('{"nums": [1, 2, 3], "target": 6}\n{"nums": [1, 2, 3, 4], "target": 10}\n{"nums": [1]}\n')
    loaded = load_split(TaskConfig.parse({"name": "countdown", "train_source": str(path)}), "train")
    assert (len(loaded.examples), loaded.filtered, loaded.skipped) == (1, 1, 1)


def test_bad_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such data file"):
        read_rows(str(tmp_path / "missing.jsonl"))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="unsupported data file type '.txt'"):
        read_rows(str(tmp_path / "x.txt"))
    with pytest.raises(ValueError, match="bad hub source"):
        read_rows("hub:openai/gsm8k")
    expected = "cannot load hub dataset" if importlib.util.find_spec("datasets") else "optional 'datasets' package"
    with pytest.raises(ValueError, match=expected):
        read_rows("hub:openai/gsm8k:main:test")


def test_generated_training_problems_exclude_the_test_problems():
    from dllmrl_core.tasks import TaskConfig, load_split

    cfg = TaskConfig.parse({"name": "countdown", "train_source": "generate:3000", "test_source": "generate:300",
                            "countdown": {"min_number": 1, "max_number": 9, "max_target": 20, "operators": "+-"}})
    train, test = load_split(cfg, "train"), load_split(cfg, "test")
    key = lambda e: (tuple(sorted(e.numbers)), e.target)  # noqa: E731
    assert train.filtered > 0  # this small problem space makes collisions certain
    assert not {key(e) for e in train.examples} & {key(e) for e in test.examples}
    assert len(train.examples) + train.filtered == 3000


def test_d1_records_round_trip_for_every_task():
    from dllmrl_core.tasks import CountdownExample, GSM8KExample, MathExample, SudokuExample, get_task

    cases = {"gsm8k": GSM8KExample("How many?", "72"), "math500": MathExample("Find x.", "\\boxed{3}", "3"),
             "countdown": CountdownExample((3, 5, 7), 22), "sudoku": SudokuExample("3102200002100320",
                                                                                  "3142243142131324")}
    for name, example in cases.items():
        task = get_task(name)
        question, truth = task.d1_record(example)
        back = task.from_d1_record(question, truth)
        right = {"gsm8k": "<answer>72</answer> \\boxed{72}", "math500": "\\boxed{3}",
                 "countdown": "\\boxed{3*5+7}", "sudoku": "<answer>3142243142131324</answer>"}[name]
        assert task.score(right, back).correct == task.score(right, example).correct > 0, name
