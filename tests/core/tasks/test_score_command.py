"""`dllmrl score`: re-scores d1 generation files; the last stdout line is one JSON object."""

import json

import pytest

from dllmrl_core.cli import main

SETTINGS = {"gen_length": 128, "diffusion_steps": 64, "block_length": 32}


def write(path, items, **extra):
    path.write_text(json.dumps({"generations": items, "metrics": {"wall_time": 1.0}, **SETTINGS, **extra}))
    return str(path)


def item(question, generation, truth, prompt=""):
    return {"question": question, "prompt_input": prompt, "generations": generation, "ground_truth": truth}


def countdown_file(tmp_path, name):
    q = "Numbers: [30, 100, 93]\nTarget: 23"
    return write(tmp_path / name, [
        item(q, "<reasoning>r</reasoning><answer>\\boxed{93-(100-30)}</answer><|eot_id|><|endoftext|>",
             [[30, 100, 93], 23]),
        item(q, "<answer>\\boxed{93+100-30}</answer>", [[30, 100, 93], 23]),                 # wrong value
        item(q, "<answer>93-(100-30)</answer>", [[30, 100, 93], 23]),                        # unboxed: d1 says wrong
        item("Numbers: [2, 3, 4]\nTarget: 5", "\\boxed{2*4-3 = 5}", [[2, 3, 4], 5]),
    ])


def test_countdown_accuracy_by_hand(tmp_path, capsys):
    a, b = countdown_file(tmp_path, "a.json"), countdown_file(tmp_path, "b.json")
    assert main(["score", "--task", "countdown", a, b]) == 0
    lines = capsys.readouterr().out.strip().split("\n")
    assert json.loads(lines[-1]) == {"task": "countdown", "files": 2, "items": 8, "accuracy": 50.0}
    assert "gen_length 128" in lines[0] and "50.00%" in lines[2] and "75.00%" in lines[2]  # 3 of 4 well-formed
    assert main(["score", "--task", "countdown", "--protocol", "fixed", a]) == 0
    assert json.loads(capsys.readouterr().out.strip().split("\n")[-1])["accuracy"] == 75.0


def test_agrpo_protocol_rescores_agrpo_completions(tmp_path, capsys):
    """AGRPO's answers (`expression = target` in the answer tags) re-score under --protocol agrpo."""
    q = "Numbers: [30, 100, 93]\nTarget: 23"
    path = write(tmp_path / "agrpo.json", [
        item(q, "<think>t</think>\n<answer>\n93 - (100 - 30) = 23\n</answer>", [[30, 100, 93], 23]),
        item(q, "<think>t</think>\n<answer>\n93 + 100 - 30 = 163\n</answer>", [[30, 100, 93], 23]),
    ])
    assert main(["score", "--task", "countdown", "--protocol", "agrpo", path]) == 0
    assert json.loads(capsys.readouterr().out.strip().split("\n")[-1])["accuracy"] == 50.0


def test_sudoku_cell_accuracy_by_hand(tmp_path, capsys):
    q = "Solve the following Sudoku puzzle: 3102200002100320\n"
    path = write(tmp_path / "sudoku.json", [
        item(q, "<answer>\n3142243142131324\n</answer><|eot_id|>", "3142243142131324"),   # 8 of 8 cells
        item(q, "<answer>3142</answer>", "3142243142131324"),                             # 1 of 8 (padding)
        item(q, "I give up", "3142243142131324"),                                         # 0 of 8
    ])
    assert main(["score", "--task", "sudoku", path]) == 0
    assert json.loads(capsys.readouterr().out.strip().split("\n")[-1]) == {
        "task": "sudoku", "files": 1, "items": 3, "accuracy": 100 * 9 / 24}


def test_gsm8k_and_math_files(tmp_path, capsys):
    gsm = write(tmp_path / "gsm.json", [item("q", "\\boxed{18}", 18.0), item("q", "\\boxed{-3}", None),
                                        item("q", "<answer>7</answer>", 7.0)])
    assert main(["score", "--task", "gsm8k", gsm]) == 0
    assert json.loads(capsys.readouterr().out.strip().split("\n")[-1])["accuracy"] == pytest.approx(200 / 3)
    math = write(tmp_path / "math.json", [item("p", "\\boxed{\\dfrac{1}{2}}", "\\frac{1}{2}"),
                                          item("p", "<answer>1/2</answer>", "\\frac{1}{2}")])
    assert main(["score", "--task", "math500", math]) == 0
    assert json.loads(capsys.readouterr().out.strip().split("\n")[-1])["accuracy"] == 50.0


def test_bad_input_is_one_line_with_exit_code_2(tmp_path, capsys):
    cd = countdown_file(tmp_path, "cd.json")
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    prompted = write(tmp_path / "p.json", [item("q", "x", "3142243142131324", prompt="Please solve the following "
                                                "4x4 Sudoku puzzle.")])
    cases = [(["--task", "sudoku", cd], "not a solution string"),
             (["--task", "math500", prompted], "prompted for sudoku, not math500"),
             (["--task", "gsm8k", str(tmp_path / "bad.json")], "not valid JSON"),
             (["--task", "gsm8k", str(tmp_path / "list.json")], "not a d1 generations file"),
             (["--task", "gsm8k", str(tmp_path / "missing.json")], "no such file")]
    for args, message in cases:
        assert main(["score", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_unknown_task_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["score", "--task", "chess", "x.json"])
    assert exit_.value.code == 2 and "invalid choice: 'chess'" in capsys.readouterr().err
