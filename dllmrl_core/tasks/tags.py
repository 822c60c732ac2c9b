"""`<reasoning>` / `<answer>` tag handling shared by the tasks, in linear time on any input.

d1 matches these tags with Python regexes such as `<answer>(.*?)</answer>`; on adversarial text
(thousands of unclosed tags) those backtrack quadratically. Every function here returns exactly
what the named d1 regex or string operation returns, using `str.find` scans instead (the test suite
checks them against the original regexes on random tag soup).
"""

from __future__ import annotations

import re

from dllmrl_core.tasks.hendrycks import balanced_boxed

OPEN, CLOSE = "<answer>", "</answer>"
R_OPEN, R_CLOSE = "<reasoning>", "</reasoning>"
_WS = re.compile(r"\s*")


def ws_end(text: str, pos: int, end: int | None = None) -> int:
    """End of the whitespace run starting at pos (regex `\\s*`)."""
    return _WS.match(text, pos, len(text) if end is None else end).end()


class NextIndex:
    """`text.find(needle, pos)` for non-decreasing pos, each character scanned once overall."""

    def __init__(self, text: str, needle: str):
        self.text, self.needle, self.found = text, needle, -2

    def at(self, pos: int) -> int:
        if self.found == -1 or self.found >= pos:
            return self.found
        self.found = self.text.find(self.needle, pos)
        return self.found


def xml_answer(text: str) -> str:
    """d1 `extract_xml_answer`: after the last `<answer>`, up to the next `</answer>`, stripped.

    Quirk: without any `<answer>` the whole text (stripped) is the answer.
    """
    i = text.rfind(OPEN)
    rest = text if i < 0 else text[i + len(OPEN):]
    j = rest.find(CLOSE)
    return (rest if j < 0 else rest[:j]).strip()


def first_answer_block(text: str) -> str | None:
    """`re.search(r"<answer>(.*?)</answer>", text, re.DOTALL).group(1)` (unstripped), or None."""
    i = text.find(OPEN)
    if i < 0:
        return None
    j = text.find(CLOSE, i + len(OPEN))
    return None if j < 0 else text[i + len(OPEN):j]


def last_answer_block(text: str) -> str | None:
    """`re.findall(r"<answer>(.*?)</answer>", text, re.DOTALL)[-1]` (unstripped), or None."""
    last, pos = None, 0
    while True:
        i = text.find(OPEN, pos)
        if i < 0:
            return last
        j = text.find(CLOSE, i + len(OPEN))
        if j < 0:
            return last
        last, pos = text[i + len(OPEN):j], j + len(CLOSE)


def answer_section(text: str) -> tuple[bool, str]:
    """d1 math500_utils `boxed_in_answer`: `text.split("<answer>")[1].split("</answer>")[0]`, i.e.
    (True, text from the first `<answer>` to the next `<answer>` or `</answer>`), or (False, text)."""
    i = text.find(OPEN)
    if i < 0:
        return False, text
    start = i + len(OPEN)
    ends = [j for j in (text.find(OPEN, start), text.find(CLOSE, start)) if j >= 0]
    return True, text[start:min(ends)] if ends else text[start:]


# --- d1 format rewards (diffu-grpo/reward_func.py, from Will Brown's GRPO demo) -----------------

def xmlcount_d1(text: str) -> float:
    """d1 `count_xml`: 0.125 per tag string occurring exactly once, minus trailing-text penalties.

    Quirks kept: the `"\\n<answer>\\n"` term subtracts 0.001 per character after the last
    `"\\n</answer>\\n"` that `str.split` finds, which is the *whole text* when the completion ends in
    `"\\n</answer>"` without a newline, and skips a second separator sharing the first one's newline
    (`"\\n</answer>\\n</answer>\\n"` leaves `"</answer>\\n"`, 10 characters); the `"\\n</answer>"` term
    subtracts 0.001 per (characters after it - 1), so ending exactly on `"\\n</answer>"` earns +0.001.
    """
    count = 0.0
    if text.count("<reasoning>\n") == 1:
        count += 0.125
    if text.count("\n</reasoning>\n") == 1:
        count += 0.125
    if text.count("\n<answer>\n") == 1:
        count += 0.125
        count -= _chars_after_last(text, "\n</answer>\n") * 0.001
    if text.count("\n</answer>") == 1:
        count += 0.125
        count -= (_chars_after_last(text, "\n</answer>") - 1) * 0.001
    return count


def _chars_after_last(text: str, sep: str) -> int:
    """len(text.split(sep)[-1]): the characters after the last separator that `str.split`'s
    left-to-right scan finds. The scan never reuses a character, so of two occurrences of
    "\\n</answer>\\n" that share a newline only the first counts (`rfind` would find the second)."""
    end, i = 0, text.find(sep)
    while i >= 0:
        end = i + len(sep)
        i = text.find(sep, end)
    return len(text) - end


def xmlcount_fixed(text: str) -> float:
    """The same tag counts; text after the final `</answer>` (ignoring surrounding whitespace)
    costs 0.001 per character, counted once and capped at 0.25."""
    tag_strings = ("<reasoning>\n", "\n</reasoning>\n", "\n<answer>\n", "\n</answer>")
    count = 0.125 * sum(text.count(t) == 1 for t in tag_strings)
    i = text.rfind(CLOSE)
    if i >= 0:
        count -= min(0.25, 0.001 * len(text[i + len(CLOSE):].strip()))
    return count


def soft_format_d1(text: str) -> bool:
    """`re.match(r"<reasoning>.*?</reasoning>\\s*<answer>.*?</answer>", text)` without DOTALL.

    Quirk: `.` cannot cross a newline, so reasoning must sit on the first line and the answer on
    one line; multi-line reasoning never earns this reward.
    """
    if not text.startswith(R_OPEN):
        return False
    first_nl = text.find("\n")
    line_end = len(text) if first_nl < 0 else first_nl
    closes, newlines = NextIndex(text, CLOSE), NextIndex(text, "\n")
    p = text.find(R_CLOSE, len(R_OPEN))
    while 0 <= p < line_end:
        q = ws_end(text, p + len(R_CLOSE))
        if text.startswith(OPEN, q):
            c, nl = closes.at(q + len(OPEN)), newlines.at(q + len(OPEN))
            if c >= 0 and (nl < 0 or nl > c):
                return True
        p = text.find(R_CLOSE, p + 1)
    return False


def soft_format_dotall(text: str) -> bool:
    """The soft format with re.DOTALL (multi-line reasoning and answers allowed)."""
    if not text.startswith(R_OPEN):
        return False
    last_close = text.rfind(CLOSE)
    p = text.find(R_CLOSE, len(R_OPEN))
    while p >= 0:
        q = ws_end(text, p + len(R_CLOSE))
        if text.startswith(OPEN, q) and last_close >= q + len(OPEN):
            return True
        p = text.find(R_CLOSE, p + 1)
    return False


def strict_format_d1(text: str) -> bool:
    """`re.match(r"^<reasoning>\\n.*?\\n</reasoning>\\n<answer>\\n.*?\\n</answer>\\n$", text)`.

    Quirk: without DOTALL the reasoning and the answer must each be exactly one line. `$` also
    matches before a final newline, so one extra trailing "\\n" is accepted.
    """
    if text.count("\n") not in (6, 7):
        return False
    lines = text.split("\n")
    return (lines[0] == R_OPEN and lines[2] == R_CLOSE and lines[3] == OPEN and lines[5] == CLOSE
            and all(line == "" for line in lines[6:]))


def strict_format_dotall(text: str) -> bool:
    """The strict format with re.DOTALL: any reasoning and answer text between the exact tags."""
    head, sep = R_OPEN + "\n", "\n" + R_CLOSE + "\n" + OPEN + "\n"
    if not text.startswith(head):
        return False
    for tail in ("\n" + CLOSE + "\n", "\n" + CLOSE + "\n\n"):
        if text.endswith(tail) and text.find(sep, len(head), len(text) - len(tail)) >= 0:
            return True
    return False


def boxed_or_last_answer(text: str) -> str | None:
    """The "fixed" protocols' answer: the last balanced `\\boxed{...}`, else the last `<answer>`
    block, stripped; None when there is neither."""
    boxed = balanced_boxed(text)
    if boxed is not None:
        return boxed.strip()
    block = last_answer_block(text)
    return None if block is None else block.strip()
