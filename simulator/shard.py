"""`Shard`: one of N machines (or processes) that together run one fleet.

`--shard I/N` gives shard I (0-based, as Kubernetes' JOB_COMPLETION_INDEX counts) a contiguous
block of the fleet's station indices; the N blocks are disjoint and together hold every
station exactly once, whatever N is.  Sites keep their stations: a shard runs the part of each
site that falls in its block, with arrivals scaled to the EVSEs it has, and draws its random
numbers from (seed, I), so shards do not repeat each other's EVs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Shard", "parse_shard"]

_FORM = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True, slots=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"a fleet has at least 1 shard, not {self.count}")
        if not 0 <= self.index < self.count:
            raise ValueError(
                f"shard index {self.index} is outside 0..{self.count - 1} (shards count from 0)"
            )

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def block(self, first_index: int, stations: int) -> range:
        """This shard's station indices out of `stations` indices from `first_index`."""
        start = first_index + stations * self.index // self.count
        end = first_index + stations * (self.index + 1) // self.count
        return range(start, end)


def parse_shard(text: str) -> Shard:
    """`I/N` (for example `2/8`) as a `Shard`; a ValueError says what is wrong."""
    match = _FORM.match(text.strip())
    if match is None:
        raise ValueError(f"--shard takes I/N, such as 0/4 for the first of four, not {text!r}")
    return Shard(int(match.group(1)), int(match.group(2)))
