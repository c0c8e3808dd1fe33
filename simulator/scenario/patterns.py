"""Index patterns: the format strings, such as `CP{index:05d}`, that number stations and tokens.

A fleet of ten million stations must not format ten million ids to learn that they differ:
a pattern whose every field writes the index as a plain integer (`{index}`, `{index:05d}`,
`{index:#x}`, padded on the left) is known to give distinct texts whose length grows with the
index, so the first and last index say everything that matters (which characters appear, how
long the longest text is) in a few formats.  Any other pattern (`{index:.0e}`, centred,
truncated) is checked by formatting every index.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from .base import invalid

__all__ = [
    "IndexTexts",
    "check_index_pattern",
    "first_duplicate",
    "survey_every_index",
    "survey_index_pattern",
]

#: The standard format spec: [[fill]align][sign][z][#][0][width][grouping][.precision][type].
_FORMAT_SPEC = re.compile(
    r"(?:(?P<fill>.)?(?P<align>[<>=^]))?(?P<sign>[-+ ])?(?P<z>z)?(?P<alternate>#)?(?P<zero>0)?"
    r"(?P<width>\d+)?(?P<grouping>[,_])?(?:\.(?P<precision>\d+))?(?P<type>[bcdeEfFgGnosxX%])?",
    re.DOTALL,
)
#: Presentation types that write an integer exactly, one text per number.
_EXACT_INTEGER_TYPES = frozenset({None, "d", "x", "X", "o", "b"})
#: Fill characters that could be read as part of the number they pad.
_CONFUSABLE_FILLS = frozenset("123456789abcdefABCDEFxXoObB+-")


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
    if indices.start >= 0 and indices.step == 1 and _writes_exact_integers(pattern):
        return None
    seen: dict[str, int] = {}
    for index in indices:
        text = pattern.format(index=index)
        if text in seen:
            return seen[text], index, text
        seen[text] = index
    return None


@dataclass(frozen=True, slots=True)
class IndexTexts:
    """What a pattern makes of a range of indices, as far as checking the texts needs."""

    #: Every character some text uses that is not one of the number's own digits (those are
    #: letters and digits, which any id may hold); the digits of some texts may be missing.
    characters: frozenset[str]
    #: The first of the longest texts.
    longest: str
    #: Two indices that give the same text, and that text; None when every text differs.
    duplicate: tuple[int, int, str] | None


def _writes_exact_integers(pattern: str) -> bool:
    """Whether every field of `pattern` is the same `{index}` or `{index:spec}` with a spec that
    writes the integer exactly, padded on its left: then different indices give different texts
    (their numbers differ where the padding ends), and, indices being at least 0, no text is
    shorter than the one of a smaller index."""
    specs = {
        (name, spec, conversion)
        for _, name, spec, conversion in string.Formatter().parse(pattern)
        if name is not None
    }
    if len(specs) != 1:
        return False
    ((name, spec, conversion),) = specs
    if name != "index" or conversion is not None:
        return False
    match = _FORMAT_SPEC.fullmatch(spec or "")
    if match is None or match["precision"] is not None or match["z"] is not None:
        return False
    if match["type"] not in _EXACT_INTEGER_TYPES or match["align"] not in (None, ">", "="):
        return False
    return match["fill"] not in _CONFUSABLE_FILLS


def survey_index_pattern(pattern: str, indices: range) -> IndexTexts:
    """The characters, the longest text and any duplicate of `pattern` over `indices` (not
    empty, from 0 up): from a few texts when the pattern writes exact integers, else from
    every one."""
    if indices.start >= 0 and indices.step == 1 and _writes_exact_integers(pattern):
        first = pattern.format(index=indices[0])
        last = pattern.format(index=indices[-1])
        # Lengths never fall as the index grows: look for the first text as long as the last.
        low, high = 0, len(indices) - 1
        while low < high:
            middle = (low + high) // 2
            if len(pattern.format(index=indices[middle])) < len(last):
                low = middle + 1
            else:
                high = middle
        return IndexTexts(
            frozenset(first) | frozenset(last), pattern.format(index=indices[low]), None
        )
    return survey_every_index(pattern, indices)


def survey_every_index(pattern: str, indices: range) -> IndexTexts:
    """`survey_index_pattern` the long way, formatting every index (any pattern)."""
    first_index_of: dict[str, int] = {}
    characters: set[str] = set()
    duplicate: tuple[int, int, str] | None = None
    for index in indices:
        text = pattern.format(index=index)
        if text in first_index_of:
            duplicate = duplicate or (first_index_of[text], index, text)
        else:
            first_index_of[text] = index
        characters.update(text)
    return IndexTexts(frozenset(characters), max(first_index_of, key=len), duplicate)
