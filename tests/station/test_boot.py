"""Boot, heartbeat and what may be sent before Accepted (B01-B04)."""

from __future__ import annotations

import itertools

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import AcceptAfter, CsmsConfig
from fleetsim.simulator.ocpp import CallErrorReceived
from tests.helpers import STATION_ID, station_on_memory_link


async def test_accepted_station_reports_every_connector_then_heartbeats(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(csms_config=CsmsConfig(heartbeat_interval_s=60)) as (
        station,
        csms,
    ):
        with trio.fail_after(200):
            await csms.wait_for_message(STATION_ID, "Heartbeat")
        assert csms.station(STATION_ID).actions()[:2] == ["BootNotification", "StatusNotification"]
        assert csms.station(STATION_ID).connectors == {(1, 1): "Available"}
        assert station.device_model.integer("OCPPCommCtrlr", "HeartbeatInterval") == 60


async def test_heartbeats_come_at_the_interval_the_csms_gave(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(csms_config=CsmsConfig(heartbeat_interval_s=60)) as (
        _station,
        csms,
    ):
        beats_at = []
        with trio.fail_after(400):
            for _ in range(4):
                seen = csms.station(STATION_ID).messages_received
                await csms.wait_for_message(STATION_ID, "Heartbeat", since=seen)
                beats_at.append(trio.current_time())
        gaps = [later - earlier for earlier, later in itertools.pairwise(beats_at)]
        assert gaps == pytest.approx([60, 60, 60], abs=0.001)


async def test_pending_station_sends_nothing_but_boots_until_accepted(
    autojump_clock: MockClock,
) -> None:
    policy = AcceptAfter(2, status="Pending", retry_interval_s=30)
    async with station_on_memory_link(csms_config=CsmsConfig(boot_policy=policy)) as (
        station,
        csms,
    ):
        with trio.fail_after(10):
            await csms.wait_for_message(STATION_ID, "StatusNotification")
        record = csms.station(STATION_ID)
        assert record.actions()[:4] == [
            "BootNotification",
            "BootNotification",
            "BootNotification",
            "StatusNotification",
        ]
        assert record.boots == 3
        # Two Pending answers with interval 30 s: the third boot came 60 s after the first.
        assert trio.current_time() == pytest.approx(60, abs=0.5)
        assert station.registration == "Accepted"


async def test_trigger_message_during_pending_boots_at_once(autojump_clock: MockClock) -> None:
    policy = AcceptAfter(1, status="Pending", retry_interval_s=3600)
    async with station_on_memory_link(
        csms_config=CsmsConfig(boot_policy=policy), wait_booted=False
    ) as (station, csms):
        with trio.fail_after(10):
            await csms.wait_connected(STATION_ID)
            await csms.wait_for_message(STATION_ID, "BootNotification")
            while station.registration != "Pending":
                await trio.sleep(0.01)
        asked_at = trio.current_time()
        answer = await csms.call(
            STATION_ID, "TriggerMessage", {"requestedMessage": "BootNotification"}
        )
        assert answer["status"] == "Accepted"
        with trio.fail_after(10):
            while station.registration != "Accepted":
                await trio.sleep(0.01)
        assert trio.current_time() - asked_at < 1


async def test_pending_station_answers_the_csms_configuration_requests(
    autojump_clock: MockClock,
) -> None:
    policy = AcceptAfter(1, status="Pending", retry_interval_s=3600)
    async with station_on_memory_link(
        csms_config=CsmsConfig(boot_policy=policy), wait_booted=False
    ) as (station, csms):
        with trio.fail_after(10):
            while station.registration != "Pending":
                await trio.sleep(0.01)
        answer = await csms.call(
            STATION_ID,
            "GetVariables",
            {
                "getVariableData": [
                    {"component": {"name": "ChargingStation"}, "variable": {"name": "Model"}}
                ]
            },
        )
        assert answer["getVariableResult"][0]["attributeValue"] == station.config.model
        assert csms.station(STATION_ID).actions() == ["BootNotification"]


async def test_rejected_station_refuses_requests_and_boots_again_after_the_interval(
    autojump_clock: MockClock,
) -> None:
    policy = AcceptAfter(1, status="Rejected", retry_interval_s=120)
    async with station_on_memory_link(
        csms_config=CsmsConfig(boot_policy=policy), wait_booted=False
    ) as (station, csms):
        with trio.fail_after(10):
            while station.registration != "Rejected":
                await trio.sleep(0.01)
        with pytest.raises(CallErrorReceived) as refused:
            await csms.call(STATION_ID, "TriggerMessage", {"requestedMessage": "Heartbeat"})
        assert refused.value.code == "SecurityError"
        with trio.fail_after(200):
            while station.registration != "Accepted":
                await trio.sleep(1)
        assert trio.current_time() == pytest.approx(120, abs=1.5)
        assert csms.station(STATION_ID).actions()[:2] == ["BootNotification", "BootNotification"]
