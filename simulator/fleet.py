"""`Fleet`: builds the stations of a run, ramps them up, and keeps any one from sinking the rest.

Stations start at the scenario's ramp-up rate, in batches every 10 ms of wall time, so 10,000
stations at 1,000 per second do not open 10,000 sockets in the same instant.  Each station runs
under a supervisor that counts an unexpected error (by type, in
`fleetsim_station_failures_total`), keeps the first message of each kind for the summary, and
lets the rest of the fleet go on; cancellation passes through untouched.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import trio

from .station import Connect, Station

__all__ = ["Fleet", "StationFailure"]

_RAMP_TICK_S = 0.01


@dataclass(frozen=True, slots=True)
class StationFailure:
    station_id: str
    error: str


class Fleet:
    """The stations of one process, started at `ramp_up_per_s` and supervised."""

    def __init__(
        self,
        stations: list[Station],
        connect: Connect,
        ramp_up_per_s: float,
        *,
        after_ramp_up: Callable[[], None] | None = None,
    ) -> None:
        self.stations = stations
        #: Called once every station has been started (run.py tunes the collector there).
        self.after_ramp_up = after_ramp_up
        self.connect = connect
        self.ramp_up_per_s = ramp_up_per_s
        #: The first failure of each kind (exception type), for the summary.
        self.failures: list[StationFailure] = []
        self._failure_kinds: set[str] = set()
        self._started = 0

    @property
    def started(self) -> int:
        """How many stations have been started so far."""
        return self._started

    async def run(self) -> None:
        """Start every station at the ramp-up rate and run them until cancelled."""
        async with trio.open_nursery() as nursery:
            ramp_start = trio.current_time()
            total = len(self.stations)
            while self._started < total:
                due = min(
                    total,
                    max(1, math.floor((trio.current_time() - ramp_start) * self.ramp_up_per_s)),
                )
                while self._started < due:
                    nursery.start_soon(self._supervise, self.stations[self._started])
                    self._started += 1
                if self._started < total:
                    await trio.sleep(_RAMP_TICK_S)
            if self.after_ramp_up is not None:
                self.after_ramp_up()

    async def _supervise(self, station: Station) -> None:
        try:
            await station.run(self.connect)
        except Exception as group:
            exc = _first_leaf(group)
            station.stats.station_failed(exc)
            kind = type(exc).__name__
            if kind not in self._failure_kinds:
                self._failure_kinds.add(kind)
                self.failures.append(StationFailure(station.id, f"{kind}: {exc}"))


def _first_leaf(error: BaseException) -> BaseException:
    """The first real error inside the exception groups that trio's nurseries wrap it in."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error
