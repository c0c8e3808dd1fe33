"""The garbage collector, managed for a fleet of long-lived objects.

A fleet allocates most of its objects once (stations, device models, connections) and then
churns small short-lived ones per message.  CPython's default generation-0 threshold of 700
allocations makes the collector walk the young generation thousands of times a second under
load, and every full collection walks every station again.  After start-up `tune_collector`
moves everything alive into the permanent generation (`gc.freeze()`), which collections skip,
and raises the thresholds so that young collections run less often.  Reference cycles are
still collected; fewer, larger collections cost less in total.
"""

from __future__ import annotations

import gc

__all__ = ["GEN0_THRESHOLD", "tune_collector"]

#: Allocations between young-generation collections (CPython's default is 700).
GEN0_THRESHOLD = 50_000


def tune_collector() -> None:
    """Freeze what is alive now and collect less often from here on."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
