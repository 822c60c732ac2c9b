"""The rewards a generic task (`generic.py`) picks from by name, each `(completion, example) -> float`
in [0, 1]. A user's own reward is any such function, named `module:function`.

    exact_match    the extracted answer equals the reference, whitespace trimmed
    numeric_match  both are numbers and agree (relative tolerance 1e-6), thousands separators,
                   `$` and `%` ignored
    math_verify    Math-Verify equivalence of the extracted answer and the reference (LaTeX or plain)
    format_tags    the completion holds exactly one <tag>...</tag> block of the answer tag
    code_tests     the extracted code, followed by the reference (unit tests: asserts), exits 0 in
                   a fresh Python subprocess, isolated (-I), in an empty temporary directory, under
                   the time limit `code_timeout_s` and a 1 GiB address-space limit

"The extracted answer" is the text of the last <tag>...</tag> block when the task names an answer
tag (nothing, if there is none), otherwise the whole completion; `code_tests` takes the last
```python fenced block of that text when there is one.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dllmrl_core.tasks.equivalence import math_equivalent, numbers_close, parse_plain_number

CODE_MEMORY_BYTES = 1 << 30
_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class GenericExample:
    """One row of a generic task: the prompt and reference answer (as text) and the row's other
    columns, which a prompt template or a user's reward may read."""

    id: str
    prompt: str
    answer: str
    fields: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Extraction:
    """How a reward reads a completion: the answer tag (None = the whole text) and the code time limit."""

    answer_tag: str | None = "answer"
    code_timeout_s: float = 5.0

    def answer(self, completion: str) -> str | None:
        if self.answer_tag is None:
            return completion.strip()
        tag = re.escape(self.answer_tag)
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", completion, re.DOTALL)
        return blocks[-1].strip() if blocks else None


Reward = Callable[[str, GenericExample], float]


def exact_match(completion: str, example: GenericExample, how: Extraction) -> float:
    answer = how.answer(completion)
    return float(answer is not None and answer == example.answer.strip())


def numeric_match(completion: str, example: GenericExample, how: Extraction) -> float:
    answer = how.answer(completion)
    got = None if answer is None else parse_plain_number(answer)
    want = parse_plain_number(example.answer)
    return float(got is not None and want is not None and numbers_close(got, want))


def math_verify(completion: str, example: GenericExample, how: Extraction) -> float:
    answer = how.answer(completion)
    return float(answer is not None and math_equivalent(answer, example.answer))


def format_tags(completion: str, example: GenericExample, how: Extraction) -> float:
    if how.answer_tag is None:
        return 1.0
    tag = re.escape(how.answer_tag)
    return float(len(re.findall(rf"<{tag}>.*?</{tag}>", completion, re.DOTALL)) == 1)


def code_tests(completion: str, example: GenericExample, how: Extraction) -> float:
    answer = how.answer(completion)
    if answer is None:
        return 0.0
    fenced = _FENCE.findall(answer)
    code = (fenced[-1] if fenced else answer) + "\n\n" + example.answer + "\n"
    return float(run_sandboxed(code, how.code_timeout_s))


def run_sandboxed(code: str, timeout_s: float) -> bool:
    """Whether `code` exits 0 in an isolated Python subprocess within the limits (a timeout = False)."""
    with tempfile.TemporaryDirectory(prefix="dllmrl-code-") as tmp:
        script = Path(tmp) / "candidate.py"
        script.write_text(code)
        try:
            done = subprocess.run([sys.executable, "-I", "-S", str(script)], cwd=tmp, capture_output=True,
                                  timeout=timeout_s, preexec_fn=_limit_memory, env={"PATH": "/usr/bin:/bin"})
        except subprocess.TimeoutExpired:
            return False
    return done.returncode == 0


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (CODE_MEMORY_BYTES, CODE_MEMORY_BYTES))


LIBRARY: dict[str, Callable[[str, GenericExample, Extraction], float]] = {
    "exact_match": exact_match, "numeric_match": numeric_match, "math_verify": math_verify,
    "format_tags": format_tags, "code_tests": code_tests,
}
