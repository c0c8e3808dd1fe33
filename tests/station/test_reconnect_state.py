"""A station the CSMS accepted and that lost its connection is `accepted` again once it has
reconnected: the stations gauge counts it online, and every later drop counts as a reconnect.

A long run with drops (bench/soak.py) showed reconnected stations left in `connecting`, so the
gauge lost them and their next drop was not counted.
"""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.ocpp import OcppVersion

from ..helpers import STATION_ID, station_on_memory_link

DROPS = 3


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
async def test_a_reconnected_station_is_accepted_again_and_each_drop_is_counted(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        stats = station.stats
        assert station.state == "accepted"
        boots = csms.station(STATION_ID).actions().count("BootNotification")
        for drop in range(1, DROPS + 1):
            assert station.drop_connection()
            with trio.fail_after(600):
                await csms.wait_disconnected(STATION_ID)
                await csms.wait_connected(STATION_ID)
                await station.wait_synced()
            assert station.state == "accepted"
            by_state = {state: count for state, count in stats.stations_by_state.items() if count}
            assert by_state == {"accepted": 1}
            assert stats.stations_connected == 1
            assert stats.reconnects == drop
        # Registration survived every drop: no new BootNotification (B01 is for a reboot).
        assert csms.station(STATION_ID).actions().count("BootNotification") == boots
