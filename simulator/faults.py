"""`FaultSchedule`: the scenario's `faults` section as timed actions on the simulated clock.

One task runs the whole fleet's timeline (`run`): it sleeps until the next fault's moment,
acts on the stations it hits, and goes back to sleep; a fault that comes at a rate draws the
moment of its next occurrence from the seed when one happens, so a rate costs one timer for the
fleet, not one per station.  Stations carry nothing for faults they are not hit by: a partition
is a set of station ids the connection wrapper (`connect`) consults when a station connects;
slow, stuck and duplicate-id faults put a `LinkFault` on the links of the stations they hit,
which the link checks with one attribute test where the fault acts; a drifting clock replaces
the station's clock; a power cut reboots the site's stations with reason PowerUp.

Which stations a fault hits is drawn from the scenario's seed, the fault's place in the
section and the station's id, never from the order stations were built in: a rerun, and every
shard or worker of a fleet, hits the same stations.

Every fault is counted in `RunStats.faults_injected_by_kind` (the summary's `faults_injected`
and `fleetsim_faults_injected_total`): a drop, partition, storm or power cut once per station it
cut off, a clock drift once per station set drifting, slow and stuck once per CSMS CALL
answered late or never, malformed and duplicate_id once per frame sent.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import zlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from .clock import SimClock
from .link import ConnectError, Link
from .ocpp import LinkClosed
from .scenario.faults import (
    ClockDriftFault,
    DropFault,
    DuplicateIdFault,
    FaultSpec,
    MalformedFault,
    PartitionFault,
    PowerCutFault,
    SlowFault,
    StormFault,
    StuckFault,
)
from .stats import RunStats
from .transport.rpc_link import LinkFault, RpcLink

if TYPE_CHECKING:
    from .scenario import Scenario
    from .station import Station

__all__ = ["DriftingClock", "FaultSchedule", "MALFORMED_FRAMES", "chosen", "schedule_for"]

#: What a malformed fault sends, in turn: text that is not JSON, JSON that is not an array, an
#: unknown message type, a message id that is not a string, and a CALL whose payload breaks
#: the schema.  `{n}` is a number unique to the station's link.
MALFORMED_FRAMES = (
    '[2, "fault-{n}", "Heartbeat", {{',
    '{{"messageTypeId": 2, "messageId": "fault-{n}"}}',
    '[9, "fault-{n}", "Heartbeat", {{}}]',
    '[2, {n}, "Heartbeat", {{}}]',
    '[2, "fault-{n}", "Heartbeat", {{"unexpected": true}}]',
)


def chosen(seed: int, number: int, share: float, station_id: str) -> bool:
    """Whether fault `number` of the section hits `station_id` (a share of the fleet, drawn
    from the seed and the id alone, so every process agrees)."""
    if share >= 1.0:
        return True
    draw = zlib.crc32(f"{seed}/faults/{number}/{station_id}".encode()) / 2**32
    return draw < share


class DriftingClock(SimClock):
    """A station's clock that gains `drift_per_s` seconds per simulated second from simulated
    second `from_s` on: its timers keep the fleet's time, its timestamps drift."""

    __slots__ = ("drift_per_s", "from_s")

    def __init__(self, clock: SimClock, drift_per_s: float, from_s: float) -> None:
        for name in SimClock.__slots__:
            setattr(self, name, getattr(clock, name))
        self._cached_second = -1
        self.drift_per_s = drift_per_s
        self.from_s = from_s

    def drift_s(self, sim_s: float) -> float:
        """How far the clock is ahead at simulated second `sim_s` (negative: behind)."""
        return self.drift_per_s * max(0.0, sim_s - self.from_s)

    def epoch_s(self, sim_s: float | None = None) -> float:
        at_s = self.sim_now() if sim_s is None else sim_s
        return super().epoch_s(at_s + self.drift_s(at_s))

    def timestamp(self, sim_s: float | None = None) -> str:
        at_s = self.sim_now() if sim_s is None else sim_s
        return super().timestamp(at_s + self.drift_s(at_s))

    def shifted(self, offset_s: float) -> SimClock:
        """Set to another time (ClockCtrlr.TimeSource Heartbeat), it goes on drifting."""
        return DriftingClock(super().shifted(offset_s), self.drift_per_s, self.from_s)


@dataclass(frozen=True, slots=True)
class _Window:
    """A fault that lasts, as the live view shows it."""

    text: str
    until_s: float | None


class FaultSchedule:
    """The fleet's faults on purpose; `await run()` in a task, wrap the fleet's connect with
    `connect`.  See the module docstring."""

    def __init__(
        self,
        faults: Sequence[FaultSpec],
        stations: Sequence[Station],
        *,
        clock: SimClock,
        start: dt.datetime,
        seed: int,
        stats: RunStats,
        sites: Mapping[str, Sequence[Station]],
        rng: np.random.Generator,
    ) -> None:
        self._faults = tuple(faults)
        self._stations = tuple(stations)
        self._clock = clock
        self._start = start
        self._seed = seed
        self._stats = stats
        self._sites = sites
        self._rng = rng
        #: Ids of the stations a partition cuts off now.
        self._unreachable: dict[str, int] = {}
        #: The link faults of the stations a slow, stuck or duplicate-id fault hits.
        self._link_faults: dict[str, LinkFault] = {}
        self._timeline: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._windows: dict[int, _Window] = {}
        self._frames = itertools.count(1)
        self._plan()

    # -- what the run asks ------------------------------------------------------------------

    @property
    def empty(self) -> bool:
        return not self._faults

    def active(self) -> list[str]:
        """The faults in effect now, as the live view shows them."""
        now_s = self._clock.sim_now()
        return [
            window.text
            for window in self._windows.values()
            if window.until_s is None or now_s < window.until_s
        ]

    def connect(
        self, connect: Callable[[Station], AbstractAsyncContextManager[Link]]
    ) -> Callable[[Station], AbstractAsyncContextManager[Link]]:
        """`connect`, refusing stations a partition cuts off and putting the link faults of
        the stations that have them on each new link (once per connection, never per
        message)."""

        @asynccontextmanager
        async def faulty(station: Station) -> AsyncIterator[Link]:
            if station.id in self._unreachable:
                raise ConnectError(
                    f"station {station.id}: the CSMS is unreachable during a network partition "
                    "of the scenario's faults",
                    "refused",
                )
            async with connect(station) as link:
                fault = self._link_faults.get(station.id)
                if fault is not None and isinstance(link, RpcLink):
                    fault.last_call = None
                    link.fault = fault
                yield link

        return faulty

    async def run(self) -> None:
        """Act on the timeline until it is empty (or the run is cancelled)."""
        timeline = self._timeline
        while timeline:
            at_s, _, action = heapq.heappop(timeline)
            await self._clock.sleep_until(at_s)
            action()

    # -- the plan ---------------------------------------------------------------------------

    def _at(self, at_s: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timeline, (at_s, next(self._sequence), action))

    def _hit(self, number: int, share: float) -> list[Station]:
        return [
            station for station in self._stations if chosen(self._seed, number, share, station.id)
        ]

    def _plan(self) -> None:
        for number, fault in enumerate(self._faults):
            start_s = fault.at_s(self._start)
            for_s = fault.for_s()
            end_s = None if for_s is None else start_s + for_s
            if isinstance(fault, PowerCutFault):
                stations = list(self._sites.get(fault.site, ()))
            else:
                stations = self._hit(number, fault.share)
            if not stations:
                continue
            when = self._when(start_s, end_s)
            if isinstance(fault, DropFault):
                if fault.rate_per_station_hour is None:
                    self._at(start_s, partial(self._drop, stations))
                else:
                    self._at_rate(
                        number,
                        fault.rate_per_station_hour,
                        stations,
                        start_s,
                        end_s,
                        self._drop_one,
                    )
                    self._window(number, f"drops {_share(fault.share)}{when}", start_s, end_s)
            elif isinstance(fault, PartitionFault):
                assert end_s is not None
                ids = [station.id for station in stations]
                self._at(start_s, partial(self._cut_off, ids))
                self._at(end_s, partial(self._reconnect, ids))
                self._window(number, f"partition {_share(fault.share)}{when}", start_s, end_s)
            elif isinstance(fault, StormFault):
                self._at(start_s, partial(self._storm, stations))
            elif isinstance(fault, (SlowFault, StuckFault)):
                self._at(start_s, partial(self._answer_fault, stations, fault, True))
                if end_s is not None:
                    self._at(end_s, partial(self._answer_fault, stations, fault, False))
                what = f"slow {fault.delay_s:g} s" if isinstance(fault, SlowFault) else "stuck"
                self._window(number, f"{what} {_share(fault.share)}{when}", start_s, end_s)
            elif isinstance(fault, ClockDriftFault):
                self._drift(stations, fault.drift_s_per_day / 86400.0, start_s)
            elif isinstance(fault, PowerCutFault):
                assert for_s is not None
                self._at(start_s, partial(self._power_cut, stations, for_s))
                self._window(number, f"power cut at {fault.site}{when}", start_s, end_s)
            elif isinstance(fault, MalformedFault):
                self._at_rate(
                    number,
                    fault.rate_per_station_hour,
                    stations,
                    start_s,
                    end_s,
                    self._send_malformed,
                )
                self._window(
                    number, f"malformed frames {_share(fault.share)}{when}", start_s, end_s
                )
            elif isinstance(fault, DuplicateIdFault):
                self._at(start_s, partial(self._keep_last_calls, stations, True))
                if end_s is not None:
                    self._at(end_s, partial(self._keep_last_calls, stations, False))
                self._at_rate(
                    number,
                    fault.rate_per_station_hour,
                    stations,
                    start_s,
                    end_s,
                    self._send_duplicate,
                )
                self._window(number, f"duplicate ids {_share(fault.share)}{when}", start_s, end_s)

    def _when(self, start_s: float, end_s: float | None) -> str:
        start = self._clock.timestamp(start_s)[11:16]
        if end_s is None:
            return f" from {start} UTC"
        return f" {start}-{self._clock.timestamp(end_s)[11:16]} UTC"

    def _window(self, number: int, text: str, start_s: float, end_s: float | None) -> None:
        window = _Window(text, end_s)
        self._at(start_s, partial(self._windows.__setitem__, number, window))

    def _at_rate(
        self,
        number: int,
        rate_per_station_hour: float,
        stations: list[Station],
        start_s: float,
        end_s: float | None,
        act: Callable[[Station], None],
    ) -> None:
        """Occurrences of a fault at `rate_per_station_hour` on `stations` between `start_s`
        and `end_s`: a Poisson process for the fleet, each occurrence on a station drawn at
        random, the next moment drawn when one happens."""
        mean_gap_s = 3600.0 / (rate_per_station_hour * len(stations))
        rng = np.random.default_rng([self._seed, number, int(self._rng.integers(2**31))])

        def occur(at_s: float) -> None:
            act(stations[int(rng.integers(len(stations)))])
            following_s = at_s + float(rng.exponential(mean_gap_s))
            if end_s is None or following_s < end_s:
                self._at(following_s, partial(occur, following_s))

        first_s = start_s + float(rng.exponential(mean_gap_s))
        if end_s is None or first_s < end_s:
            self._at(first_s, partial(occur, first_s))

    # -- the actions (sync: each starts what must wait in the stations' nurseries) ----------

    def _drop(self, stations: list[Station]) -> None:
        dropped = sum(station.drop_connection() for station in stations)
        self._stats.fault_injected("drop", dropped)

    def _drop_one(self, station: Station) -> None:
        if station.drop_connection():
            self._stats.fault_injected("drop")

    def _cut_off(self, ids: list[str]) -> None:
        by_id = {station.id: station for station in self._stations}
        for station_id in ids:
            self._unreachable[station_id] = self._unreachable.get(station_id, 0) + 1
            by_id[station_id].drop_connection()
        self._stats.fault_injected("partition", len(ids))

    def _reconnect(self, ids: list[str]) -> None:
        """The partition ends: connecting works again (the stations try when their back-off
        wait ends)."""
        for station_id in ids:
            left = self._unreachable[station_id] - 1
            if left:
                self._unreachable[station_id] = left
            else:
                del self._unreachable[station_id]

    def _storm(self, stations: list[Station]) -> None:
        for station in stations:
            station.drop_connection(reconnect_at_once=True)
        self._stats.fault_injected("storm", len(stations))

    def _link_fault(self, station: Station) -> LinkFault:
        fault = self._link_faults.get(station.id)
        if fault is None:
            fault = self._link_faults[station.id] = LinkFault(self._stats.fault_injected)
            link = station.link
            if isinstance(link, RpcLink):
                link.fault = fault
        return fault

    def _answer_fault(
        self, stations: list[Station], fault: SlowFault | StuckFault, begins: bool
    ) -> None:
        for station in stations:
            link_fault = self._link_fault(station)
            if isinstance(fault, SlowFault):
                link_fault.answer_delay_s = fault.delay_s if begins else None
            else:
                link_fault.never_answer = begins

    def _keep_last_calls(self, stations: list[Station], begins: bool) -> None:
        for station in stations:
            fault = self._link_fault(station)
            fault.keep_last_call = begins
            if not begins:
                fault.last_call = None

    def _drift(self, stations: list[Station], drift_per_s: float, from_s: float) -> None:
        for station in stations:
            station.clock = DriftingClock(station.clock, drift_per_s, from_s)
        self._stats.fault_injected("clock_drift", len(stations))

    def _power_cut(self, stations: list[Station], down_s: float) -> None:
        for station in stations:
            station.reboot("PowerUp", down_s=down_s)
        self._stats.fault_injected("power_cut", len(stations))

    def _send_malformed(self, station: Station) -> None:
        link = station.link
        if isinstance(link, RpcLink) and not link.closed:
            number = next(self._frames)
            text = MALFORMED_FRAMES[number % len(MALFORMED_FRAMES)].format(n=number)
            station.spawn(partial(self._send_raw, link, text, "malformed"))

    def _send_duplicate(self, station: Station) -> None:
        link = station.link
        if isinstance(link, RpcLink) and not link.closed and link.fault is not None:
            text = link.fault.last_call
            if text is not None:
                station.spawn(partial(self._send_raw, link, text, "duplicate_id"))

    async def _send_raw(self, link: RpcLink, text: str, kind: str) -> None:
        try:
            await link.send_raw(text)
        except LinkClosed:
            return
        self._stats.fault_injected(kind)


def _share(share: float) -> str:
    return f"{share * 100:g}%"


def schedule_for(
    scenario: Scenario,
    stations: Sequence[Station],
    by_index: Mapping[int, Station],
    *,
    clock: SimClock,
    start: dt.datetime,
    stats: RunStats,
    rng: np.random.Generator,
) -> FaultSchedule | None:
    """The schedule of `scenario`'s faults over this process's stations; None without any."""
    if not scenario.faults:
        return None
    sites = {
        site.name: [by_index[index] for index in indices if index in by_index]
        for site, indices in scenario.site_layout()
    }
    return FaultSchedule(
        scenario.faults,
        stations,
        clock=clock,
        start=start,
        seed=scenario.seed,
        stats=stats,
        sites=sites,
        rng=rng,
    )
