"""A CSMS that answers with CALLERRORs or garbage: counted per action, the station goes on."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import CsmsConfig
from fleetsim.simulator.ocpp import ErrorCode, RpcError
from tests.helpers import STATION_ID, busy_site, station_on_memory_link


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


async def test_a_refused_transaction_event_is_retried_then_dropped_and_the_rest_go_on(
    autojump_clock: MockClock,
) -> None:
    """E13: a TransactionEvent answered with a CALLERROR is sent again MessageAttempts times in
    all, MessageAttemptInterval times the attempt number apart, then dropped and counted; the
    events behind it go out in order."""
    attempts_s: list[float] = []
    clock_of: list[Any] = []

    def refuse_started(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        if payload["eventType"] == "Started":
            attempts_s.append(clock_of[0].sim_now())
            raise RpcError(ErrorCode.INTERNAL_ERROR, "database is down")
        return {}

    config = CsmsConfig(response_overrides={"TransactionEvent": refuse_started})
    scenario = busy_site(dwell_s=1800, soc_start=0.2, target_soc=0.8)
    async with station_on_memory_link(csms_config=config, scenario=scenario) as (station, csms):
        clock_of.append(station.clock)
        with trio.fail_after(3600):
            updated = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Updated"
            )
        interval_s = station.device_model.integer(
            "OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent"
        )
        dropped = station.stats.transaction_events_dropped
    assert len(attempts_s) == 3  # MessageAttempts
    gaps_s = [later - earlier for earlier, later in itertools.pairwise(attempts_s)]
    assert gaps_s == pytest.approx([interval_s, 2 * interval_s])
    assert dropped == 1
    assert updated["seqNo"] == 1  # the Started event's seqNo was 0: nothing renumbered
