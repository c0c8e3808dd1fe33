"""A CSMS that answers with CALLERRORs or garbage: counted per action, the station goes on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import trio
from trio.testing import MockClock

from simulator.csms import CsmsConfig
from simulator.ocpp import ErrorCode, RpcError
from tests.helpers import STATION_ID, station_on_memory_link


def _busy(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    raise RpcError(ErrorCode.INTERNAL_ERROR, "database is down")


def _garbage(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    return {"status": "Maybe"}  # StatusNotificationResponse has no fields at all


async def test_callerrors_and_invalid_answers_are_counted_and_the_station_goes_on(
    autojump_clock: MockClock,
) -> None:
    config = CsmsConfig(
        heartbeat_interval_s=60,
        validate_outgoing=False,
        response_overrides={"Heartbeat": _busy, "StatusNotification": _garbage},
    )
    async with station_on_memory_link(csms_config=config) as (station, csms):
        with trio.fail_after(400):
            for _ in range(3):
                seen = csms.station(STATION_ID).messages_received
                await csms.wait_for_message(STATION_ID, "Heartbeat", since=seen)
        await trio.sleep(1)
        stats = station.stats
        assert stats.callerrors == {("Heartbeat", "InternalError"): 3}
        assert stats.violations == {("StatusNotification", "FormatViolation"): 1}
        assert stats.calls["Heartbeat"].errors == 3
        assert station.registration == "Accepted"
        assert csms.station(STATION_ID).connections == 1
