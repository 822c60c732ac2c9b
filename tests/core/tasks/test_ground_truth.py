"""Malformed ground truth in a d1 generations file: a ValueError naming it (one line from `dllmrl score`),
never another exception."""

import json
import math

import pytest

from dllmrl_core.cli import main
from dllmrl_core.tasks import TASKS

HOSTILE_TRUTHS = [
    [[[[1]]], 6], [[1, 2, 3], math.inf], [[1, 2, 3], -math.inf], [[1, 2, 3], math.nan], [[1, math.inf], 3],
    [[1, 2, 3], [4]], [[1, 2, 3], {"a": 1}], [[1, 2, 3], "7"], [[1, 2, 3], None], [[True, 2], 3], [[1.5, 2], 3],
    [7, 8], ["12", 3], [[], 3], [[[1, 2], [3]], 4], [[1, 2, 3]], [], {}, None, True, math.inf, math.nan,
    -math.inf, 10 ** 400, "x" * 10_000, "\x00", "[1,2]", [[1, 2, 3], 10 ** 5000], [[10 ** 5000, 2], 3],
]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_from_d1_record_raises_only_value_error(name):
    task = TASKS[name]
    for truth in HOSTILE_TRUTHS:
        try:
            task.from_d1_record("Numbers: [1, 2]\nTarget: x", truth)
        except ValueError:
            continue


def test_score_with_malformed_ground_truth_is_one_line(tmp_path, capsys):
    for k, truth in enumerate([[[[[1]]], 6], [[1, 2, 3], math.inf]]):
        path = tmp_path / f"g{k}.json"
        path.write_text(json.dumps({"generations": [{"question": "q", "generations": "<answer>1+2</answer>",
                                                     "ground_truth": truth}]}))
        assert main(["score", "--task", "countdown", "--protocol", "fixed", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{path}: item 0" in err and "ground_truth" in err, err


def test_gsm8k_infinite_ground_truth_is_refused():
    for truth in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValueError, match="ground_truth"):
            TASKS["gsm8k"].from_d1_record("q", truth)
