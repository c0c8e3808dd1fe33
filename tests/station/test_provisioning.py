"""The device model over OCPP, Reset, ChangeAvailability and DataTransfer (B, G, P)."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import CsmsConfig
from fleetsim.simulator.station import EvseConfig, StationConfig
from tests.helpers import STATION_ID, busy_site, station_on_memory_link

CHARGING_SOON = busy_site(dwell_s=7200, soc_start=0.1, target_soc=0.9)


def _variable(component: str, name: str, instance: str | None = None) -> dict[str, object]:
    variable: dict[str, object] = {"name": name}
    if instance is not None:
        variable["instance"] = instance
    return {"component": {"name": component}, "variable": variable}


async def test_new_heartbeat_interval_applies_to_the_next_beat(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(csms_config=CsmsConfig(heartbeat_interval_s=300)) as (
        _station,
        csms,
    ):
        answer = await csms.call(
            STATION_ID,
            "SetVariables",
            {
                "setVariableData": [
                    {**_variable("OCPPCommCtrlr", "HeartbeatInterval"), "attributeValue": "60"}
                ]
            },
        )
        assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
        set_at = trio.current_time()
        seen = csms.station(STATION_ID).messages_received
        with trio.fail_after(61):
            await csms.wait_for_message(STATION_ID, "Heartbeat", since=seen)
        assert trio.current_time() - set_at == pytest.approx(60, abs=0.01)


async def test_set_variables_refuses_read_only_and_invalid_values(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link() as (station, csms):
        answer = await csms.call(
            STATION_ID,
            "SetVariables",
            {
                "setVariableData": [
                    {**_variable("ChargingStation", "Model"), "attributeValue": "x"},
                    {**_variable("OCPPCommCtrlr", "HeartbeatInterval"), "attributeValue": "soon"},
                    {**_variable("TxCtrlr", "TxStartPoint"), "attributeValue": "Authorized"},
                    {**_variable("NoSuchCtrlr", "Enabled"), "attributeValue": "true"},
                    {**_variable("TxCtrlr", "NoSuchVariable"), "attributeValue": "true"},
                ]
            },
        )
        statuses = [result["attributeStatus"] for result in answer["setVariableResult"]]
        assert statuses == [
            "Rejected",
            "Rejected",
            "Accepted",
            "UnknownComponent",
            "UnknownVariable",
        ]
        assert station.device_model.members("TxCtrlr", "TxStartPoint") == ("Authorized",)


async def test_get_variables_reads_live_state(autojump_clock: MockClock) -> None:
    config = StationConfig(evses=(EvseConfig(connector_types=("cType2", "cCCS2")),))
    async with station_on_memory_link(config) as (_station, csms):
        answer = await csms.call(
            STATION_ID,
            "GetVariables",
            {
                "getVariableData": [
                    _variable("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent"),
                    {
                        "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 2}},
                        "variable": {"name": "ConnectorType"},
                    },
                    {
                        "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 2}},
                        "variable": {"name": "AvailabilityState"},
                    },
                    {**_variable("OCPPCommCtrlr", "HeartbeatInterval"), "attributeType": "Target"},
                ]
            },
        )
        results = answer["getVariableResult"]
        assert [r["attributeStatus"] for r in results] == [
            "Accepted",
            "Accepted",
            "Accepted",
            "NotSupportedAttributeType",
        ]
        assert [r.get("attributeValue") for r in results[:3]] == ["3", "cCCS2", "Available"]


@pytest.mark.parametrize(
    ("report_base", "expect_read_only"),
    [("FullInventory", True), ("ConfigurationInventory", False)],
)
async def test_base_report_lists_the_device_model(
    autojump_clock: MockClock, report_base: str, expect_read_only: bool
) -> None:
    async with station_on_memory_link() as (station, csms):
        answer = await csms.call(
            STATION_ID, "GetBaseReport", {"requestId": 7, "reportBase": report_base}
        )
        assert answer["status"] == "Accepted"
        reports = []
        with trio.fail_after(10):
            while not reports or reports[-1]["tbc"]:
                seen = csms.station(STATION_ID).messages_received
                reports.append(
                    await csms.wait_for_message(
                        STATION_ID,
                        "NotifyReport",
                        lambda p: p["seqNo"] == len(reports),
                        since=seen - 1 if not reports else seen,
                    )
                )
    items = [item for report in reports for item in report["reportData"]]
    assert [r["seqNo"] for r in reports] == list(range(len(reports)))
    assert all(r["requestId"] == 7 for r in reports)
    mutabilities = {item["variableAttribute"][0]["mutability"] for item in items}
    assert ("ReadOnly" in mutabilities) == expect_read_only
    if expect_read_only:
        assert len(items) == len(station.device_model.spec.variables)


async def test_reset_of_an_idle_station_reboots_it(autojump_clock: MockClock) -> None:
    async with station_on_memory_link() as (_station, csms):
        answer = await csms.call(STATION_ID, "Reset", {"type": "Immediate"})
        assert answer["status"] == "Accepted"
        with trio.fail_after(60):
            boot = await csms.wait_for_message(
                STATION_ID, "BootNotification", lambda p: p["reason"] == "RemoteReset"
            )
        assert boot["chargingStation"]["vendorName"] == "fleetsim"
        assert csms.station(STATION_ID).boots == 2


async def test_immediate_reset_ends_the_transaction_before_rebooting(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=CHARGING_SOON) as (_station, csms):
        with trio.fail_after(4 * 3600):
            await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Started"
            )
        answer = await csms.call(STATION_ID, "Reset", {"type": "Immediate"})
        assert answer["status"] == "Accepted"
        with trio.fail_after(60):
            ended = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended"
            )
            await csms.wait_for_message(
                STATION_ID, "BootNotification", lambda p: p["reason"] == "RemoteReset"
            )
        assert ended["triggerReason"] == "ResetCommand"
        assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
        actions = csms.station(STATION_ID).actions()
        assert actions.index("TransactionEvent") < len(actions) - 1 - actions[::-1].index(
            "BootNotification"
        )


async def test_on_idle_reset_waits_for_the_transaction_to_end(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(scenario=CHARGING_SOON) as (_station, csms):
        with trio.fail_after(4 * 3600):
            started = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Started"
            )
        answer = await csms.call(STATION_ID, "Reset", {"type": "OnIdle"})
        assert answer["status"] == "Scheduled"
        asked_at = trio.current_time()
        with trio.fail_after(3 * 3600):
            boot = await csms.wait_for_message(
                STATION_ID, "BootNotification", lambda p: p["reason"] == "RemoteReset"
            )
        assert boot["reason"] == "RemoteReset"
        transaction = csms.station(STATION_ID).transactions[
            started["transactionInfo"]["transactionId"]
        ]
        assert transaction.stopped_reason == "EVDisconnected"
        assert trio.current_time() - asked_at > 3600


async def test_change_availability_of_an_idle_evse_is_reported(autojump_clock: MockClock) -> None:
    async with station_on_memory_link() as (_station, csms):
        answer = await csms.call(
            STATION_ID,
            "ChangeAvailability",
            {"operationalStatus": "Inoperative", "evse": {"id": 1}},
        )
        assert answer["status"] == "Accepted"
        with trio.fail_after(10):
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", lambda p: p["connectorStatus"] == "Unavailable"
            )
        assert csms.station(STATION_ID).connectors[(1, 1)] == "Unavailable"


async def test_change_availability_with_a_transaction_is_scheduled(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=CHARGING_SOON) as (station, csms):
        with trio.fail_after(4 * 3600):
            await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Started"
            )
        answer = await csms.call(
            STATION_ID,
            "ChangeAvailability",
            {"operationalStatus": "Inoperative", "evse": {"id": 1}},
        )
        assert answer["status"] == "Scheduled"
        with trio.fail_after(3 * 3600):
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", lambda p: p["connectorStatus"] == "Unavailable"
            )
        assert not station.evses[0].operative


async def test_data_transfer_rejects_unknown_vendors(autojump_clock: MockClock) -> None:
    async with station_on_memory_link() as (_station, csms):
        answer = await csms.call(STATION_ID, "DataTransfer", {"vendorId": "com.example"})
        assert answer["status"] == "UnknownVendorId"
