"""`Fleet`: builds the stations of a run, ramps them up, and keeps any one from sinking the rest.

Stations start at the scenario's ramp-up rate, in batches every 10 ms of wall time, so 10,000
stations at 1,000 per second do not open 10,000 sockets in the same instant.  Each station runs
under a supervisor that counts an unexpected error (by type, in
`fleetsim_station_failures_total`), keeps the first message of each kind for the summary, and
lets the rest of the fleet go on; cancellation passes through untouched.

The ramp adapts to how connections open (`Ramp`).  On a machine that is busy with other
work, or against a CSMS that answers slowly, opening thousands of connections at the written
rate can make handshakes time out; the stations retry, and the retries add to the load: a
reconnect storm of the simulator's own making, blamed on the CSMS.  So a process lets only so
many handshakes run at once (a slot each; a station that waits for a slot has not started
connecting, and its connect timeout has not started either), halves its start rate when
handshakes time out, holds it while they are slow, and wins it back step by step once they
are quick again (AIMD, as TCP does with its window: a loss cuts it, delay only stops it
growing).  Slow handshakes alone never cut it: in a process its own booted stations keep
busy, every handshake waits on the same event loop whatever the start rate, and a cut would
only throttle the ramp.  Nothing of this runs per message: a slot is taken once per
connection, and the rate is reconsidered by the ramp's own loop, which ends with the ramp.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType

import trio

from .link import ConnectError, Link
from .station import Connect, Station
from .stats import RunStats

__all__ = ["Fleet", "Ramp", "StationFailure"]

_RAMP_TICK_S = 0.01
#: Wall seconds between two looks at the measured handshake times during the ramp.
ADJUST_EVERY_S = 1.0
#: Handshakes slower than this share of the connect timeout (the mean over one look) are slow:
#: the rate does not grow while they are, and the slots are this many seconds of the rate...
SLOW_SHARE_OF_TIMEOUT = 0.1
#: ... and never fewer than this many seconds of it (a short connect timeout).
SLOW_HANDSHAKE_FLOOR_S = 0.05
#: How much a slowdown (a handshake timed out) keeps of the start rate (multiplicative
#: decrease).
DECREASE_FACTOR = 0.5
#: The share of the written rate won back per quick `ADJUST_EVERY_S` (additive increase).
INCREASE_SHARE = 0.1
#: The lowest start rate, as a share of the written one.
LOWEST_SHARE = 1 / 64
#: The fewest and the most handshakes a process runs at once.
MIN_SLOTS = 8
MAX_SLOTS = 1000


class _Gated:
    """One connection attempt through `Ramp.gate`.  A plain class rather than a generator:
    a fleet's stop unwinds tens of thousands of these at once, and every layer costs."""

    __slots__ = ("_connect", "_opened", "_ramp", "_station")

    def __init__(self, ramp: Ramp, connect: Connect, station: Station) -> None:
        self._ramp = ramp
        self._connect = connect
        self._station = station
        self._opened: AbstractAsyncContextManager[Link] | None = None

    async def __aenter__(self) -> Link:
        ramp = self._ramp
        await ramp._take_slot()
        started = trio.current_time()
        try:
            opening = self._connect(self._station)
            link = await opening.__aenter__()
        except ConnectError as exc:
            ramp._give_slot()
            if exc.outcome == "timeout":
                ramp.observe(started, ramp.connect_timeout_s, timed_out=True)
            raise
        except BaseException:
            ramp._give_slot()
            raise
        ramp._give_slot()
        ramp.opened(started, trio.current_time() - started)
        self._opened = opening
        return link

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._opened is not None
        return await self._opened.__aexit__(kind, error, traceback)


@dataclass(frozen=True, slots=True)
class StationFailure:
    station_id: str
    error: str


class Ramp:
    """The start rate and the handshake slots of one process's fleet (see the module docstring).

    The slots are sized by Little's law: `rate x slow_handshake_s` handshakes are in flight when
    stations start at `rate` per second and each handshake takes `slow_handshake_s`, the most it
    may take before it counts as slow.  They do not grow with the measured time: on a machine
    so busy that handshakes stay slow even at the lowest rate, more handshakes in flight meant
    timeouts (1,354 in the 30,000-station busy benchmark, against none).  A station waits for a
    slot outside its connect timeout (`gate`), so no handshake times out because others were
    running.

    Each look at the handshakes that ended since the last one decides: one timed out, the rate
    halves; they were slow on average, it holds; they were quick, it grows by a tenth of the
    written rate.  Only handshakes that started after the last slowdown can cause the next one,
    so that one spell of timeouts halves the rate once rather than once per look, as TCP halves
    its window once per round trip.
    """

    def __init__(
        self,
        ramp_up_per_s: float,
        *,
        connect_timeout_s: float = 10.0,
        stats: RunStats | None = None,
        adjust_every_s: float = ADJUST_EVERY_S,
    ) -> None:
        self.adjust_every_s = adjust_every_s
        self.written_per_s = ramp_up_per_s
        self.rate_per_s = ramp_up_per_s
        self.lowest_per_s = ramp_up_per_s
        self.connect_timeout_s = connect_timeout_s
        #: The handshake time (the mean over one look) past which the rate stops growing.
        self.slow_handshake_s = max(
            SLOW_HANDSHAKE_FLOOR_S, connect_timeout_s * SLOW_SHARE_OF_TIMEOUT
        )
        #: How many times the rate was cut, and the most handshakes that timed out in one look.
        self.slowdowns = 0
        self.slowed_by_timeouts = 0
        self.slots = trio.CapacityLimiter(self._slots_for(ramp_up_per_s))
        self.waiting = 0
        #: Every station has been started: the rate no longer matters.
        self.done = False
        self._stats = stats
        self._window_start = -math.inf
        self._window_sum_s = 0.0
        self._window_count = 0
        self._window_timeouts = 0
        self._slowed_at = -math.inf
        self._publish()

    def _slots_for(self, rate_per_s: float) -> int:
        wanted = math.ceil(round(rate_per_s * self.slow_handshake_s, 6))  # 100 x 0.3 is 30
        return min(MAX_SLOTS, max(MIN_SLOTS, wanted))

    @property
    def in_flight(self) -> int:
        return int(self.slots.borrowed_tokens)

    @property
    def backlogged(self) -> bool:
        """More stations wait for a slot than there are slots: starting more would only add
        waiting tasks, so the ramp holds back until the handshakes catch up."""
        return self.waiting > self.slots.total_tokens

    @property
    def slowed(self) -> bool:
        return self.slowdowns > 0

    def gate(self, connect: Connect) -> Connect:
        """`connect`, each attempt waiting for a handshake slot first, holding it until the
        connection is open (or has failed), and reporting how long the handshake took (to
        the ramp, and to `RunStats.connected` for `fleetsim_connect_duration_seconds`)."""

        def gated(station: Station) -> AbstractAsyncContextManager[Link]:
            return _Gated(self, connect, station)

        return gated

    async def _take_slot(self) -> None:
        self.waiting += 1
        self._publish_slots()
        try:
            await self.slots.acquire()
        finally:
            self.waiting -= 1
            self._publish_slots()

    def _give_slot(self) -> None:
        self.slots.release()
        self._publish_slots()

    def _publish_slots(self) -> None:
        stats = self._stats
        if stats is not None:
            stats.handshakes_in_flight = int(self.slots.borrowed_tokens)
            stats.handshakes_waiting = self.waiting

    def opened(self, started: float, handshake_s: float) -> None:
        """A connection opened: its handshake began at `started` and took `handshake_s`."""
        if self._stats is not None:
            self._stats.connected(handshake_s)
        self.observe(started, handshake_s)

    def observe(self, started: float, handshake_s: float, *, timed_out: bool = False) -> None:
        """A handshake that started at `started` (trio time) took `handshake_s`."""
        if self.done or started < self._slowed_at:
            return  # after the ramp, or from before the last slowdown: no news for the rate
        if timed_out:
            self._window_timeouts += 1
        self._window_sum_s += handshake_s
        self._window_count += 1

    def adjust(self, now: float) -> None:
        """Reconsider the rate, at most once per `adjust_every_s`, from the handshakes that
        ended since the last look."""
        if now - self._window_start < self.adjust_every_s:
            return
        count = self._window_count
        if self._window_timeouts:
            self._slow_down(now, self._window_timeouts)
        elif (
            count
            and self._window_sum_s < self.slow_handshake_s * count
            and self.rate_per_s < self.written_per_s
        ):
            self._set_rate(
                min(self.written_per_s, self.rate_per_s + self.written_per_s * INCREASE_SHARE)
            )
        self._window_start = now
        self._window_sum_s = 0.0
        self._window_count = self._window_timeouts = 0

    def _slow_down(self, now: float, timeouts: int) -> None:
        self.slowdowns += 1
        self.slowed_by_timeouts = max(self.slowed_by_timeouts, timeouts)
        self._slowed_at = now
        rate_per_s = max(self.written_per_s * LOWEST_SHARE, self.rate_per_s * DECREASE_FACTOR)
        self.lowest_per_s = min(self.lowest_per_s, rate_per_s)
        self._set_rate(rate_per_s)

    def _set_rate(self, rate_per_s: float) -> None:
        self.rate_per_s = rate_per_s
        # Fewer slots take effect as handshakes end; more wake waiting stations at once.
        self.slots.total_tokens = self._slots_for(rate_per_s)
        self._publish()

    def finish(self) -> None:
        """Every station has started; the slots stay as they are for later reconnections."""
        self.done = True
        self._publish()

    def _publish(self) -> None:
        stats = self._stats
        if stats is None:
            return
        stats.ramp_written_per_s = self.written_per_s
        stats.ramp_rate_per_s = 0.0 if self.done else self.rate_per_s
        stats.ramp_lowest_per_s = self.lowest_per_s
        stats.ramp_slowdowns = self.slowdowns
        stats.ramp_slowed_by_timeouts = self.slowed_by_timeouts
        self._publish_slots()


class Fleet:
    """The stations of one process, started at `ramp_up_per_s` (or slower, see `Ramp`) and
    supervised."""

    def __init__(
        self,
        stations: list[Station],
        connect: Connect,
        ramp_up_per_s: float,
        *,
        after_ramp_up: Callable[[], None] | None = None,
        connect_timeout_s: float = 10.0,
        stats: RunStats | None = None,
        ramp: Ramp | None = None,
    ) -> None:
        """`ramp` replaces the one made from `ramp_up_per_s`, `connect_timeout_s` and `stats`
        (tests tune how often it looks)."""
        self.stations = stations
        #: Called once every station has been started (run.py tunes the collector there).
        self.after_ramp_up = after_ramp_up
        self.ramp = ramp or Ramp(ramp_up_per_s, connect_timeout_s=connect_timeout_s, stats=stats)
        self.connect = self.ramp.gate(connect)
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
        """Start every station at the ramp's rate and run them until cancelled."""
        ramp = self.ramp
        async with trio.open_nursery() as nursery:
            total = len(self.stations)
            before = trio.current_time()
            ramp.adjust(before)
            #: Stations due to start and not started yet (the first one at once).
            due = 1.0
            while True:
                count = min(total - self._started, math.floor(due))
                for _ in range(count):
                    nursery.start_soon(self._supervise, self.stations[self._started])
                    self._started += 1
                due -= count
                if self._started >= total:
                    break
                await trio.sleep(_RAMP_TICK_S)
                now = trio.current_time()
                ramp.adjust(now)
                if ramp.backlogged:
                    due = 0.0  # hold back, and do not catch up later all at once
                else:
                    due += (now - before) * ramp.rate_per_s
                before = now
            ramp.finish()
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
