"""`\\boxed{}` extraction and Hendrycks-style answer normalisation, as d1 uses them.

Behaviour of d1 `diffu-grpo/math500_utils.py` and `eval/parser_helper.py` (both descend from the
MATH benchmark's `math_equivalence.py`), re-implemented: where the original raises (an assertion
or an index error), `strip_string` raises `Unnormalisable` and `is_equiv` falls back to comparing
the raw strings, exactly as d1's `except` clause does.
"""

from __future__ import annotations

import re

_BRACES = re.compile(r"[{}]")


class Unnormalisable(ValueError):
    """strip_string hit a case where the reference implementation raises."""


def last_boxed_only_string(text: str) -> str | None:
    """The last `\\boxed{...}` / `\\fbox{...}` with its wrapper, per d1 `last_boxed_only_string`.

    Quirks kept: if `"\\boxed "` (with a space) occurs anywhere, the answer is everything after its
    last occurrence up to a `$`; with no box at all the *whole text* is returned; an unclosed box
    gives None.
    """
    if "\\boxed " in text:
        return "\\boxed " + text.split("\\boxed ")[-1].split("$")[0]
    idx = text.rfind("\\boxed")
    if idx < 0:
        idx = text.rfind("\\fbox")
        if idx < 0:
            return text
    depth = 0
    for m in _BRACES.finditer(text, idx):
        if m.group() == "{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return text[idx:m.end()]
    return None


def remove_boxed(boxed: str) -> str:
    """Strip the `\\boxed ` / `\\boxed{...}` wrapper; anything else is returned unchanged
    (so an `\\fbox{...}` keeps its wrapper, as in d1)."""
    if "\\boxed " in boxed:
        return boxed[len("\\boxed "):]
    if boxed.startswith("\\boxed{") and boxed.endswith("}"):
        return boxed[len("\\boxed{"):-1]
    return boxed


def has_box(text: str) -> bool:
    """Whether last_boxed_only_string finds a box (otherwise it returns the whole text)."""
    return "\\boxed" in text or "\\fbox" in text


def boxed_answer(text: str) -> str | None:
    """`remove_boxed(last_boxed_only_string(text))`, None where d1 raises (an unclosed box)."""
    boxed = last_boxed_only_string(text)
    return None if boxed is None else remove_boxed(boxed)


def balanced_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` with balanced braces, or None (the "fixed" extractor).

    An unclosed box is skipped for the one before it. A box that is still open where a later
    (unclosed) box starts can never close either, so each scan stops there: linear time overall.
    """
    stop = len(text)
    idx = text.rfind("\\boxed{")
    while idx >= 0:
        depth = 0
        for m in _BRACES.finditer(text, idx + len("\\boxed"), stop):
            depth += 1 if m.group() == "{" else -1
            if depth == 0:
                return text[idx + len("\\boxed{"):m.start()]
        stop = idx
        idx = text.rfind("\\boxed{", 0, idx)
    return None


def _fix_fracs(s: str) -> str:
    """`\\frac12` -> `\\frac{1}{2}`, `\\frac1{72}` -> `\\frac{1}{72}`; a one-character tail makes
    the whole input come back unchanged; an empty tail raises (both as in the reference)."""
    pieces = s.split("\\frac")
    out = [pieces[0]]
    for piece in pieces[1:]:
        out.append("\\frac")
        if piece == "":
            raise Unnormalisable("\\frac at the end")
        if piece[0] == "{":
            out.append(piece)
            continue
        if len(piece) < 2:
            return s
        a, b, rest = piece[0], piece[1], piece[2:]
        out.append("{" + a + "}{" + b + "}" + rest if b != "{" else "{" + a + "}" + b + rest)
    return "".join(out)


def _fix_a_slash_b(s: str) -> str:
    """`3/4` -> `\\frac{3}{4}` for canonical integers; non-integers raise (the reference's int())."""
    parts = s.split("/")
    if len(parts) != 2:
        return s
    try:
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        raise Unnormalisable("a/b with a non-integer side") from None
    return "\\frac{" + str(a) + "}{" + str(b) + "}" if s == f"{a}/{b}" else s


def _remove_right_units(s: str) -> str:
    if "\\text{ " not in s:
        return s
    parts = s.split("\\text{ ")
    if len(parts) != 2:
        raise Unnormalisable("several \\text{ units")
    return parts[0]


def _fix_sqrt(s: str) -> str:
    if "\\sqrt" not in s:
        return s
    pieces = s.split("\\sqrt")
    out = [pieces[0]]
    for piece in pieces[1:]:
        if piece == "":
            raise Unnormalisable("\\sqrt at the end")
        out.append("\\sqrt" + piece if piece[0] == "{" else "\\sqrt{" + piece[0] + "}" + piece[1:])
    return "".join(out)


def strip_string(s: str) -> str:
    """Hendrycks MATH normalisation (d1 math500_utils `strip_string`), step by step."""
    s = s.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "")
    s = s.replace("\\$", "")
    s = _remove_right_units(s)
    s = s.replace("\\%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    halves = s.split("=")
    if len(halves) == 2 and len(halves[0]) <= 2:
        s = halves[1]
    s = _fix_sqrt(s)
    s = s.replace(" ", "")
    s = _fix_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _fix_a_slash_b(s)


def is_equiv(a: str | None, b: str | None) -> bool:
    """d1 `is_equiv`: equal after strip_string; raw equality when normalisation fails."""
    if a is None or b is None:
        return a is None and b is None
    try:
        return strip_string(a) == strip_string(b)
    except Unnormalisable:
        return a == b
