"""The papers' data, read from small local files in the same layout as the real ones (parquet as the
hub serves them, d1's and SPG's CSV/JSONL files): bad rows are skipped and counted, never fatal."""

import json
import sys
import types

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dllmrl_core.tasks import TaskConfig, load_split


def parquet(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


@pytest.fixture
def fake_hub(monkeypatch):
    """A stand-in for the optional `datasets` package: hub names map to local parquet files."""
    files, calls = {}, []

    def load_dataset(name, config=None, split=None):
        calls.append((name, config, split))
        return pq.read_table(files[(name, config, split)]).to_pylist()

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    return files, calls


def test_countdown_tasks_3to4_first_rows_three_numbers_minus_the_test_problems(tmp_path, fake_hub):
    files, calls = fake_hub
    rows = [{"target": 23, "nums": [30, 100, 93]},        # a test problem (numbers in another order below)
            {"target": 10, "nums": [1, 2, 3, 4]},          # four numbers
            {"target": 6, "nums": [1, 2, 3]},
            {"target": None, "nums": [1, 2, 3]},           # bad row
            {"target": 7, "nums": [1, 2, 4]},
            {"target": 8, "nums": [2, 2, 4]}]              # beyond train_rows
    files[("Jiayi-Pan/Countdown-Tasks-3to4", None, "train")] = parquet(tmp_path / "cd.parquet", rows)
    (tmp_path / "countdown_cd3_test.jsonl").write_text('{"input": "93,30,100", "output": "23"}\n'
                                                       '{"input": "4,5", "output": "oops"}\n')
    config = TaskConfig.parse({"name": "countdown", "train_source": "hub:Jiayi-Pan/Countdown-Tasks-3to4:train",
                               "data_dir": str(tmp_path), "test_source": "countdown_cd3_test.jsonl",
                               "train_rows": 5, "exclude_test": True})
    train, test = load_split(config, "train"), load_split(config, "test")
    assert [(e.numbers, e.target) for e in train.examples] == [((1, 2, 3), 6), ((1, 2, 4), 7)]
    assert (train.skipped, train.filtered) == (1, 2)          # one bad row; one 4-number row, one test problem
    assert (len(test.examples), test.skipped, test.source) == (1, 1, str(tmp_path / "countdown_cd3_test.jsonl"))
    assert calls[0] == ("Jiayi-Pan/Countdown-Tasks-3to4", None, "train")


def test_gsm8k_platinum_from_the_hub(tmp_path, fake_hub):
    files, calls = fake_hub
    rows = [{"question": "How many?", "answer": "2 + 2 = 4\n#### 4", "cleaning_status": "consensus"},
            {"question": "Revised?", "answer": "#### 12", "cleaning_status": "revised"},
            {"question": "Ill-posed?", "answer": "#### 3", "cleaning_status": "rejected"},
            {"question": "No marker?", "answer": "5", "cleaning_status": "consensus"}]
    files[("madrylab/gsm8k-platinum", "main", "test")] = parquet(tmp_path / "platinum.parquet", rows)
    config = TaskConfig.parse({"name": "gsm8k", "test_source": "hub:madrylab/gsm8k-platinum:main:test",
                               "prompt_style": "agrpo", "reward_set": "agrpo", "eval_protocol": "agrpo"})
    test = load_split(config, "test")
    assert [e.answer for e in test.examples] == ["4", "12"] and test.skipped == 2
    assert calls == [("madrylab/gsm8k-platinum", "main", "test")]


def test_competition_math_levels_up_to_four_minus_math500(tmp_path):
    train = parquet(tmp_path / "competition_math.parquet", [
        {"problem": "Kept.", "level": "Level 2", "type": "Algebra", "solution": "So \\boxed{3}."},
        {"problem": "Too hard.", "level": "Level 5", "type": "Algebra", "solution": "\\boxed{1}"},
        {"problem": "Unknown level.", "level": "Level ?", "type": "Algebra", "solution": "\\boxed{1}"},
        {"problem": "In MATH-500.", "level": "Level 1", "type": "Algebra", "solution": "\\boxed{7}"},
        {"problem": "No box.", "level": "Level 1", "type": "Algebra", "solution": "seven"}])
    test = tmp_path / "math500.jsonl"
    test.write_text(json.dumps({"problem": "In MATH-500.", "solution": "\\boxed{7}", "answer": "7", "level": 1})
                    + "\n")
    config = TaskConfig.parse({"name": "math500", "train_source": train, "test_source": str(test),
                               "exclude_test": True, "math": {"max_level": 4}})
    loaded = load_split(config, "train")
    assert [(e.problem, e.answer, e.level) for e in loaded.examples] == [("Kept.", "3", 2)]
    assert (loaded.skipped, loaded.filtered) == (1, 3)
    assert load_split(config, "test").examples[0].level == 1


def test_d1_sudoku_test_subsample_is_d1s_draw(tmp_path, data_dir):
    """d1 evaluates 256 of its 500 test puzzles: np.random.seed(42), choice(500, 256, replace=False);
    its first generations file starts with puzzle 4320004330100004."""
    config = TaskConfig.parse({"name": "sudoku", "data_dir": str(data_dir), "test_source": "sudoku_4x4_test_d1.csv",
                               "test_subsample": 256})
    test = load_split(config, "test")
    assert len(test.examples) == 256 and test.filtered == 244 and test.examples[0].puzzle == "4320004330100004"
    assert len({e.puzzle for e in test.examples}) == 256
    with pytest.raises(ValueError, match="test_subsample \\(501\\) exceeds the 500 test problems"):
        load_split(config.model_copy(update={"test_subsample": 501}), "test")


def test_sudoku_split_files_and_numeric_puzzles(tmp_path):
    (tmp_path / "train_sudoku_split_new.csv").write_text(
        "Puzzle,Solution\n"
        "0310200404001043,4312213434211243\n"
        "310200404001043,4312213434211243\n"          # leading zero lost by a spreadsheet: padded back
        "0310200404001043\n"                           # short row
        "9999999999999999,4312213434211243\n"          # not a puzzle
        "1002020100030310,1432324141232314\n")
    numeric = parquet(tmp_path / "s.parquet", [{"Puzzle": 310200404001043, "Solution": 4312213434211243}])
    config = TaskConfig.parse({"name": "sudoku", "data_dir": str(tmp_path), "test_source": numeric,
                               "train_source": "train_sudoku_split_new.csv", "train_rows": 4})
    train, test = load_split(config, "train"), load_split(config, "test")
    assert [e.puzzle for e in train.examples] == ["0310200404001043", "0310200404001043"]
    assert (train.skipped, test.examples[0].puzzle, test.skipped) == (2, "0310200404001043", 0)


def test_a_relative_source_reads_under_data_dir_and_absolute_ones_stay():
    config = TaskConfig.parse({"name": "countdown", "data_dir": "/data", "train_source": "d1/train.jsonl",
                               "test_source": "/elsewhere/test.jsonl"})
    assert (config.source("train"), config.source("test")) == ("/data/d1/train.jsonl", "/elsewhere/test.jsonl")
    hub = TaskConfig.parse({"name": "gsm8k", "data_dir": "/data"})
    assert hub.source("test") == "hub:openai/gsm8k:main:test"
