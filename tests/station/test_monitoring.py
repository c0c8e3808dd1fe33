"""Variable monitoring as the CSMS sees it (N02-N09): monitors set, reported, cleared, and the
NotifyEvents they raise when the simulated values change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.ev_models import EvArrival, load_catalogue
from fleetsim.simulator.csms import Csms
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import Station
from fleetsim.simulator.station.ev_driver import ev_arrives
from tests.helpers import STATION_ID, TEST_EV, station_on_memory_link

VERSIONS = pytest.mark.parametrize("version", ["2.1", "2.0.1"])
TEST_MODEL = load_catalogue({"test-ev": TEST_EV})["test-ev"]
EVSE_POWER = {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"}}
HEARTBEAT = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
CONNECTOR_STATE = {
    "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
    "variable": {"name": "AvailabilityState"},
}
#: The test EV charges at 11 kW on the default 22 kW EVSE.
EV_POWER = "11000"


def messages_now(csms: Csms) -> int:
    return csms.station(STATION_ID).messages_received


def events_since(csms: Csms, since: int) -> list[dict[str, Any]]:
    """Every eventData entry of the NotifyEvents received from message `since` on."""
    return [
        entry
        for message in csms.station(STATION_ID).messages_since(since)
        if message.action == "NotifyEvent"
        for entry in message.payload["eventData"]
    ]


def of_monitor(monitor_id: int) -> Any:
    return lambda payload: any(
        entry.get("variableMonitoringId") == monitor_id for entry in payload["eventData"]
    )


async def set_monitor(csms: Csms, target: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
    """SetVariableMonitoring of one monitor on `target`; its result."""
    answer = await csms.call(
        STATION_ID, "SetVariableMonitoring", {"setMonitoringData": [{**target, **fields}]}
    )
    [result] = answer["setMonitoringResult"]
    return dict(result)


async def monitor_report(csms: Csms, **request: Any) -> tuple[str, list[dict[str, Any]]]:
    """GetMonitoringReport's status and the monitors its NotifyMonitoringReports carried."""
    since = messages_now(csms)
    answer = await csms.call(STATION_ID, "GetMonitoringReport", {"requestId": 9, **request})
    if answer["status"] != "Accepted":
        return answer["status"], []
    found = []
    with trio.fail_after(60):
        while True:
            part = await csms.wait_for_message(STATION_ID, "NotifyMonitoringReport", since=since)
            since = messages_now(csms)
            assert part["requestId"] == 9
            found += part.get("monitor", [])
            if not part.get("tbc"):
                return answer["status"], found


def ids_in(report: list[dict[str, Any]]) -> set[int]:
    return {monitor["id"] for item in report for monitor in item["variableMonitoring"]}


def driver_arrives(station: Station, *, stay_s: float = 1800) -> None:
    """An EV charges at EVSE 1 for `stay_s` (plugged in first, its token accepted)."""
    now_s = station.clock.sim_now()
    arrival = EvArrival(
        arrival_s=now_s,
        model=TEST_MODEL,
        soc_start=0.2,
        target_soc=0.9,
        min_soc=0.1,
        departure_s=now_s + stay_s,
        id_token="DRIVER-1",
        id_token_type="ISO14443",
        id_token_first=False,
        uses_iso15118_20=False,
    )
    ev_arrives(station, station.evses[0], arrival)


async def set_variable(csms: Csms, target: Mapping[str, Any], value: str) -> None:
    answer = await csms.call(
        STATION_ID, "SetVariables", {"setVariableData": [{**target, "attributeValue": value}]}
    )
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"


# -- N02 / N07: thresholds on a value that follows the simulation -------------------------------


@VERSIONS
async def test_a_power_monitor_fires_when_the_power_crosses_its_threshold_and_not_otherwise(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        crossed = await set_monitor(csms, EVSE_POWER, type="UpperThreshold", value=5000, severity=4)
        never = await set_monitor(csms, EVSE_POWER, type="UpperThreshold", value=20000, severity=5)
        assert (crossed["status"], never["status"]) == ("Accepted", "Accepted")
        since = messages_now(csms)
        with trio.move_on_after(600):
            await csms.wait_for_message(STATION_ID, "NotifyEvent", since=since)
            pytest.fail("a monitor fired while the EVSE was idle")
        arrived_s = station.clock.sim_now()
        driver_arrives(station, stay_s=1800)
        with trio.fail_after(300):
            alert = await csms.wait_for_message(
                STATION_ID, "NotifyEvent", of_monitor(crossed["id"]), since=since
            )
        [entry] = alert["eventData"]
        assert entry["trigger"] == "Alerting"
        assert entry["cleared"] is False
        assert entry["actualValue"] == EV_POWER
        assert entry["eventNotificationType"] == "CustomMonitor"
        assert entry["component"] == EVSE_POWER["component"]
        assert ("severity" in entry) == (version == "2.1")
        # Reported the moment power flowed (within the walk and authorization, not a poll).
        assert station.clock.sim_now() - arrived_s < 60
        since_alert = messages_now(csms)
        with trio.fail_after(3600):
            back = await csms.wait_for_message(
                STATION_ID, "NotifyEvent", of_monitor(crossed["id"]), since=since_alert
            )
        [entry] = back["eventData"]
        assert (entry["cleared"], entry["actualValue"]) == (True, "0")
        assert station.clock.sim_now() - arrived_s == pytest.approx(1800, abs=60)
        monitor_ids = {e["variableMonitoringId"] for e in events_since(csms, since)}
        assert monitor_ids == {crossed["id"]}


@VERSIONS
async def test_a_lower_threshold_on_power_alerts_while_the_evse_is_idle(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        since = messages_now(csms)
        low = await set_monitor(csms, EVSE_POWER, type="LowerThreshold", value=1000, severity=3)
        with trio.fail_after(10):
            alert = await csms.wait_for_message(
                STATION_ID, "NotifyEvent", of_monitor(low["id"]), since=since
            )
        assert alert["eventData"][0]["actualValue"] == "0"
        since = messages_now(csms)
        driver_arrives(station)
        with trio.fail_after(300):
            cleared = await csms.wait_for_message(
                STATION_ID, "NotifyEvent", of_monitor(low["id"]), since=since
            )
        assert cleared["eventData"][0]["cleared"] is True


# -- N02: a monitor's id is reported, and gone once cleared ------------------------------------


@VERSIONS
async def test_a_monitor_id_appears_in_the_report_and_is_gone_after_clear(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (_station, csms):
        result = await set_monitor(csms, EVSE_POWER, type="Delta", value=500, severity=6)
        assert result["status"] == "Accepted"
        monitor_id = result["id"]
        status, report = await monitor_report(csms, componentVariable=[EVSE_POWER])
        assert status == "Accepted"
        assert monitor_id in ids_in(report)
        [item] = report
        kinds = {m["id"]: m.get("eventNotificationType") for m in item["variableMonitoring"]}
        if version == "2.1":
            assert kinds[monitor_id] == "CustomMonitor"
            assert "HardWiredMonitor" in kinds.values()
        else:
            assert set(kinds.values()) == {None}

        answer = await csms.call(STATION_ID, "ClearVariableMonitoring", {"id": [monitor_id, 1, 77]})
        statuses = {r["id"]: r["status"] for r in answer["clearMonitoringResult"]}
        assert statuses == {monitor_id: "Accepted", 1: "Rejected", 77: "NotFound"}
        _, report = await monitor_report(csms)
        assert monitor_id not in ids_in(report)
        assert 1 in ids_in(report)  # the hard-wired over-power monitor stays

        # Criteria select by type: no delta monitor is left.
        status, _ = await monitor_report(csms, monitoringCriteria=["DeltaMonitoring"])
        assert status == "EmptyResultSet"
        status, report = await monitor_report(csms, monitoringCriteria=["ThresholdMonitoring"])
        assert status == "Accepted"
        assert {m["type"] for i in report for m in i["variableMonitoring"]} == {"UpperThreshold"}


async def test_a_large_monitoring_report_is_split_and_reassembles(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link() as (station, csms):
        # Two monitored variables per NotifyMonitoringReport (the station's own limit).
        per_message = ("DeviceDataCtrlr", None, None, None, "ItemsPerMessage", "GetReport")
        station.device_model.store(per_message, "2")
        set_ids = set()
        for variable in ("HeartbeatInterval", "RetryBackOffWaitMinimum", "RetryBackOffRandomRange"):
            for severity in (1, 2):
                target = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": variable}}
                result = await set_monitor(csms, target, type="Delta", value=1, severity=severity)
                assert result["status"] == "Accepted", result
                set_ids.add(result["id"])
        since = messages_now(csms)
        status, report = await monitor_report(csms, monitoringCriteria=["DeltaMonitoring"])
        assert status == "Accepted"
        assert ids_in(report) == set_ids
        assert len(report) == 3  # grouped by variable
        parts = [
            m.payload
            for m in csms.station(STATION_ID).messages_since(since)
            if m.action == "NotifyMonitoringReport"
        ]
        assert [(p["seqNo"], p["tbc"]) for p in parts] == [(0, True), (1, False)]


# -- N02: what is refused -----------------------------------------------------------------------


@VERSIONS
async def test_monitors_that_cannot_work_are_refused_with_the_reason(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (_station, csms):
        unknown_component = {"component": {"name": "Nowhere"}, "variable": {"name": "Power"}}
        unknown_variable = {
            "component": {"name": "EVSE", "evse": {"id": 1}},
            "variable": {"name": "Nope"},
        }
        cases = [
            (unknown_component, {"type": "Delta", "value": 1, "severity": 5}, "UnknownComponent"),
            (unknown_variable, {"type": "Delta", "value": 1, "severity": 5}, "UnknownVariable"),
            (
                CONNECTOR_STATE,
                {"type": "UpperThreshold", "value": 1, "severity": 5},
                "UnsupportedMonitorType",
            ),
            (EVSE_POWER, {"type": "Periodic", "value": 0, "severity": 5}, "Rejected"),
            (EVSE_POWER, {"type": "Delta", "value": 1, "severity": 5, "id": 4242}, "Rejected"),
            (EVSE_POWER, {"type": "Delta", "value": 1, "severity": 5, "id": 1}, "Rejected"),
        ]
        for target, fields, status in cases:
            result = await set_monitor(csms, target, **fields)
            assert result["status"] == status, (target, fields, result)
        first = await set_monitor(csms, EVSE_POWER, type="Delta", value=100, severity=5)
        again = await set_monitor(csms, EVSE_POWER, type="Delta", value=200, severity=5)
        assert (first["status"], again["status"]) == ("Accepted", "Duplicate")
        # The same id replaces the monitor.
        replaced = await set_monitor(
            csms, EVSE_POWER, type="Delta", value=300, severity=5, id=first["id"]
        )
        assert (replaced["status"], replaced["id"]) == ("Accepted", first["id"])
        _, report = await monitor_report(csms, monitoringCriteria=["DeltaMonitoring"])
        [monitor] = [m for i in report for m in i["variableMonitoring"]]
        assert monitor["value"] == 300


async def test_target_delta_follows_the_power_the_evse_is_allowed(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link() as (station, csms):
        on_heartbeat = await set_monitor(csms, HEARTBEAT, type="TargetDelta", value=5, severity=5)
        assert on_heartbeat["status"] == "UnsupportedMonitorType"
        result = await set_monitor(csms, EVSE_POWER, type="TargetDelta", value=1000, severity=5)
        assert result["status"] == "Accepted"
        since = messages_now(csms)
        driver_arrives(station)
        with trio.fail_after(300):
            alert = await csms.wait_for_message(
                STATION_ID, "NotifyEvent", of_monitor(result["id"]), since=since
            )
        # The EV takes 11 kW of the 22 kW the EVSE offers.
        [entry] = alert["eventData"]
        assert (entry["trigger"], entry["cleared"], entry["actualValue"]) == (
            "Alerting",
            False,
            EV_POWER,
        )


# -- N07: a Delta monitor on a stored variable; periodic monitors ------------------------------


@VERSIONS
async def test_a_delta_monitor_reports_changes_larger_than_its_value(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (_station, csms):
        result = await set_monitor(csms, HEARTBEAT, type="Delta", value=50, severity=5)
        since = messages_now(csms)
        await set_variable(csms, HEARTBEAT, "320")  # 20 s from 300: too small
        await set_variable(csms, HEARTBEAT, "400")  # 100 s from 300
        with trio.fail_after(10):
            notice = await csms.wait_for_message(
                STATION_ID, "NotifyEvent", of_monitor(result["id"]), since=since
            )
        [entry] = notice["eventData"]
        assert (entry["trigger"], entry["actualValue"]) == ("Delta", "400")
        assert "cleared" not in entry
        assert len(events_since(csms, since)) == 1


@VERSIONS
async def test_periodic_monitors_report_on_their_timer(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        every = await set_monitor(csms, EVSE_POWER, type="Periodic", value=120, severity=7)
        aligned = await set_monitor(
            csms, HEARTBEAT, type="PeriodicClockAligned", value=900, severity=7
        )
        since = messages_now(csms)
        set_at_s = station.clock.sim_now()
        with trio.fail_after(1900):
            while len(events_since(csms, since)) < 17:
                await csms.wait_for_message(STATION_ID, "NotifyEvent", since=messages_now(csms))
        entries = events_since(csms, since)
        periodic = [e for e in entries if e["variableMonitoringId"] == every["id"]]
        clock = [e for e in entries if e["variableMonitoringId"] == aligned["id"]]
        assert {e["trigger"] for e in entries} == {"Periodic"}
        assert len(periodic) == 15 and len(clock) == 2
        # Clock-aligned: on the quarter hours of simulated time (the run starts at 12:00).
        assert [e["timestamp"] for e in clock] == [
            "2026-01-15T12:15:00.000Z",
            "2026-01-15T12:30:00.000Z",
        ]
        first = station.clock.epoch_s(set_at_s + 120)
        assert periodic[0]["timestamp"] == station.clock.timestamp(first - station.clock.epoch_s(0))


# -- N03 / N04: monitoring base and level -------------------------------------------------------


@VERSIONS
async def test_the_monitoring_base_switches_the_built_in_monitors_and_clears_custom_ones(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        custom = await set_monitor(csms, HEARTBEAT, type="Delta", value=1, severity=5)
        _, report = await monitor_report(csms)
        assert ids_in(report) == {1, custom["id"]}  # hard-wired + custom: factory default

        answer = await csms.call(STATION_ID, "SetMonitoringBase", {"monitoringBase": "All"})
        assert answer["status"] == "Accepted"
        _, report = await monitor_report(csms)
        assert ids_in(report) == {1, 2, 3, custom["id"]}
        # The pre-configured AvailabilityState monitor now reports the EVSE's state.
        since = messages_now(csms)
        driver_arrives(station)
        with trio.fail_after(120):
            notice = await csms.wait_for_message(
                STATION_ID, "NotifyEvent", of_monitor(2), since=since
            )
        entry = notice["eventData"][0]
        assert (entry["actualValue"], entry["eventNotificationType"]) == (
            "Occupied",
            "PreconfiguredMonitor",
        )

        answer = await csms.call(
            STATION_ID, "SetMonitoringBase", {"monitoringBase": "HardWiredOnly"}
        )
        assert answer["status"] == "Accepted"
        _, report = await monitor_report(csms)
        assert ids_in(report) == {1}
        answer = await csms.call(
            STATION_ID,
            "GetVariables",
            {
                "getVariableData": [
                    {
                        "component": {"name": "MonitoringCtrlr"},
                        "variable": {"name": "ActiveMonitoringBase"},
                    }
                ]
            },
        )
        assert answer["getVariableResult"][0]["attributeValue"] == "HardWiredOnly"


@VERSIONS
async def test_the_monitoring_level_silences_less_severe_events(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        answer = await csms.call(STATION_ID, "SetMonitoringLevel", {"severity": 3})
        assert answer["status"] == "Accepted"
        refused = await csms.call(STATION_ID, "SetMonitoringLevel", {"severity": 12})
        assert refused["status"] == "Rejected"
        severe = await set_monitor(csms, EVSE_POWER, type="UpperThreshold", value=5000, severity=1)
        mild = await set_monitor(csms, EVSE_POWER, type="UpperThreshold", value=6000, severity=6)
        since = messages_now(csms)
        driver_arrives(station)
        with trio.fail_after(300):
            await csms.wait_for_message(
                STATION_ID, "NotifyEvent", of_monitor(severe["id"]), since=since
            )
            await trio.sleep(60)
        assert {e["variableMonitoringId"] for e in events_since(csms, since)} == {severe["id"]}
        assert mild["status"] == "Accepted"


# -- N07: offline queueing by severity ----------------------------------------------------------


@VERSIONS
async def test_offline_events_are_queued_by_severity_and_sent_after_reconnecting(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        await set_variable(
            csms,
            {
                "component": {"name": "MonitoringCtrlr"},
                "variable": {"name": "OfflineQueuingSeverity"},
            },
            "3",
        )
        kept = await set_monitor(csms, CONNECTOR_STATE, type="Delta", value=0, severity=2)
        dropped = await set_monitor(csms, CONNECTOR_STATE, type="Delta", value=0, severity=7)
        await csms.disconnect(STATION_ID)
        with trio.fail_after(10):
            await csms.wait_disconnected(STATION_ID)
            while station.online:
                await trio.sleep(0.01)
        since = messages_now(csms)
        driver_arrives(station)  # plugs in while the station is offline
        with trio.fail_after(600):
            notice = await csms.wait_for_message(
                STATION_ID, "NotifyEvent", of_monitor(kept["id"]), since=since
            )
            await trio.sleep(30)
        assert notice["eventData"][0]["actualValue"] == "Occupied"
        ids = [e["variableMonitoringId"] for e in events_since(csms, since)]
        assert kept["id"] in ids and dropped["id"] not in ids


async def test_disabled_monitoring_sends_no_events(autojump_clock: MockClock) -> None:
    async with station_on_memory_link() as (station, csms):
        await set_variable(
            csms,
            {"component": {"name": "MonitoringCtrlr"}, "variable": {"name": "Enabled"}},
            "false",
        )
        await set_monitor(csms, EVSE_POWER, type="UpperThreshold", value=5000, severity=1)
        since = messages_now(csms)
        driver_arrives(station)
        with trio.move_on_after(600):
            await csms.wait_for_message(STATION_ID, "NotifyEvent", since=since)
            pytest.fail("a NotifyEvent went out while MonitoringCtrlr.Enabled was false")


async def test_a_station_without_monitors_watches_nothing(autojump_clock: MockClock) -> None:
    async with station_on_memory_link() as (station, csms):
        status, report = await monitor_report(csms)
        assert status == "Accepted" and ids_in(report) == {1}
        assert all(evse.power_watch is None for evse in station.evses)
        result = await set_monitor(csms, EVSE_POWER, type="Delta", value=100, severity=5)
        assert station.evses[0].power_watch is not None
        await csms.call(STATION_ID, "ClearVariableMonitoring", {"id": [result["id"]]})
        # The hard-wired monitor still watches (it would see an overload), nothing more.
        assert station.evses[0].power_watch is not None
