"""Shared test fixtures: a station in a small world, joined to the embedded CSMS in memory."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import trio

from fleetsim.ev_models import load_catalogue
from fleetsim.simulator.clock import SimClock
from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.des import EventPump
from fleetsim.simulator.link import Link
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.run import station_config
from fleetsim.simulator.scenario import Scenario
from fleetsim.simulator.station import Station, StationConfig
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import open_memory_link
from fleetsim.simulator.world import World

#: Simulated start of every test run: a weekday at 12:00 UTC.
T0 = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
STATION_ID = "CP00001"

#: An EV whose numbers make test arithmetic easy: 40 kWh, 11 kW AC, no losses, no taper.
TEST_EV: dict[str, Any] = {
    "kind": "car",
    "usable_battery_kwh": 40,
    "max_ac_kw": 11,
    "ac_phases": 3,
    "max_dc_kw": 50,
    "dc_curve_kw": [[0.0, 50]],
    "ac_efficiency": 1.0,
    "dc_efficiency": 1.0,
    "iso15118_20": False,
    "bidirectional": False,
    "max_discharge_kw": 0,
    "sources": [{"figures": ["battery"], "cite": "a test vehicle"}],
}
NO_ARRIVALS: dict[str, Any] = {"sites": [{"name": "test", "arrivals_per_evse_per_day": 0}]}


def busy_site(
    *,
    dwell_s: float,
    soc_start: float,
    target_soc: float,
    id_token_first_share: float = 0.0,
    arrivals_per_evse_per_day: float = 720,
) -> dict[str, Any]:
    """Scenario sections for a site where test EVs arrive every few minutes, each staying
    `dwell_s` and charging from `soc_start` to `target_soc` (no ISO 15118)."""
    return {
        "sites": [
            {
                "name": "test",
                "arrivals_per_evse_per_day": arrivals_per_evse_per_day,
                "dwell_s": {"min": dwell_s, "max": dwell_s},
                "soc_start": {"min": soc_start, "max": soc_start},
                "target_soc": {"min": target_soc, "max": target_soc},
            }
        ],
        "ev_fleet": {
            "models": {"test-ev": 1.0},
            "extra_models": {"test-ev": TEST_EV},
            "id_token_first_share": id_token_first_share,
            "iso15118_share": 0.0,
        },
    }


def one_station_scenario(
    overrides: Mapping[str, Any] | None = None,
    *,
    ocpp_version: OcppVersion = "2.1",
    speed: float = 1.0,
    seed: int = 7,
) -> Scenario:
    """A one-station scenario; `overrides` replaces whole top-level sections."""
    data: dict[str, Any] = {
        "name": "test",
        "seed": seed,
        "speed": speed,
        "start": T0.isoformat(),
        "ocpp_version": ocpp_version,
        "stations": {"count": 1},
        "ev_fleet": {"models": {"test-ev": 1.0}, "extra_models": {"test-ev": TEST_EV}},
        **NO_ARRIVALS,
    }
    data.update(overrides or {})
    return Scenario.model_validate(data)


@asynccontextmanager
async def station_on_memory_link(
    config: StationConfig | None = None,
    csms_config: CsmsConfig | None = None,
    scenario: Mapping[str, Any] | None = None,
    *,
    ocpp_version: OcppVersion = "2.1",
    speed: float = 1.0,
    seed: int = 7,
    wait_booted: bool = True,
) -> AsyncIterator[tuple[Station, Csms]]:
    """A running station, its world, and the CSMS it talks to; all stop when the block ends."""
    built = one_station_scenario(scenario, ocpp_version=ocpp_version, speed=speed, seed=seed)
    clock = SimClock(T0, speed)
    clock.start()
    csms = Csms(csms_config or CsmsConfig(), clock=clock.epoch_s)
    stats = RunStats()
    station = Station(STATION_ID, 1, config or station_config(built), clock, stats)
    pump = EventPump(clock)
    world = World(built, clock, pump, {1: station}, load_catalogue(built.ev_fleet.extra_models))

    def connect(s: Station) -> AbstractAsyncContextManager[Link]:
        return open_memory_link(
            s.id, csms.attach, s.handle, spawn=s.spawn, observer=stats, ocpp_version=ocpp_version
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump.run)
        await nursery.start(station.run, connect)
        world.start()
        if wait_booted:
            with trio.fail_after(3600):
                await station.wait_synced()
        yield station, csms
        nursery.cancel_scope.cancel()
