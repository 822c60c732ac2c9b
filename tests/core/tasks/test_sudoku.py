"""4x4 Sudoku: the 288 grids, unique-puzzle generation, the SPG split, d1's reward and cell accuracy."""

import pytest

from dllmrl_core.tasks import (SudokuExample, SudokuOptions, all_grids, generate_sudoku, get_task, solve_sudoku,
                               split_grids)
from dllmrl_core.tasks.sudoku_gen import is_valid_grid

TASK = get_task("sudoku")
# empty cells at 2, 5, 6, 7, 8, 11, 12, 15
EX = SudokuExample(puzzle="3102200002100320", solution="3142243142131324")


def test_solver_and_the_288_grids():
    grids = all_grids()
    assert len(grids) == 288 == len(set(grids)) and all(is_valid_grid(g) for g in grids)
    assert solve_sudoku(EX.puzzle) == [EX.solution]
    assert len(solve_sudoku("1000000000000000", limit=None)) == 72
    assert solve_sudoku("1100000000000000") == []          # clash in the first row
    with pytest.raises(ValueError):
        solve_sudoku("12345")


@pytest.mark.parametrize("k", [7, 8, 12])
def test_generated_puzzles_have_a_unique_solution(k):
    puzzles = generate_sudoku(25, seed=k, options=SudokuOptions(min_empty=k, max_empty=k))
    for puzzle, solution in puzzles:
        assert puzzle.count("0") == k and solve_sudoku(puzzle) == [solution]
        assert all(p in ("0", s) for p, s in zip(puzzle, solution))
    assert puzzles == generate_sudoku(25, seed=k, options=SudokuOptions(min_empty=k, max_empty=k))


def test_solution_disjoint_split():
    train, test = split_grids(seed=0)
    assert (len(train), len(test)) == (200, 88) and not set(train) & set(test)
    assert split_grids(seed=0) == (train, test) and split_grids(seed=1) != (train, test)
    assert {s for _, s in generate_sudoku(100, seed=0, grids=test)} <= set(test)
    held_train, held_test = split_grids(seed=0, holdout=test[:5])
    assert held_test == test[:5] and len(held_train) == 283


@pytest.mark.parametrize("text, reward", [
    ("<answer>\n3142243142131324\n</answer>", 1.0),
    ("<answer>3142\n2431\n4213\n1324</answer>", 1.0),        # separators dropped
    ("<answer>3142</answer>", 1 / 8),                         # right-padded with '0': only cell 2 right
    ("<answer>31422431421313249</answer>", 1.0),              # truncated to 16
    ("<answer>3142243142131323</answer>", 7 / 8),
    ("<answer>²3142243142131324</answer>", 0.0),              # "²".isdigit(): shifts every cell
    ("<answer></answer>", 0.0),
    ("3142243142131324", 0.0),                                # no tags
])
def test_d1_reward(text, reward):
    assert TASK.reward(text, EX, "d1").total == pytest.approx(reward)


@pytest.mark.parametrize("text, reward", [
    ("<answer>3142 2431 4213 1324</answer>", 1.0),
    ("<answer>3142</answer>", 0.0),                           # not 16 digits: no credit
    ("<answer>31422431421313249</answer>", 0.0),
    ("<answer>²3142243142131324</answer>", 1.0),              # only ASCII digits count
])
def test_fixed_reward(text, reward):
    assert TASK.reward(text, EX, "fixed").total == pytest.approx(reward)


@pytest.mark.parametrize("text, correct, extracted", [
    ("<answer>\n3142243142131324\n</answer>", 8, "3142243142131324"),
    ("<answer>```\n3142 2431\n4213 1324\n```</answer>", 8, "3142243142131324"),   # code block
    ("<answer>3142<|eot_id|>", 1, "3142"),                                        # stops at EOT
    ("<answer> </answer> 3142243142131324<|endoftext|>", 8, "3142243142131324"),   # after </answer>
    ("The grid is 3142243142131324.", 8, "3142243142131324"),                     # 16 digits anywhere
    ("no digits", 0, None),
])
def test_d1_cell_accuracy(text, correct, extracted):
    score = TASK.score(text, EX, "d1")
    assert (score.correct, score.total, score.extracted, score.well_formed) == (correct, 8, extracted, bool(extracted))


@pytest.mark.parametrize("name", ["sudoku_4x4_test_d1.csv", "sudoku_4x4_test_spg.csv"])
def test_test_files_load_and_their_solutions_score_full_marks(data_dir, name):
    loaded = TASK.load(str(data_dir / name))
    assert loaded.skipped == 0 and len(loaded.examples) == {"sudoku_4x4_test_d1.csv": 500}.get(name, 256)
    for ex in loaded.examples:
        for style in ("d1", "compact"):
            gold = TASK.reference_completion(ex, style)
            assert TASK.reward(gold, ex, "d1").total == 1.0 and TASK.reward(gold, ex, "fixed").total == 1.0
            score = TASK.score(gold, ex, "d1")
            assert score.correct == score.total == len(ex.empty_cells) > 0


def test_loader_skips_and_counts_malformed_rows(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("Puzzle,Solution\n"
                    "3102200002100320,3142243142131324\n"
                    "310220000210032,3142243142131324\n"      # 15 characters
                    "4102200002100320,3142243142131324\n"     # clue disagrees with the solution
                    "3102200002100320,3142243142131334\n"     # not a valid grid
                    "3102200002100320\n"                      # missing column
                    "3102200002100320,3142243142131324,x\n")  # extra column
    loaded = TASK.load(str(path))
    assert loaded.examples == [EX] and loaded.skipped == 5 and EX.id == "sudoku/3102200002100320"


def test_from_d1_record_reads_the_puzzle_from_the_question():
    question = "Solve the following Sudoku puzzle: 3102200002100320\n"
    assert TASK.from_d1_record(question, EX.solution) == EX
    assert TASK.from_d1_record(EX.puzzle, EX.solution) == EX
    with pytest.raises(ValueError, match="not a sudoku"):
        TASK.from_d1_record(question, 18.0)
