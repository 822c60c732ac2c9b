"""Prompts: d1's training and evaluation strings byte for byte, the prefill, the compact style."""

import pytest

from dllmrl_core.tasks import (REASONING_PREFILL, CountdownExample, GSM8KExample, MathExample, SudokuExample,
                               get_task)

CD = CountdownExample((30, 100, 93), 23)
SD = SudokuExample("3102200002100320", "3142243142131324")
GSM = GSM8KExample("How many eggs?", "18")
MATH = MathExample("What is $1/2$?", "\\boxed{\\frac12}", "\\frac12")

FORMAT = "\nRespond in the following format:\n<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>\n"
EVAL_FORMAT = ("Respond in the following format:\n<reasoning>\nYour reasoning here\n</reasoning>\n<answer>\n"
               "\\boxed{...}\n</answer>")
SUDOKU = ("\nPlease solve the following 4x4 Sudoku puzzle. The puzzle is provided as a 16-character string reading "
          "left-to-right, top-to-bottom, where '0' represents empty cells.\n\nRules:\n- Fill empty cells with digits "
          "1-4\n- Each row must contain digits 1-4 exactly once\n- Each column must contain digits 1-4 exactly once\n"
          "- Each 2x2 box must contain digits 1-4 exactly once\n\nImportant: Your solution must be a COMPLETE "
          "16-character string with only the digits 1-4, representing your final solved grid.\n\nRespond in this "
          "exact format:\n<reasoning>\nYour step-by-step solving process\n</reasoning>\n<answer>\n[16-character "
          "solution string with no spaces or separators]\n</answer>\n")


def test_training_prompts():
    assert get_task("gsm8k").train_prompt(GSM) == FORMAT + "\n\nHow many eggs?"
    assert get_task("math500").train_prompt(MATH) == (
        FORMAT + "\n\nYou are a math expert. You will be given a question to solve. Solve it step by step. "
        "Wrap the final answer in a \\boxed{}. \n\nWhat is $1/2$?")
    assert get_task("countdown").train_prompt(CD) == (
        FORMAT + "\nUsing only the numbers [30, 100, 93], create an arithmetic expression that evaluates to "
        "exactly 23. You must use all numbers from the list, and each number must be used exactly once. You may "
        "use the operations +, -, *, and / as needed. After reasoning, provide only your final expression inside "
        "<answer></answer> tags without including an equals sign or the target number. For example, if the "
        "numbers are [2, 3, 4] and the target is 5, a valid answer is: <answer>\n2*4-3\n</answer>")
    assert get_task("sudoku").train_prompt(SD) == SUDOKU + "\n\nSolve the following Sudoku puzzle: 3102200002100320\n"


def test_evaluation_prompts():
    assert get_task("gsm8k").eval_prompt(GSM) == (
        "You are a math expert. You will be given a question to solve. Solve it step by step. Wrap the final "
        "answer in a \\boxed{}. \n" + EVAL_FORMAT + "\n\nHow many eggs?")
    assert get_task("math500").eval_prompt(MATH) == (
        "You are a math expert. You will be given a question to solve. Solve it step by step. Wrap the final "
        "answer in a \\boxed{}.\n" + EVAL_FORMAT + "\" \n\n\nWhat is $1/2$?")
    assert get_task("countdown").eval_prompt(CD) == (
        "Using only the provided numbers, create an arithmetic expression that evaluates to exactly the provided "
        "target number. You may use the operations +, -, *, and / as needed, but each number must be used exactly "
        "once. Think step-by-step. After reasoning, provide only your final expression inside \\boxed{} tags "
        "without including an equals sign or the target number. For example: \\boxed{a + b * c}" + EVAL_FORMAT
        + "\n\nNumbers: [30, 100, 93]\nTarget: 23")
    assert get_task("sudoku").eval_prompt(SD) == SUDOKU + "\n\nSolve the following Sudoku puzzle: 3102200002100320\n"


def test_prefill_and_compact_style():
    assert REASONING_PREFILL == "<reasoning>"
    assert all(get_task(n).eval_prefill() == "<reasoning>" for n in ("gsm8k", "math500", "countdown", "sudoku"))
    cd, sd = get_task("countdown"), get_task("sudoku")
    assert cd.train_prompt(CD, "compact") == cd.eval_prompt(CD, "compact") == "30 100 93 -> 23"
    assert sd.eval_prompt(SD, "compact") == "Sudoku 3102200002100320."
    assert cd.eval_prefill("compact") == sd.eval_prefill("compact") == ""
    assert sd.reference_completion(SD, "compact") == "<answer>3142243142131324</answer>"
    with pytest.raises(ValueError, match="valid: d1, agrpo$"):
        get_task("gsm8k").train_prompt(GSM, "compact")


# sha256 of AGRPO's prompt strings (probablyabot/agrpo@98f1182 data.py: SYSTEM_PROMPT,
# COUNTDOWN_SYSTEM_PROMPT, SUDOKU_SYSTEM_PROMPT), so a changed byte shows.
AGRPO_SHA256 = {"gsm8k": "b5bfce86f90b12205c6cb5ccc9e9a3200d50d2d09b2053fa8786e606b4d30a09",
                "math500": "b5bfce86f90b12205c6cb5ccc9e9a3200d50d2d09b2053fa8786e606b4d30a09",
                "countdown": "dbb490008b112323d677d3c81378adfce7277a23895b725d1236a8e0191977c0",
                "sudoku": "45b564f29a7ae650741bc3e6d62a822ecfbd7bdb6421e73dbd886d4a2308d6b9"}


def test_agrpo_prompts_are_a_system_turn_and_a_short_user_turn():
    import hashlib

    examples = {"gsm8k": GSM, "math500": MATH, "countdown": CD, "sudoku": SD}
    users = {"gsm8k": "How many eggs?", "math500": "What is $1/2$?", "countdown": "Target: 23\nNumbers: [30, 100, 93]",
             "sudoku": "Puzzle: 3102200002100320"}
    for name, example in examples.items():
        task = get_task(name)
        system = task.system_prompt("agrpo")
        assert hashlib.sha256(system.encode()).hexdigest() == AGRPO_SHA256[name], name
        assert task.train_prompt(example, "agrpo") == task.eval_prompt(example, "agrpo") == users[name]
        for split in ("train", "test"):
            assert task.messages(example, "agrpo", split) == [{"role": "system", "content": system},
                                                              {"role": "user", "content": users[name]}]
        assert task.eval_prefill("agrpo") == "" and task.system_prompt("d1") is None
        assert task.messages(example, "d1", "test") == [{"role": "user", "content": task.eval_prompt(example)}]
        # the reference completion of the style earns the full AGRPO reward (4.0) and scores correct
        reference = task.reference_completion(example, "agrpo")
        assert reference.startswith("<think>\n") and "</think>\n<answer>\n" in reference
        assert task.reward(reference, example, "agrpo").total == pytest.approx(4.0), name
        assert task.score(reference, example, "agrpo").correct == 1.0, name


def test_rendered_prompts_put_the_system_turn_through_the_chat_template(tokenizer):
    from dllmrl_core.drive.heldout import eval_prompts
    from dllmrl_core.models import encode_prompts
    from dllmrl_core.tasks import render_prompts

    task = get_task("countdown")
    texts = render_prompts(tokenizer, task, [CD], "agrpo", "test")
    expected = tokenizer.apply_chat_template(task.messages(CD, "agrpo", "test"), add_generation_prompt=True,
                                             tokenize=False)
    assert texts == [expected] and "Target: 23" in texts[0] and "final expression = target" in texts[0]
    # d1's prompts render exactly as before: one user turn, then the prefill
    ids, _ = eval_prompts(tokenizer, task, [CD], "d1")
    old, _ = encode_prompts(tokenizer, [task.eval_prompt(CD)], prefill="<reasoning>")
    assert ids.tolist() == old.tolist()
