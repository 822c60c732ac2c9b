"""d1's prompt strings, byte for byte (whitespace matters for tokenisation).

Training prompts: d1 `diffu-grpo/data_utils.py`. Evaluation prompts: d1 `eval/gsm8k.py`,
`eval/math500.py`, `eval/countdown.py`, `eval/sudoku.py` (the evaluation user message is
`<system prompt> + "\\n\\n" + <question>`, see `GSM8KDataset.create_prompt`). Every prompt is the
single user turn of a chat; at evaluation d1 appends "<reasoning>" after the rendered template.
"""

from __future__ import annotations

# --- training (data_utils.py) ---------------------------------------------------------------------

TRAIN_FORMAT = "\nRespond in the following format:\n<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>\n"

SUDOKU_INSTRUCTIONS = (
    "\nPlease solve the following 4x4 Sudoku puzzle. The puzzle is provided as a 16-character string "
    "reading left-to-right, top-to-bottom, where '0' represents empty cells.\n"
    "\n"
    "Rules:\n"
    "- Fill empty cells with digits 1-4\n"
    "- Each row must contain digits 1-4 exactly once\n"
    "- Each column must contain digits 1-4 exactly once\n"
    "- Each 2x2 box must contain digits 1-4 exactly once\n"
    "\n"
    "Important: Your solution must be a COMPLETE 16-character string with only the digits 1-4, "
    "representing your final solved grid.\n"
    "\n"
    "Respond in this exact format:\n"
    "<reasoning>\n"
    "Your step-by-step solving process\n"
    "</reasoning>\n"
    "<answer>\n"
    "[16-character solution string with no spaces or separators]\n"
    "</answer>\n"
)

COUNTDOWN_TRAIN_TEMPLATE = (
    TRAIN_FORMAT
    + "\nUsing only the numbers {numbers}, create an arithmetic expression that evaluates to exactly "
    "{target}. You must use all numbers from the list, and each number must be used exactly once. "
    "You may use the operations +, -, *, and / as needed. After reasoning, provide only your final "
    "expression inside <answer></answer> tags without including an equals sign or the target number. "
    "For example, if the numbers are [2, 3, 4] and the target is 5, a valid answer is: "
    "<answer>\n2*4-3\n</answer>"
)

MATH_TRAIN_INSTRUCTION = (
    "You are a math expert. You will be given a question to solve. Solve it step by step. "
    "Wrap the final answer in a \\boxed{}. \n\n"
)

# --- evaluation (eval/*.py) -----------------------------------------------------------------------

_EVAL_FORMAT = (
    "Respond in the following format:\n<reasoning>\nYour reasoning here\n</reasoning>\n"
    "<answer>\n\\boxed{...}\n</answer>"
)

GSM8K_EVAL_SYSTEM = (
    "You are a math expert. You will be given a question to solve. Solve it step by step. "
    "Wrap the final answer in a \\boxed{}. \n" + _EVAL_FORMAT
)

# d1's MATH-500 prompt really ends in a stray quote, a space and a newline.
MATH500_EVAL_SYSTEM = (
    "You are a math expert. You will be given a question to solve. Solve it step by step. "
    "Wrap the final answer in a \\boxed{}.\n" + _EVAL_FORMAT + '" \n'
)

# No separator between the example and "Respond": d1 concatenates the pieces directly.
COUNTDOWN_EVAL_SYSTEM = (
    "Using only the provided numbers, create an arithmetic expression that evaluates to exactly the "
    "provided target number. You may use the operations +, -, *, and / as needed, but each number must "
    "be used exactly once. Think step-by-step. After reasoning, provide only your final expression "
    "inside \\boxed{} tags without including an equals sign or the target number. For example: "
    "\\boxed{a + b * c}" + _EVAL_FORMAT
)

SUDOKU_EVAL_SYSTEM = SUDOKU_INSTRUCTIONS


def eval_user_message(system: str, question: str) -> str:
    """d1 `create_prompt` with zero-shot: system prompt, blank line, question."""
    return system + "\n\n" + question
