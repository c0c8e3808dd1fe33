"""Shared test fixtures: a station joined to the embedded CSMS over memory channels."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import trio

from ev_models import SessionModelSettings, SimpleSessionModel
from simulator.clock import SimClock
from simulator.csms import Csms, CsmsConfig
from simulator.link import Link
from simulator.ocpp import OcppVersion
from simulator.station import Station, StationConfig
from simulator.stats import RunStats
from simulator.transport import open_memory_link

#: Simulated start of every test run.
T0 = dt.datetime(2026, 1, 15, 6, 0, tzinfo=dt.UTC)
STATION_ID = "CP00001"


@asynccontextmanager
async def station_on_memory_link(
    config: StationConfig | None = None,
    csms_config: CsmsConfig | None = None,
    sessions: SessionModelSettings | None = None,
    *,
    ocpp_version: OcppVersion = "2.1",
    speed: float = 1.0,
    seed: int = 7,
    wait_booted: bool = True,
) -> AsyncIterator[tuple[Station, Csms]]:
    """A running station and the CSMS it talks to; both stop when the block ends."""
    clock = SimClock(T0, speed)
    clock.start()
    csms = Csms(csms_config or CsmsConfig(), clock=lambda: clock.epoch_s())
    stats = RunStats()
    model = SimpleSessionModel(sessions, seed) if sessions is not None else None
    station = Station(
        STATION_ID, 1, config or StationConfig(ocpp_version=ocpp_version), clock, stats, model
    )

    def connect(s: Station) -> AbstractAsyncContextManager[Link]:
        return open_memory_link(
            s.id, csms.attach, s.handle, spawn=s.spawn, observer=stats, ocpp_version=ocpp_version
        )

    async with trio.open_nursery() as nursery:
        await nursery.start(station.run, connect)
        if wait_booted:
            with trio.fail_after(3600):
                await station.wait_synced()
        yield station, csms
        nursery.cancel_scope.cancel()
