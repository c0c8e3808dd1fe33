"""`World`: the sites, the EVs that come to them, and the grid, as simpy processes.

Each site has an arrival process of its kind (ev_models.population): when an EV arrives, the
world picks a free EVSE at the site and the station plays the visit (station/ev_driver.py).
While EVs charge, the site shares its grid connection among them (grid_models.site), and a
grid process samples the frequency (grid_models.frequency) for the EVs that follow it
(LocalFrequency profiles) and for the report.  The world tells each running station when a
scripted DER event begins and ends (`GridEvent`); what the station sends about it is its own
business (block R).

When the site's connection limits the EVs, the site serves transactions the CSMS ranked
higher (chargingPriority, kept on the `Transaction`) first, each rank sharing fairly what the
ranks above it left (grid_models.site.allocate_by_priority).

A site's connection limit may change during the run (`capacity_changes`, a grid operator's
curtailment).  Where the site's energy management speaks to its stations (`external_limits`),
it does not balance the EVs itself: it hands each station its share of the limit (by its EVSEs)
as an external limit (`ExternalLimitChanged`, source EMS, K11-K14), which the station enforces
and reports to the CSMS.  Doing both would limit the EVs twice, once by their fair share of the
connection and again by the station's; the stations' limits already hold the site's total.

Drivers who reserve ahead (`embedded_csms.reserve_share`) book through the CSMS, as through its
app: some minutes before such a driver arrives, the world picks a free EVSE at the site and
asks the `ReservationDesk` -- the embedded CSMS in this process -- to reserve it (ReserveNow for
the EVSE, or for any EVSE with its connector type); the driver then comes to the reserved EVSE,
which `Evse.is_free` keeps from every other arrival, and claims the reservation with their
IdToken.  A refused reservation changes nothing: the driver comes anyway and takes a free EVSE
as the others do.  It costs one timer per reservation and nothing per station.  An external
CSMS cannot be asked to reserve, so without a desk no driver reserves (the run warns).

Everything here runs on simulated time through `EventPump`, and every random draw comes from
generators seeded from the scenario's seed, one per purpose, so a run is reproducible.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

import numpy as np

from fleetsim.ev_models import ArrivalProcess, EvArrival, EvModel, EvSession
from fleetsim.ev_models.population import SITE_PROFILES
from fleetsim.grid_models import DerEvent, DerSchedule, DroopCurve, FrequencyEvent, FrequencyModel
from fleetsim.grid_models.site import allocate_by_priority

from .clock import SimClock, format_timestamp
from .des import EventPump
from .report.records import GridEventMark, SessionRecord, SitePowerSample
from .scenario import Scenario, SiteSpec
from .station import Station
from .station.blocks.battery_swap import expect_remote_driver, new_pack, swap_ev_arrives
from .station.core import ActiveLimit, ExternalLimitChanged, GridEvent, StationCore
from .station.ev_driver import ev_arrives
from .station.evse import Evse, RemoteStart

__all__ = ["ReservationDesk", "ReservationCounts", "Site", "SwapDesk", "World"]

#: Simulated seconds between two load-balancing cycles of a site with a capacity limit.
BALANCE_INTERVAL_S = 10.0
#: A change of the grid frequency this large (Hz) gets a row in site_power.csv.
_FREQUENCY_ROW_HZ = 0.005
#: A driver who would arrive sooner than this does not book ahead: the ReserveNow might come
#: after the EV, and would then hold an EVSE for a driver who is already charging elsewhere.
MIN_BOOKING_LEAD_S = 60.0
#: Simulated seconds this close count as the same moment (floating-point sums of timeouts).
_EPS_S = 1e-6

_Key = tuple[str, int]


class ReservationDesk(Protocol):
    """Where the world's drivers reserve an EVSE: the CSMS, which sends the station ReserveNow
    (simulator/csms/reservations.py for the embedded one)."""

    async def reserve(
        self,
        station_id: str,
        id_token: str,
        id_token_type: str,
        expiry_epoch_s: float,
        *,
        evse_id: int | None,
        connector_type: str | None,
    ) -> int | None:
        """The id of the reservation the station accepted; None when it refused it or could
        not be reached."""
        ...


class SwapDesk(Protocol):
    """Where a swap driver asks for a swap through the CSMS's app (S02): the embedded CSMS."""

    async def request_swap(self, station_id: str, id_token: dict[str, str]) -> bool: ...


@dataclass(slots=True)
class ReservationCounts:
    """What came of the drivers who reserve ahead, over a run."""

    #: ReserveNow requests the CSMS sent for the world's drivers.
    asked: int = 0
    #: Of those, the ones the station accepted.
    accepted: int = 0
    #: Drivers who came to the EVSE reserved for them (and so claimed the reservation).
    arrived: int = 0


@dataclass(slots=True)
class _Booking:
    """A driver who reserves ahead: their EV, and where the CSMS reserved for them."""

    arrival: EvArrival
    station: Station | None = None
    #: The EVSE reserved, or None for a reservation of any EVSE with `connector_type`.
    evse_id: int | None = None
    connector_type: str | None = None
    #: The driver has come; a reservation accepted after that is not theirs to use.
    arrived: bool = False


def _bounded_by_energy(evse: Evse) -> bool:
    """Whether `evse`'s transaction stops at an energy, SoC or cost its visit task computed a
    deadline for at the power it had: more power brings that moment forward."""
    transaction = evse.transaction
    return transaction is not None and (
        transaction.limit is not None or transaction.energy_cap_wh is not None
    )


def _priority(evse: Evse) -> int:
    transaction = evse.transaction
    return 0 if transaction is None else transaction.charging_priority


class Site:
    """One site: its stations, its EV arrivals and its shared grid connection."""

    def __init__(
        self,
        world: World,
        spec: SiteSpec,
        stations: list[Station],
        arrivals: ArrivalProcess,
        remote_arrivals: ArrivalProcess,
        loop_rng: np.random.Generator,
        booking_rng: np.random.Generator | None = None,
    ) -> None:
        self.world = world
        self.name = spec.name
        self.spec = spec
        self.stations = stations
        self.capacity_w = None if spec.capacity_kw is None else spec.capacity_kw * 1000.0
        #: The limit the site's load balancer shares among its EVs: none where the site hands
        #: its stations external limits instead (`external_limits`), which hold the total.
        self.balanced_w = None if spec.external_limits else self.capacity_w
        self.arrivals = arrivals
        self.remote_arrivals = remote_arrivals
        self._active: dict[_Key, tuple[StationCore, Evse, EvSession]] = {}
        self._power_w: dict[_Key, float] = {}
        self._demand_w: dict[_Key, float] = {}
        self._priority: dict[_Key, int] = {}
        self._balance_pending = False
        self._last_balance_s = -math.inf
        self.import_w = 0.0
        self.export_w = 0.0
        #: Energy of the sessions that have ended; with the plugged-in EVs' own energy, the
        #: site's totals (`fleetsim_site_energy_joules_total`), summed once per session.
        self.imported_wh_ended = 0.0
        self.exported_wh_ended = 0.0
        self._next_station = 0
        self.turned_away = 0
        self._loop_rng = loop_rng
        #: Draws who reserves ahead and how long before arriving; None when nobody does.
        self._booking_rng = booking_rng
        #: The site's stations are battery-swap stations (block S): its EVs come to swap.
        self.swaps = any(station.config.battery_swap is not None for station in stations)
        for station in stations:
            station.site = self

    # -- arrivals ---------------------------------------------------------------------------

    def free_evse(self, model: EvModel, id_token: str) -> tuple[Station, Evse] | None:
        """A free EVSE that can charge `model` (an EV without an AC inlet needs DC) and is
        reserved for nobody but the driver of `id_token`, taking stations in turn so arrivals
        spread over the site."""
        count = len(self.stations)
        for offset in range(count):
            station = self.stations[(self._next_station + offset) % count]
            if not (station.running and station.operative):
                continue
            for evse in station.evses:
                if evse.is_free(id_token) and (evse.supply == "DC" or model.max_ac_w > 0):
                    self._next_station = (self._next_station + offset + 1) % count
                    return station, evse
        return None

    # -- battery-swap stations (block S) --------------------------------------------------

    def swap_arrival(self, arrival: EvArrival) -> bool:
        """A swap EV comes to the site's swap stations, taken in turn: its driver authorizes at
        the station (S01) or, for `embedded_csms.remote_swap_share` of them, asks the CSMS,
        which sends RequestBatterySwap (S02).  False when no station is running."""
        count = len(self.stations)
        for offset in range(count):
            station = self.stations[(self._next_station + offset) % count]
            if not (station.running and station.operative):
                continue
            self._next_station = (self._next_station + offset + 1) % count
            model = arrival.model
            pack = new_pack(
                station, model.swap_pack_wh or model.usable_battery_wh, arrival.soc_start
            )
            token = {"idToken": arrival.id_token, "type": arrival.id_token_type}
            desk = self.world.swap_desk
            share = self.world.scenario.embedded_csms.remote_swap_share
            if desk is not None and share > 0 and self._loop_rng.random() < share:
                expect_remote_driver(station, pack, token)
                station.spawn(partial(_ask_for_swap, desk, station.id, token))
            else:
                swap_ev_arrives(station, pack, token)
            return True
        return False

    # -- drivers who reserve ahead (H01 through the CSMS) -------------------------------------

    @property
    def booking_lookahead_s(self) -> float:
        """How far ahead of their arrival drivers may book: arrivals are drawn that early."""
        if self._booking_rng is None or self.world.reservation_desk is None:
            return 0.0
        return self.world.scenario.embedded_csms.reserve_ahead_s.max

    def book_ahead(self, arrival: EvArrival, now_s: float) -> _Booking | None:
        """Whether the driver of `arrival` (drawn at `now_s`) reserves ahead; if so, the timer
        that books an EVSE for them `reserve_ahead_s` before they arrive is set."""
        rng = self._booking_rng
        desk = self.world.reservation_desk
        if rng is None or desk is None:
            return None
        settings = self.world.scenario.embedded_csms
        if rng.random() >= settings.reserve_share:
            return None
        ahead = settings.reserve_ahead_s
        at_s = max(now_s, arrival.arrival_s - float(rng.uniform(ahead.min, ahead.max)))
        if arrival.arrival_s - at_s < MIN_BOOKING_LEAD_S:
            return None
        booking = _Booking(arrival)
        self.world.pump.call_at(at_s, partial(self._book, booking))
        return booking

    def _book(self, booking: _Booking) -> None:
        """The driver reserves: a free EVSE now, reserved through the CSMS.  With none free the
        driver does not book and comes anyway."""
        arrival = booking.arrival
        target = self.free_evse(arrival.model, arrival.id_token)
        if target is not None:
            station, evse = target
            station.spawn(partial(self._ask_desk, booking, station, evse))

    async def _ask_desk(self, booking: _Booking, station: Station, evse: Evse) -> None:
        desk = self.world.reservation_desk
        if desk is None:
            return
        settings = self.world.scenario.embedded_csms
        evse_id: int | None = evse.id
        connector_type = None
        if settings.reserve_for == "connector_type":
            evse_id = None
            connector_type = next(c.type for c in evse.connectors if c.operative)
        arrival = booking.arrival
        counts = self.world.reservations
        counts.asked += 1
        reservation_id = await desk.reserve(
            station.id,
            arrival.id_token,
            arrival.id_token_type,
            self.world.clock.epoch_s(arrival.arrival_s + settings.reserve_grace_s),
            evse_id=evse_id,
            connector_type=connector_type,
        )
        if reservation_id is None:
            return
        counts.accepted += 1
        if not booking.arrived:
            booking.station = station
            booking.evse_id = evse_id
            booking.connector_type = connector_type

    def booked_evse(self, booking: _Booking) -> tuple[Station, Evse] | None:
        """The driver has come: the EVSE reserved for them, if it still takes them."""
        booking.arrived = True
        station = booking.station
        if station is None or not (station.running and station.operative):
            return None
        arrival = booking.arrival
        for evse in station.evses:
            if booking.evse_id is not None and evse.id != booking.evse_id:
                continue
            if booking.connector_type is not None and not any(
                c.operative and c.type == booking.connector_type for c in evse.connectors
            ):
                continue
            if evse.is_free(arrival.id_token) and (
                evse.supply == "DC" or arrival.model.max_ac_w > 0
            ):
                self.world.reservations.arrived += 1
                return station, evse
        return None

    @property
    def remote_start_plugin_delay_s(self) -> float | None:
        return self.world.scenario.ev_fleet.remote_start_plugin_delay_s

    def remote_arrival(self, station: StationCore, evse: Evse, remote: RemoteStart) -> EvArrival:
        """The EV of a remote start: the CSMS chose the token, the site's mix the car (one the
        EVSE can charge)."""
        now_s = self.world.clock.sim_now()
        drawn = None
        for _ in range(20):
            candidate = self.remote_arrivals.next_arrival(now_s)
            if candidate is None:
                break
            if evse.supply == "DC" or candidate.model.max_ac_w > 0:
                drawn = candidate
                break
        base = drawn if drawn is not None else self.world.any_arrival(now_s, evse.supply)
        delay_s = self.remote_start_plugin_delay_s or 0.0
        return replace(
            base,
            arrival_s=now_s,
            departure_s=now_s + delay_s + (base.departure_s - base.arrival_s),
            id_token=remote.id_token,
            id_token_type=remote.id_token_type,
            id_token_first=True,
        )

    # -- sessions (SiteHooks) -------------------------------------------------------------

    def plugged_in(self) -> list[EvSession]:
        """The sessions of the EVs plugged in now (a copy: metrics read it at scrape time)."""
        return [entry[2] for entry in list(self._active.values())]

    def new_session(self, station: StationCore, evse: Evse, arrival: EvArrival) -> EvSession:
        now_s = self.world.clock.sim_now()
        session = EvSession(
            arrival.model,
            supply=evse.supply,  # type: ignore[arg-type]
            evse_max_w=evse.max_power_w,
            evse_phases=evse.phases,
            soc=arrival.soc_start,
            target_soc=arrival.target_soc,
            min_soc=arrival.min_soc,
            now_s=now_s,
        )
        key = (station.id, evse.id)
        self._active[key] = (station, evse, session)
        self._power_w[key] = 0.0
        if self.balanced_w is not None:
            # Until the next balancing cycle a new EV gets what the connection has left.
            session.set_share(max(0.0, self.balanced_w - self.import_w + self.export_w), now_s)
        return session

    def power_changed(self, station: StationCore, evse: Evse, now_s: float) -> None:
        """The visit task changed an EV's inputs, or the CSMS its transaction's priority:
        update the site's totals, and ask for a balancing cycle if what the EV wants (not just
        what it gets) or its rank changed."""
        key = (station.id, evse.id)
        entry = self._active.get(key)
        if entry is None:
            return
        session = entry[2]
        self._account(key, session.power_w, now_s)
        if self.balanced_w is None:
            return
        demand_w = session.demand_w
        priority = _priority(evse)
        if demand_w != self._demand_w.get(key) or priority != self._priority.get(key, 0):
            self._demand_w[key] = demand_w
            self._priority[key] = priority
            self._request_balance(now_s)

    def session_ended(
        self, station: StationCore, evse: Evse, arrival: EvArrival, now_s: float
    ) -> None:
        key = (station.id, evse.id)
        entry = self._active.pop(key, None)
        self._demand_w.pop(key, None)
        self._priority.pop(key, None)
        if entry is None:
            return
        self._account(key, 0.0, now_s)
        self._power_w.pop(key, None)
        session = entry[2]
        imported_wh = session.imported_wh_at(now_s)
        exported_wh = session.exported_wh_at(now_s)
        self.imported_wh_ended += imported_wh
        self.exported_wh_ended += exported_wh
        self.world.ev_sessions += 1
        if self.world.keep_records:
            self.world.session_records.append(
                SessionRecord(
                    station_id=station.id,
                    evse_id=evse.id,
                    site=self.name,
                    ev_model=arrival.model.name,
                    arrival=format_timestamp(self.world.clock.epoch_s(arrival.arrival_s)),
                    departure=format_timestamp(self.world.clock.epoch_s(now_s)),
                    soc_start_percent=arrival.soc_start * 100,
                    soc_end_percent=session.soc_at(now_s) * 100,
                    energy_wh=imported_wh - exported_wh,
                    energy_exported_wh=exported_wh,
                    battery_kwh=arrival.model.usable_battery_wh / 1000,
                    peak_kw=session.peak_w / 1000,
                )
            )
        self.world.unsubscribe_frequency(key)
        if self.balanced_w is not None and self._active:
            self._request_balance(now_s)

    # -- load balancing -------------------------------------------------------------------

    def _request_balance(self, now_s: float) -> None:
        """Balance at the next cycle: at most once per BALANCE_INTERVAL_S, as a site controller
        does, so a thousand EVs plugging in one evening cost a cycle each, not a thousand
        re-shares of a thousand EVs."""
        if self._balance_pending:
            return
        self._balance_pending = True
        at_s = max(now_s, self._last_balance_s + BALANCE_INTERVAL_S)
        self.world.pump.call_at(at_s, self._balance)

    def _balance(self) -> None:
        """Share the connection among the charging EVs by water-filling, higher priorities
        first (grid_models.site); wake an EV's visit task only if its next physics event moved
        before its sleep."""
        self._balance_pending = False
        now_s = self.world.clock.sim_now()
        self._last_balance_s = now_s
        demands: dict[_Key, float] = {}
        priorities = self._priority
        kept_demands = self._demand_w
        for key, (_, evse, session) in self._active.items():
            demand_w = session.demand_w
            kept_demands[key] = demand_w
            demands[key] = demand_w
            priorities[key] = _priority(evse)
        balanced_w = self.balanced_w
        shares = allocate_by_priority(demands, priorities, balanced_w)
        for key, (_, evse, session) in self._active.items():
            share_w = shares[key] if demands[key] > 0 and balanced_w is not None else None
            power_before_w = session.power_w
            session.set_share(share_w, now_s)
            power_w = session.power_w
            self._account(key, power_w, now_s)
            if evse.power_watch is not None:
                evse.power_may_have_changed()
                power_w = session.power_w
            if session.next_change_s() < evse.wake_at_s or (
                power_w > power_before_w and _bounded_by_energy(evse)
            ):
                evse.wake()

    # -- the connection limit and the stations' external limits (K11-K14) ------------------

    def set_capacity(self, capacity_w: float | None, is_grid_critical: bool = False) -> None:
        """The connection limit changes (a scripted curtailment): the load balancer shares the
        new one, or, with `external_limits`, each station gets its new share as an external
        limit."""
        self.capacity_w = capacity_w
        if self.spec.external_limits:
            self.report_external_limits(is_grid_critical)
            return
        self.balanced_w = capacity_w
        if self._active:
            self._request_balance(self.world.clock.sim_now())

    def report_external_limits(self, is_grid_critical: bool = False) -> None:
        """Tell each station its share of the connection limit, by its EVSEs (None: lifted).
        A station that is down keeps the limit all the same and reports it once up."""
        evses = sum(len(station.evses) for station in self.stations)
        for station in self.stations:
            share_w = (
                None
                if self.capacity_w is None
                else self.capacity_w * len(station.evses) / max(evses, 1)
            )
            station.post(ExternalLimitChanged(share_w, "EMS", is_grid_critical))

    def _account(self, key: _Key, power_w: float, now_s: float) -> None:
        """Keep the site's import and export totals by differences: O(1) per change."""
        before_w = self._power_w.get(key, 0.0)
        if power_w == before_w:
            return
        self._power_w[key] = power_w
        # max(x, 0.0) and abs(x) < 1e-6, written out: every balancing cycle changes many EVs.
        self.import_w += (0.0 if power_w < 0.0 else power_w) - (0.0 if before_w < 0.0 else before_w)
        self.export_w += (0.0 if power_w > 0.0 else -power_w) - (
            0.0 if before_w > 0.0 else -before_w
        )
        if -1e-6 < self.import_w < 1e-6:
            self.import_w = 0.0
        if -1e-6 < self.export_w < 1e-6:
            self.export_w = 0.0
        self.world.record_power(self, now_s)

    def follow_frequency(
        self, station: StationCore, evse: Evse, limit: ActiveLimit, subscribe: bool, now_s: float
    ) -> float | None:
        """Local frequency support (Q08): with a profile's frequency-watt curve, the power the
        curve gives at the current frequency (returned as the setpoint); without a curve, the
        default droop added to the EV's own charging.  Not subscribed: no response."""
        key = (station.id, evse.id)
        entry = self._active.get(key)
        if not subscribe:
            self.world.unsubscribe_frequency(key)
            if entry is not None:
                entry[2].set_droop(0.0, now_s)
            return None
        self.world.subscribe_frequency(key, evse)
        frequency_hz = self.world.frequency_hz
        if limit.freq_watt_curve:
            points = sorted(limit.freq_watt_curve)
            return float(np.interp(frequency_hz, [p[0] for p in points], [p[1] for p in points]))
        if entry is not None:
            response_w = self.world.droop.response_w(frequency_hz, self.world.frequency.nominal_hz)
            entry[2].set_droop(response_w, now_s)
        return None

    def grid_frequency_hz(self) -> float:
        """The frequency of the grid model now, as the site's meters read it."""
        return self.world.frequency_hz

    def grid_excursions(self) -> tuple[DerEvent, ...]:
        """The scripted DER events in effect now: the voltage and frequency excursions a
        station's DER controls (block R) act on."""
        return self.world.der.active_at(self.world.clock.sim_now())

    # -- the load-test loop (loop_idle_s) ---------------------------------------------------

    def visit_ended(self, station: StationCore, evse: Evse) -> None:
        if self.spec.loop_idle_s is not None:
            self.schedule_loop_arrival(station, evse, self.world.clock.sim_now())

    def schedule_loop_arrival(self, station: StationCore, evse: Evse, after_s: float) -> None:
        """The next EV of `evse` in a load-test loop: `loop_idle_s` after `after_s`."""
        idle = self.spec.loop_idle_s
        assert idle is not None
        at_s = after_s + float(self._loop_rng.uniform(idle.min, idle.max))
        self.world.pump.call_at(at_s, lambda: self._loop_arrival(station, evse))

    def _loop_arrival(self, station: StationCore, evse: Evse) -> None:
        now_s = self.world.clock.sim_now()
        drawn = self.arrivals.next_arrival(now_s)
        if (
            drawn is None
            or not (station.running and station.operative and evse.is_free(drawn.id_token))
            or not (evse.supply == "DC" or drawn.model.max_ac_w > 0)
        ):
            self.schedule_loop_arrival(station, evse, now_s)  # try again after another idle
            return
        ev_arrives(
            station,
            evse,
            replace(
                drawn, arrival_s=now_s, departure_s=now_s + (drawn.departure_s - drawn.arrival_s)
            ),
        )


class World:
    """The sites and the grid of one run; `start()` puts their processes in the pump."""

    def __init__(
        self,
        scenario: Scenario,
        clock: SimClock,
        pump: EventPump,
        stations: dict[int, Station],
        catalogue: dict[str, EvModel],
        *,
        seed_entropy: tuple[int, ...] | None = None,
        reservation_desk: ReservationDesk | None = None,
        keep_records: bool = True,
    ) -> None:
        self.scenario = scenario
        #: Whether to keep a record of every EV session and site power step for the report
        #: files (`--report-dir`).  Without them a run keeps only the count: a load test runs
        #: for days, and a record per visit would grow its memory without bound.
        self.keep_records = keep_records
        #: EV visits that ended, recorded or not.
        self.ev_sessions = 0
        self.clock = clock
        self.pump = pump
        self.catalogue = catalogue
        #: Where drivers who reserve ahead book: the embedded CSMS of this process, or None
        #: (an external CSMS cannot be asked to reserve).
        self.reservation_desk = reservation_desk
        self.reservations = ReservationCounts()
        #: Where swap drivers ask for a swap (S02): the embedded CSMS of this process, or None.
        self.swap_desk: SwapDesk | None = None
        seeds = np.random.SeedSequence(list(seed_entropy or (scenario.seed,)))
        # Spawned children depend only on their position: a third leaves the others' draws as
        # they were.
        site_seeds, grid_seed, booking_seed = seeds.spawn(3)
        grid = scenario.grid
        self.frequency = FrequencyModel(
            nominal_hz=float(grid.nominal_hz),
            **({} if grid.sigma_hz is None else {"sigma_hz": grid.sigma_hz}),
            **({} if grid.time_constant_s is None else {"time_constant_s": grid.time_constant_s}),
            events=tuple(
                FrequencyEvent(e.at_s, e.duration_s, e.frequency_hz, e.ramp_s) for e in grid.events
            ),
            rng=np.random.default_rng(grid_seed),
        )
        self.frequency_hz = self.frequency.nominal_hz
        self.droop = DroopCurve(max_response_w=scenario.embedded_csms.v2x_max_power_w)
        self.der = DerSchedule(
            tuple(DerEvent(e.at_s, e.duration_s, e.kind, e.value) for e in grid.der_events)
        )
        self.session_records: list[SessionRecord] = []
        #: The moment the run stopped (`stop`), simulated seconds; the reports end there.
        self.end_s = 0.0
        self._stopped_s: float | None = None
        self.power_samples: list[SitePowerSample] = []
        self.marks: list[GridEventMark] = [
            GridEventMark(e.at_s, e.at_s + e.duration_s, f"{e.frequency_hz:g} Hz")
            for e in grid.events
        ] + [
            GridEventMark(e.at_s, e.at_s + e.duration_s, f"{e.kind} {e.value:g}")
            for e in grid.der_events
        ]
        self._subscribers: dict[_Key, Evse] = {}
        self._last_row_hz: dict[str, float] = {}
        self._last_row: dict[str, int] = {}
        layout = scenario.site_layout()
        site_rngs = site_seeds.spawn(3 * len(layout))
        booking_seeds = (
            booking_seed.spawn(len(layout)) if scenario.embedded_csms.reserve_share > 0 else None
        )
        models = self._model_mix()
        fleet = scenario.ev_fleet
        self.sites: list[Site] = []
        for number, (spec, indices) in enumerate(layout):
            processes = [
                ArrivalProcess(
                    _profile(spec),
                    models,
                    # A loop site and the remote-start process draw EVs, not times: any
                    # positive rate serves.
                    arrivals_per_day=spec.arrivals_per_evse_per_day
                    * sum(len(stations[i].evses) for i in indices)
                    if which == 0 and spec.loop_idle_s is None
                    else 24.0,
                    rng=np.random.default_rng(site_rngs[3 * number + which]),
                    start_epoch_s=clock.epoch_s(0.0),
                    tz_offset_s=int(spec.utc_offset_h * 3600),
                    id_tokens=(
                        fleet.id_tokens.pattern,
                        fleet.id_tokens.count,
                        fleet.id_tokens.type,
                    ),
                    id_token_first_share=fleet.id_token_first_share,
                    iso15118_share=fleet.iso15118_share,
                    min_soc=fleet.min_soc,
                    id_token_types=None
                    if fleet.id_token_types is None
                    else list(fleet.id_token_types.items()),
                    stop_with_id_token_share=fleet.stop_with_id_token_share,
                    plug_and_charge_share=fleet.plug_and_charge_share,
                )
                for which in (0, 1)
            ]
            self.sites.append(
                Site(
                    self,
                    spec,
                    [stations[i] for i in indices],
                    processes[0],
                    processes[1],
                    np.random.default_rng(site_rngs[3 * number + 2]),
                    None if booking_seeds is None else np.random.default_rng(booking_seeds[number]),
                )
            )

    def _model_mix(self) -> list[tuple[EvModel, float]]:
        chosen = self.scenario.ev_fleet.models
        swapping = self.scenario.stations.battery_swap is not None
        if chosen is None:
            # Swap EVs go to swap stations only; a charging site's default mix has none.
            cars = [
                m
                for m in self.catalogue.values()
                if m.kind == "car" and (m.swap_pack_wh is not None) == swapping
            ]
            return [(model, 1.0) for model in cars]
        return [(self.catalogue[name], share) for name, share in chosen.items()]

    def any_arrival(self, now_s: float, supply: str) -> EvArrival:
        """An EV for a remote start at a site whose profile draws none that fits."""
        model = next(m for m in self.catalogue.values() if supply == "DC" or m.max_ac_w > 0)
        fleet = self.scenario.ev_fleet
        return EvArrival(
            arrival_s=now_s,
            model=model,
            soc_start=0.3,
            target_soc=0.8,
            min_soc=fleet.min_soc,
            departure_s=now_s + 3600.0,
            id_token="",
            id_token_type=fleet.id_tokens.type,
            id_token_first=True,
            uses_iso15118_20=False,
        )

    # -- processes ------------------------------------------------------------------------

    def start(self) -> None:
        for site in self.sites:
            if site.spec.loop_idle_s is not None:
                for station in site.stations:
                    for evse in station.evses:
                        site.schedule_loop_arrival(station, evse, 0.0)
            elif site.spec.arrivals_per_evse_per_day > 0:
                self.pump.process(self._arrivals(site))
        for site in self.sites:
            if site.spec.external_limits and site.capacity_w is not None:
                self.pump.call_at(0.0, site.report_external_limits)
            for change in site.spec.capacity_changes:
                self.pump.call_at(
                    change.at_s,
                    partial(
                        site.set_capacity,
                        None if change.capacity_kw is None else change.capacity_kw * 1000.0,
                        change.is_grid_critical,
                    ),
                )
        self.pump.process(self._grid())
        for event in self.der.events:
            self.pump.process(self._der_event(event))

    def _arrivals(self, site: Site) -> Generator[Any, Any, None]:
        """The site's EVs, one after the other.  Where drivers reserve ahead, the arrivals are
        drawn `booking_lookahead_s` in advance (the draws are the same, only earlier), so a
        driver can book before arriving however busy the site; elsewhere each is drawn when
        the one before it arrives."""
        env = self.pump.env
        lookahead_s = site.booking_lookahead_s
        drawn: deque[tuple[EvArrival, _Booking | None]] = deque()
        exhausted = False
        while True:
            # The EV after the last one drawn arrives after it: drawn once the last one is
            # within the lookahead, it is drawn in time to book.
            while not exhausted and (
                not drawn or drawn[-1][0].arrival_s <= env.now + lookahead_s + _EPS_S
            ):
                after_s = drawn[-1][0].arrival_s if drawn else env.now
                upcoming = site.arrivals.next_arrival(after_s)
                if upcoming is None:
                    exhausted = True
                else:
                    drawn.append((upcoming, site.book_ahead(upcoming, env.now)))
            if not drawn:
                return
            wake_s = drawn[0][0].arrival_s
            if lookahead_s > 0 and not exhausted:
                wake_s = min(wake_s, drawn[-1][0].arrival_s - lookahead_s)
            yield env.timeout(max(0.0, wake_s - env.now))
            if env.now < drawn[0][0].arrival_s - _EPS_S:
                continue  # woke to draw the next EVs, not for an arrival
            arrival, booking = drawn.popleft()
            if site.swaps:
                if not site.swap_arrival(arrival):
                    site.turned_away += 1
                continue
            target = None if booking is None else site.booked_evse(booking)
            if target is None:
                target = site.free_evse(arrival.model, arrival.id_token)
            if target is None:
                site.turned_away += 1
                continue
            station, evse = target
            ev_arrives(station, evse, arrival)

    def _grid(self) -> Generator[Any, Any, None]:
        env = self.pump.env
        interval_s = self.scenario.grid.sample_interval_s
        boundaries = sorted(b for b in self.frequency.event_boundaries() if b >= 0)
        if self.scenario.grid.sigma_hz == 0 and not boundaries:
            return
        while True:
            self._sample_frequency(env.now)
            next_s = (math.floor(env.now / interval_s) + 1) * interval_s
            upcoming = [b for b in boundaries if b > env.now]
            if upcoming:
                next_s = min(next_s, upcoming[0])
            yield env.timeout(next_s - env.now)

    def _sample_frequency(self, now_s: float) -> None:
        frequency_hz = self.frequency.frequency_at(now_s)
        if frequency_hz == self.frequency_hz:
            return
        self.frequency_hz = frequency_hz
        for evse in self._subscribers.values():
            evse.wake()
        for site in self.sites:
            if abs(frequency_hz - self._last_row_hz.get(site.name, 0.0)) >= _FREQUENCY_ROW_HZ:
                self.record_power(site, now_s)

    def _der_event(self, event: DerEvent) -> Generator[Any, Any, None]:
        env = self.pump.env
        yield env.timeout(max(0.0, event.start_s - env.now))
        self._report_der(event, ended=False)
        yield env.timeout(event.duration_s)
        self._report_der(event, ended=True)

    def _report_der(self, event: DerEvent, *, ended: bool) -> None:
        for site in self.sites:
            for station in site.stations:
                if station.running:
                    station.post(GridEvent(event, ended))

    # -- frequency subscribers and the power record -----------------------------------------

    def subscribe_frequency(self, key: _Key, evse: Evse) -> None:
        self._subscribers[key] = evse

    def unsubscribe_frequency(self, key: _Key) -> None:
        self._subscribers.pop(key, None)

    def record_power(self, site: Site, now_s: float) -> None:
        """A row of site_power.csv; several changes in one simulated instant make one row.
        Nothing without `keep_records`: no report file will be written."""
        if not self.keep_records:
            return
        self._last_row_hz[site.name] = self.frequency_hz
        sample = SitePowerSample(now_s, site.name, site.import_w, site.export_w, self.frequency_hz)
        last = self._last_row.get(site.name)
        if last is not None and self.power_samples[last].time_s == now_s:
            self.power_samples[last] = sample
            return
        self._last_row[site.name] = len(self.power_samples)
        self.power_samples.append(sample)

    def stop(self, at_s: float) -> None:
        """The run stopped at `at_s`: what the record holds from then on is the shutdown (EVs
        still charging end their sessions), which the reports leave out."""
        if self._stopped_s is None:
            self._stopped_s = at_s

    def end(self) -> None:
        """Close the record at the end of the run: one last row per site."""
        now_s = self.clock.sim_now()
        self.end_s = now_s if self._stopped_s is None else min(self._stopped_s, now_s)
        for site in self.sites:
            self.record_power(site, now_s)

    @property
    def turned_away(self) -> int:
        return sum(site.turned_away for site in self.sites)


async def _ask_for_swap(desk: SwapDesk, station_id: str, id_token: dict[str, str]) -> None:
    """A swap driver asks the CSMS's app for a swap; a refusal sends them on their way (the
    station keeps no pack of theirs: it was told of it only for the request)."""
    await desk.request_swap(station_id, id_token)


def _profile(spec: SiteSpec) -> Any:
    """The site kind's profile, with the scenario's overrides."""
    profile = SITE_PROFILES[spec.kind]
    return profile.with_overrides(
        dwell_s=None if spec.dwell_s is None else (spec.dwell_s.min, spec.dwell_s.max),
        soc_start=None if spec.soc_start is None else (spec.soc_start.min, spec.soc_start.max),
        target_soc=None if spec.target_soc is None else (spec.target_soc.min, spec.target_soc.max),
    )
