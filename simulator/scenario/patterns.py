"""Index patterns: the format strings, such as `CP{index:05d}`, that number stations and tokens."""

from __future__ import annotations

import re
import string

from .base import invalid

__all__ = ["check_index_pattern", "first_duplicate"]


def check_index_pattern(pattern: str, example: str, things: str) -> str:
    """Reject a pattern that cannot number things: it must use `{index}` and nothing else."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None]
    except ValueError as exc:
        raise invalid(
            f"{pattern!r} is not a valid format string ({exc}); write a literal brace as {{{{ or "
            f"}}}}, e.g. {example!r}"
        ) from exc
    # "{index.real}" and "{index[0]}" name the field "index" too; formatting judges them below.
    names = {re.split(r"[.\[]", name, maxsplit=1)[0] for name in fields}
    if "index" not in names:
        raise invalid(
            f"{pattern!r} must contain {{index}} so that the {things} differ, e.g. {example!r}"
        )
    others = sorted(name for name in names if name != "index")
    if others:
        shown = ", ".join("{" + name + "}" for name in others)
        raise invalid(f"{pattern!r} may only use {{index}}, not {shown}")
    try:
        pattern.format(index=1)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise invalid(
            f"{pattern!r} does not format a number ({exc}); write it as {{index}} or a number "
            f"format such as {{index:05d}}"
        ) from exc
    return pattern


def first_duplicate(pattern: str, indices: range) -> tuple[int, int, str] | None:
    """Two indices that the pattern maps to the same text, if any."""
    seen: dict[str, int] = {}
    for index in indices:
        text = pattern.format(index=index)
        if text in seen:
            return seen[text], index, text
        seen[text] = index
    return None
