"""The fleet: ramp-up at the configured rate, and one failing station never sinks the rest."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.clock import SimClock
from fleetsim.simulator.csms import Csms
from fleetsim.simulator.fleet import Fleet
from fleetsim.simulator.link import Link
from fleetsim.simulator.station import Station, StationConfig
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import open_memory_link
from tests.helpers import T0


def _fleet(count: int, ramp_up_per_s: float, broken: str | None = None) -> tuple[Fleet, Csms]:
    clock = SimClock(T0)
    clock.start()
    stats = RunStats()
    csms = Csms()
    config = StationConfig()
    stations = [Station(f"CP{i}", i, config, clock, stats) for i in range(1, count + 1)]

    def connect(station: Station) -> AbstractAsyncContextManager[Link]:
        if station.id == broken:
            raise RuntimeError(f"{station.id} has a bug")
        return open_memory_link(
            station.id, csms.attach, station.handle, spawn=station.spawn, observer=stats
        )

    return Fleet(stations, connect, ramp_up_per_s), csms


async def test_stations_start_at_the_ramp_up_rate(autojump_clock: MockClock) -> None:
    fleet, csms = _fleet(100, ramp_up_per_s=50)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(fleet.run)
        await trio.sleep(1.0)
        assert fleet.started == pytest.approx(50, abs=1)
        with trio.fail_after(5):
            await csms.wait_connected("CP100")
        assert trio.current_time() == pytest.approx(2.0, abs=0.05)
        nursery.cancel_scope.cancel()


async def test_a_failing_station_is_counted_and_the_others_go_on(
    autojump_clock: MockClock,
) -> None:
    fleet, csms = _fleet(3, ramp_up_per_s=100, broken="CP2")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(fleet.run)
        with trio.fail_after(10):
            await fleet.stations[0].wait_synced()
            await fleet.stations[2].wait_synced()
            while not fleet.failures:
                await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert [failure.station_id for failure in fleet.failures] == ["CP2"]
    assert "RuntimeError: CP2 has a bug" in fleet.failures[0].error
    assert fleet.stations[0].stats.station_failures == 1
    assert set(csms.stations) == {"CP1", "CP3"}
