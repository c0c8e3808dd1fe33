"""Index patterns judged without formatting every index: a pattern that writes the index as an
integer is judged from a few texts, and that judgement is the one formatting every text gives."""

from __future__ import annotations

import itertools

import pytest

from fleetsim.simulator.scenario import StationsSettings, patterns
from fleetsim.simulator.scenario.patterns import (
    first_duplicate,
    survey_every_index,
    survey_index_pattern,
)

#: Ranges that cross the places where a number gains a digit, in every base.
RANGES = (
    range(0, 20),
    range(60, 70),
    range(95, 105),
    range(250, 260),
    range(995, 1030),
    range(4090, 4100),
    range(65530, 65540),
    range(7, 8),
)


def _specs() -> list[str]:
    """Format specs of every shape the short way accepts, and of shapes it must leave alone."""
    found = []
    for fill, align, sign, alternate, zero, width, grouping, kind in itertools.product(
        ("", "0", " ", "*", "1", "a"),
        ("", ">", "=", "<", "^"),
        ("", "+", " "),
        ("", "#"),
        ("", "0"),
        ("", "3", "7"),
        ("", ",", "_"),
        ("", "d", "x", "o", "b"),
    ):
        if fill and not align:
            continue
        spec = fill + align + sign + alternate + zero + width + grouping + kind
        try:
            format(1, spec)
        except ValueError:
            continue
        found.append(spec)
    return found


def _not_digits(characters: frozenset[str]) -> set[str]:
    return {c for c in characters if not (c.isascii() and c.isalnum())}


def test_the_short_way_agrees_with_formatting_every_index() -> None:
    """Every shape the short way takes is checked against the long way, over ranges where the
    numbers gain digits: same duplicates, same longest text, same characters other than the
    number's own digits (letters and digits, which no check refuses)."""
    short = 0
    for spec in _specs():
        for pattern in (f"{{index:{spec}}}", f"A{{index:{spec}}}:{{index:{spec}}}b"):
            if not patterns._writes_exact_integers(pattern):
                continue
            short += 1
            for indices in RANGES:
                quick = survey_index_pattern(pattern, indices)
                every = survey_every_index(pattern, indices)
                assert (quick.longest, quick.duplicate) == (every.longest, every.duplicate), (
                    pattern,
                    indices,
                )
                assert quick.characters <= every.characters
                assert _not_digits(quick.characters) == _not_digits(every.characters)
    assert short > 300


@pytest.mark.parametrize(
    ("pattern", "duplicate"),
    [
        # Padding on the right or around, or with a fill that reads as a digit, makes two
        # numbers one text: these are judged the long way, which finds it.
        ("{index:0<3}", (1, 10, "100")),
        ("{index:0^5d}", (10, 100, "01000")),
        ("{index:1>3d}", (1, 11, "111")),
        ("{index:a>3x}", (1, 161, "aa1")),
        ("{index:.0e}", (10, 11, "1e+01")),
        ("{index!s:.2}", (10, 100, "10")),
        ("{index:x}-{index:d}", None),
    ],
)
def test_patterns_that_may_repeat_are_judged_the_long_way(
    pattern: str, duplicate: tuple[int, int, str] | None
) -> None:
    assert not patterns._writes_exact_integers(pattern)
    assert survey_index_pattern(pattern, range(1, 3000)).duplicate == duplicate
    assert first_duplicate(pattern, range(1, 3000)) == duplicate


def test_ten_million_station_ids_are_judged_from_a_few(monkeypatch: pytest.MonkeyPatch) -> None:
    def every_index(pattern: str, indices: range) -> None:
        raise AssertionError(f"formatted every one of {len(indices):,} ids of {pattern!r}")

    monkeypatch.setattr(patterns, "survey_every_index", every_index)
    stations = StationsSettings(count=10_000_000, id_pattern="DE*ACM*E{index:07d}")
    assert stations.station_id(10_000_000) == "DE*ACM*E10000000"
    with pytest.raises(ValueError, match=r"station id 'X+10000000' has 53 characters"):
        StationsSettings(count=10_000_000, id_pattern="X" * 45 + "{index}")
    with pytest.raises(ValueError, match=r"station ids would contain ' '"):
        StationsSettings(count=10_000_000, id_pattern="{index:9d}")
