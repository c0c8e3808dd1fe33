"""Local load balancing: a site's grid connection shared fairly, and the record of its power.

`allocate` shares a connection limit among consumers by water-filling (max-min fairness): every
consumer gets the smaller of its demand and an equal share of what is left, and the capacity a
small consumer does not need goes to the others.  That is what a local load balancer does when
it splits a connection evenly among the EVs plugged in, and no consumer can gain without taking
from one that already has less.

Exports add to the capacity: a consumer with a negative demand (an EV discharging) is granted
its export in full, and the power it feeds in is available to the others on top of the limit,
since the limit applies to the net power through the connection.  The sum of all grants, the
net power drawn through the connection, therefore stays within `limit_w`.

`allocate_by_priority` serves consumers ranked by priority, highest first, each rank sharing
fairly what the ranks above it left.

`SiteMeter` keeps a site's import and export as a step function of time, for the reports.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["SiteCapacity", "SiteMeter", "SiteSample", "allocate", "allocate_by_priority"]

K = TypeVar("K", bound=Hashable)


def allocate(demands_w: Mapping[K, float], limit_w: float | None) -> dict[K, float]:
    """Each consumer's share of a connection limited to `limit_w` (None: unlimited).

    Returns a grant per key: exports (negative demands) and zero demands as asked; positive
    demands by water-filling over `limit_w` plus the exports.  No grant exceeds its demand, the
    positive grants sum to at most the available capacity (to floating-point rounding), and
    consumers whose demand exceeds the fair share all get the same share.  Sorting makes it
    O(n log n); the result is exact, not iterated to a tolerance.
    """
    _check_demands(demands_w)
    if limit_w is None:
        return {key: float(demand_w) for key, demand_w in demands_w.items()}
    _check_limit(limit_w)
    grants: dict[K, float] = {}
    consumers: list[tuple[float, K]] = []
    available_w = float(limit_w)
    for key, demand_w in demands_w.items():
        if demand_w > 0:
            consumers.append((demand_w, key))
            grants[key] = 0.0
        else:
            grants[key] = float(demand_w)
            available_w -= demand_w
    consumers.sort(key=lambda pair: pair[0])
    left = len(consumers)
    for index, (demand_w, key) in enumerate(consumers):
        share_w = available_w / left
        if demand_w <= share_w:
            grants[key] = float(demand_w)
            available_w -= demand_w
            left -= 1
            continue
        # Every remaining consumer wants more than an equal share: they split what is left.
        for _, other in consumers[index:]:
            grants[other] = share_w
        break
    return grants


def allocate_by_priority(
    demands_w: Mapping[K, float], priorities: Mapping[K, int], limit_w: float | None
) -> dict[K, float]:
    """`allocate`, with the consumers of a higher priority (absent from `priorities`: 0)
    served first: each priority in turn, highest first, shares by water-filling what the ones
    above it left.  Exports are granted in full and add to the capacity, as in `allocate`.

    That is what a site controller does with consumers ranked from a business point of view:
    a consumer of priority 5 gets its demand before one of priority 0 gets anything, and
    consumers of one priority stay fair among themselves.  With a single priority (the usual
    case) it is `allocate` itself.
    """
    _check_demands(demands_w)
    levels = {priorities.get(key, 0) for key, demand_w in demands_w.items() if demand_w > 0}
    if limit_w is None or len(levels) <= 1:
        return allocate(demands_w, limit_w)
    _check_limit(limit_w)
    grants: dict[K, float] = {}
    available_w = float(limit_w)
    for key, demand_w in demands_w.items():
        if demand_w <= 0:
            grants[key] = float(demand_w)
            available_w -= demand_w
    for level in sorted(levels, reverse=True):
        tier = {
            key: demand_w
            for key, demand_w in demands_w.items()
            if demand_w > 0 and priorities.get(key, 0) == level
        }
        shares = allocate(tier, max(available_w, 0.0))
        grants.update(shares)
        available_w -= sum(shares.values())
    return {key: grants[key] for key in demands_w}


@dataclass(frozen=True, slots=True)
class SiteCapacity:
    """A site's grid connection limit in W; None for a connection that never limits."""

    limit_w: float | None

    def __post_init__(self) -> None:
        if self.limit_w is not None:
            _check_limit(self.limit_w)

    @classmethod
    def from_kw(cls, limit_kw: float | None) -> SiteCapacity:
        """From a limit in kW, the unit site connections are rated in."""
        return cls(None if limit_kw is None else limit_kw * 1000.0)

    @property
    def unlimited(self) -> bool:
        return self.limit_w is None

    def allocate(self, demands_w: Mapping[K, float]) -> dict[K, float]:
        """`allocate(demands_w, self.limit_w)`."""
        return allocate(demands_w, self.limit_w)


@dataclass(frozen=True, slots=True)
class SiteSample:
    """From `time_s` until the next sample, the site imports `import_w` and exports `export_w`."""

    time_s: float
    import_w: float
    export_w: float


class SiteMeter:
    """A site's import and export power as a step function of simulated time.

    `record` stores a change; a record that changes nothing is dropped, and a second record at
    the same instant replaces the first (the state after all changes at an instant is what
    holds from it on).  So the samples are exactly the steps a report needs to draw, and
    energies follow by summing rectangles.
    """

    __slots__ = ("_samples",)

    def __init__(self) -> None:
        self._samples: list[SiteSample] = []

    def record(self, t_s: float, import_w: float, export_w: float) -> None:
        """From `t_s` on, the site imports `import_w` and exports `export_w` (both >= 0)."""
        if not math.isfinite(t_s):
            raise ValueError(f"t_s must be a finite number of seconds, got {t_s!r}")
        for name, power_w in (("import_w", import_w), ("export_w", export_w)):
            if not (power_w >= 0 and math.isfinite(power_w)):
                raise ValueError(
                    f"{name} must be a finite number of W >= 0 (import and export are "
                    f"recorded separately), got {power_w!r}"
                )
        samples = self._samples
        if samples and t_s < samples[-1].time_s:
            raise ValueError(
                f"record at {t_s!r} s after one at {samples[-1].time_s!r} s: a meter records "
                "in time order"
            )
        if samples and samples[-1].time_s == t_s:
            samples.pop()
        if samples and (samples[-1].import_w, samples[-1].export_w) == (import_w, export_w):
            return
        samples.append(SiteSample(t_s, float(import_w), float(export_w)))

    def samples(self) -> list[SiteSample]:
        """The steps, in time order."""
        return list(self._samples)

    def at(self, t_s: float) -> SiteSample | None:
        """The step in effect at `t_s`; None before the first record."""
        index = bisect_right(self._samples, t_s, key=lambda sample: sample.time_s)
        return self._samples[index - 1] if index else None

    def energy_wh(self, end_s: float) -> tuple[float, float]:
        """(imported Wh, exported Wh) from the first record up to `end_s`."""
        import_j = export_j = 0.0
        samples = self._samples
        for index, sample in enumerate(samples):
            if sample.time_s >= end_s:
                break
            next_s = samples[index + 1].time_s if index + 1 < len(samples) else end_s
            span_s = min(next_s, end_s) - sample.time_s
            import_j += sample.import_w * span_s
            export_j += sample.export_w * span_s
        return import_j / 3600.0, export_j / 3600.0


def _check_demands(demands_w: Mapping[Any, float]) -> None:
    for key, demand_w in demands_w.items():
        if not math.isfinite(demand_w):
            raise ValueError(f"demand of {key!r} must be a finite number of W, got {demand_w!r}")


def _check_limit(limit_w: float) -> None:
    if not (limit_w >= 0 and math.isfinite(limit_w)):
        raise ValueError(f"a site limit must be a finite number of W >= 0, got {limit_w!r}")
