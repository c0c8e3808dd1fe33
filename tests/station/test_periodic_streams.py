"""Periodic event streams (OCPP 2.1, N11-N15): a monitor whose values go out as
NotifyPeriodicEventStream SEND frames instead of NotifyEvents."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms, CsmsConfig
from tests.helpers import STATION_ID, station_on_memory_link

EVSE_POWER = {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"}}


def messages_now(csms: Csms) -> int:
    return csms.station(STATION_ID).messages_received


def received(csms: Csms, action: str, since: int) -> list[Mapping[str, Any]]:
    return [m.payload for m in csms.station(STATION_ID).messages_since(since) if m.action == action]


async def streamed_monitor(csms: Csms, interval_s: int, values: int) -> tuple[int, int]:
    """A Periodic monitor every 10 s on EVSE power, streamed; (monitor id, stream id)."""
    since = messages_now(csms)
    answer = await csms.call(
        STATION_ID,
        "SetVariableMonitoring",
        {
            "setMonitoringData": [
                {
                    **EVSE_POWER,
                    "type": "Periodic",
                    "value": 10,
                    "severity": 7,
                    "periodicEventStream": {"interval": interval_s, "values": values},
                }
            ]
        },
    )
    [result] = answer["setMonitoringResult"]
    assert result["status"] == "Accepted"
    with trio.fail_after(10):
        opened = await csms.wait_for_message(STATION_ID, "OpenPeriodicEventStream", since=since)
    data = opened["constantStreamData"]
    assert data["variableMonitoringId"] == result["id"]
    assert data["params"] == {"interval": interval_s, "values": values}
    return int(result["id"]), int(data["id"])


async def test_a_streamed_monitor_sends_its_values_in_batches_and_not_as_events(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link() as (_station, csms):
        _, stream_id = await streamed_monitor(csms, interval_s=300, values=3)
        since = messages_now(csms)
        with trio.fail_after(95):
            first = await csms.wait_for_message(
                STATION_ID, "NotifyPeriodicEventStream", since=since
            )
            second = await csms.wait_for_message(
                STATION_ID, "NotifyPeriodicEventStream", since=messages_now(csms)
            )
        for message in (first, second):
            assert message["id"] == stream_id
            assert message["pending"] == 0
            assert [point["v"] for point in message["data"]] == ["0", "0", "0"]
            assert [point["t"] for point in message["data"]] == [0, 10, 20]
        assert received(csms, "NotifyEvent", since) == []

        answer = await csms.call(STATION_ID, "GetPeriodicEventStream", {})
        [stream] = answer["constantStreamData"]
        assert stream["id"] == stream_id and stream["params"] == {"interval": 300, "values": 3}

        # Sent by time instead: 55 s after the first value waiting, whatever the count.
        answer = await csms.call(
            STATION_ID,
            "AdjustPeriodicEventStream",
            {"id": stream_id, "params": {"interval": 55, "values": 0}},
        )
        assert answer["status"] == "Accepted"
        since = messages_now(csms)
        with trio.fail_after(130):
            await csms.wait_for_message(STATION_ID, "NotifyPeriodicEventStream", since=since)
            adjusted = await csms.wait_for_message(
                STATION_ID, "NotifyPeriodicEventStream", since=messages_now(csms)
            )
        assert len(adjusted["data"]) == 6
        assert adjusted["data"][-1]["t"] == 50


async def test_clearing_the_monitor_closes_its_stream(autojump_clock: MockClock) -> None:
    async with station_on_memory_link() as (_station, csms):
        monitor_id, stream_id = await streamed_monitor(csms, interval_s=60, values=0)
        since = messages_now(csms)
        answer = await csms.call(STATION_ID, "ClearVariableMonitoring", {"id": [monitor_id]})
        assert answer["clearMonitoringResult"][0]["status"] == "Accepted"
        with trio.fail_after(10):
            closed = await csms.wait_for_message(
                STATION_ID, "ClosePeriodicEventStream", since=since
            )
        assert closed == {"id": stream_id}
        answer = await csms.call(STATION_ID, "GetPeriodicEventStream", {})
        assert "constantStreamData" not in answer
        refused = await csms.call(
            STATION_ID,
            "AdjustPeriodicEventStream",
            {"id": stream_id, "params": {"interval": 60, "values": 1}},
        )
        assert refused["status"] == "Rejected"
        with trio.move_on_after(120):
            await csms.wait_for_message(STATION_ID, "NotifyPeriodicEventStream", since=since)
            pytest.fail("a closed stream went on sending")


async def test_a_refused_stream_leaves_the_monitor_reporting_with_notify_event(
    autojump_clock: MockClock,
) -> None:
    config = CsmsConfig(
        response_overrides={"OpenPeriodicEventStream": lambda _id, _payload: {"status": "Rejected"}}
    )
    async with station_on_memory_link(csms_config=config) as (_station, csms):
        monitor_id, _ = await streamed_monitor(csms, interval_s=60, values=0)
        since = messages_now(csms)
        with trio.fail_after(30):
            event = await csms.wait_for_message(STATION_ID, "NotifyEvent", since=since)
        assert event["eventData"][0]["variableMonitoringId"] == monitor_id
        assert event["eventData"][0]["trigger"] == "Periodic"
        assert received(csms, "NotifyPeriodicEventStream", since) == []
