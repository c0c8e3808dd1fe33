"""`World`: the sites, the EVs that come to them, and the grid, as simpy processes.

Each site has an arrival process of its kind (ev_models.population): when an EV arrives, the
world picks a free EVSE at the site and the station plays the visit (station/ev_driver.py).
While EVs charge, the site shares its grid connection among them (grid_models.site), and a
grid process samples the frequency (grid_models.frequency) for the EVs that follow it
(LocalFrequency profiles) and for the report.  The world tells each running station when a
scripted DER event begins and ends (`GridEvent`); what the station sends about it is its own
business (block R).

Everything here runs on simulated time through `EventPump`, and every random draw comes from
generators seeded from the scenario's seed, one per purpose, so a run is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import replace
from typing import Any

import numpy as np

from ev_models import ArrivalProcess, EvArrival, EvModel, EvSession
from ev_models.population import SITE_PROFILES
from grid_models import DerEvent, DerSchedule, DroopCurve, FrequencyEvent, FrequencyModel
from grid_models.site import allocate

from .clock import SimClock, format_timestamp
from .des import EventPump
from .report.records import GridEventMark, SessionRecord, SitePowerSample
from .scenario import Scenario, SiteSpec
from .station import Station
from .station.core import ActiveLimit, GridEvent, StationCore
from .station.ev_driver import ev_arrives
from .station.evse import Evse, RemoteStart

__all__ = ["Site", "World"]

#: Simulated seconds between two load-balancing cycles of a site with a capacity limit.
BALANCE_INTERVAL_S = 10.0
#: A change of the grid frequency this large (Hz) gets a row in site_power.csv.
_FREQUENCY_ROW_HZ = 0.005

_Key = tuple[str, int]


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
    ) -> None:
        self.world = world
        self.name = spec.name
        self.spec = spec
        self.stations = stations
        self.capacity_w = None if spec.capacity_kw is None else spec.capacity_kw * 1000.0
        self.arrivals = arrivals
        self.remote_arrivals = remote_arrivals
        self._active: dict[_Key, tuple[StationCore, Evse, EvSession]] = {}
        self._power_w: dict[_Key, float] = {}
        self._demand_w: dict[_Key, float] = {}
        self._balance_pending = False
        self._last_balance_s = -math.inf
        self.import_w = 0.0
        self.export_w = 0.0
        self._next_station = 0
        self.turned_away = 0
        self._loop_rng = loop_rng
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
        if self.capacity_w is not None:
            # Until the next balancing cycle a new EV gets what the connection has left.
            session.set_share(max(0.0, self.capacity_w - self.import_w + self.export_w), now_s)
        return session

    def power_changed(self, station: StationCore, evse: Evse, now_s: float) -> None:
        """The visit task changed an EV's inputs: update the site's totals, and ask for a
        balancing cycle if what the EV wants (not just what it gets) changed."""
        key = (station.id, evse.id)
        entry = self._active.get(key)
        if entry is None:
            return
        session = entry[2]
        self._account(key, session.power_w, now_s)
        if self.capacity_w is None:
            return
        demand_w = session.demand_w
        if demand_w != self._demand_w.get(key):
            self._demand_w[key] = demand_w
            self._request_balance(now_s)

    def session_ended(
        self, station: StationCore, evse: Evse, arrival: EvArrival, now_s: float
    ) -> None:
        key = (station.id, evse.id)
        entry = self._active.pop(key, None)
        self._demand_w.pop(key, None)
        if entry is None:
            return
        self._account(key, 0.0, now_s)
        self._power_w.pop(key, None)
        session = entry[2]
        imported_wh = session.imported_wh_at(now_s)
        exported_wh = session.exported_wh_at(now_s)
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
        if self.capacity_w is not None and self._active:
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
        """Share the connection among the charging EVs by water-filling (grid_models.site);
        wake an EV's visit task only if its next physics event moved before its sleep."""
        self._balance_pending = False
        now_s = self.world.clock.sim_now()
        self._last_balance_s = now_s
        demands: dict[_Key, float] = {}
        for key, (_, _, session) in self._active.items():
            demand_w = session.demand_w
            self._demand_w[key] = demand_w
            demands[key] = demand_w
        shares = allocate(demands, self.capacity_w)
        for key, (_, evse, session) in self._active.items():
            share_w = shares[key] if demands[key] > 0 else None
            session.set_share(share_w, now_s)
            self._account(key, session.power_w, now_s)
            if session.next_change_s() < evse.wake_at_s:
                evse.wake()

    def _account(self, key: _Key, power_w: float, now_s: float) -> None:
        """Keep the site's import and export totals by differences: O(1) per change."""
        before_w = self._power_w.get(key, 0.0)
        if power_w == before_w:
            return
        self._power_w[key] = power_w
        self.import_w += max(power_w, 0.0) - max(before_w, 0.0)
        self.export_w += max(-power_w, 0.0) - max(-before_w, 0.0)
        if abs(self.import_w) < 1e-6:
            self.import_w = 0.0
        if abs(self.export_w) < 1e-6:
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
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.pump = pump
        self.catalogue = catalogue
        seeds = np.random.SeedSequence(list(seed_entropy or (scenario.seed,)))
        site_seeds, grid_seed = seeds.spawn(2)
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
                )
            )

    def _model_mix(self) -> list[tuple[EvModel, float]]:
        chosen = self.scenario.ev_fleet.models
        if chosen is None:
            cars = [m for m in self.catalogue.values() if m.kind == "car"]
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
        self.pump.process(self._grid())
        for event in self.der.events:
            self.pump.process(self._der_event(event))

    def _arrivals(self, site: Site) -> Generator[Any, Any, None]:
        env = self.pump.env
        while True:
            arrival = site.arrivals.next_arrival(env.now)
            if arrival is None:
                return
            yield env.timeout(max(0.0, arrival.arrival_s - env.now))
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
        """A row of site_power.csv; several changes in one simulated instant make one row."""
        self._last_row_hz[site.name] = self.frequency_hz
        sample = SitePowerSample(now_s, site.name, site.import_w, site.export_w, self.frequency_hz)
        last = self._last_row.get(site.name)
        if last is not None and self.power_samples[last].time_s == now_s:
            self.power_samples[last] = sample
            return
        self._last_row[site.name] = len(self.power_samples)
        self.power_samples.append(sample)

    def end(self) -> None:
        """Close the record at the end of the run: one last row per site."""
        now_s = self.clock.sim_now()
        for site in self.sites:
            self.record_power(site, now_s)

    @property
    def turned_away(self) -> int:
        return sum(site.turned_away for site in self.sites)


def _profile(spec: SiteSpec) -> Any:
    """The site kind's profile, with the scenario's overrides."""
    profile = SITE_PROFILES[spec.kind]
    return profile.with_overrides(
        dwell_s=None if spec.dwell_s is None else (spec.dwell_s.min, spec.dwell_s.max),
        soc_start=None if spec.soc_start is None else (spec.soc_start.min, spec.soc_start.max),
        target_soc=None if spec.target_soc is None else (spec.target_soc.min, spec.target_soc.max),
    )
