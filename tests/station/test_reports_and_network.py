"""Block B, complete: custom reports (B08), report splitting, RebootRequired, time from the CSMS,
network profiles and migration to another CSMS (B09/B10), over OCPP 2.1 and 2.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.ev_models import load_catalogue
from fleetsim.simulator.clock import SimClock
from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.des import EventPump
from fleetsim.simulator.link import ConnectError, Link
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.run import station_config
from fleetsim.simulator.station import EvseConfig, Station, StationConfig
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import open_memory_link
from fleetsim.simulator.world import World
from tests.helpers import STATION_ID, T0, one_station_scenario, station_on_memory_link

VERSIONS = pytest.mark.parametrize("version", ["2.1", "2.0.1"])
NEW_CSMS_URL = "ws://new-csms.example/ocpp"


def _set(component: str, name: str, value: str) -> dict[str, Any]:
    return {"component": {"name": component}, "variable": {"name": name}, "attributeValue": value}


async def collect_report(csms: Csms, request_id: int, since: int) -> list[Mapping[str, Any]]:
    """Every NotifyReport part of request `request_id`, in order, until one without tbc."""
    parts: list[Mapping[str, Any]] = []
    with trio.fail_after(600):
        while not parts or parts[-1]["tbc"]:
            seq_no = len(parts)

            def is_next(payload: Mapping[str, Any], seq_no: int = seq_no) -> bool:
                return bool(payload["requestId"] == request_id and payload["seqNo"] == seq_no)

            parts.append(
                await csms.wait_for_message(STATION_ID, "NotifyReport", is_next, since=since)
            )
    return parts


def reported(parts: list[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(component, variable) of every reported entry, as JSON text so they can be compared."""
    return [
        (
            json.dumps(item["component"], sort_keys=True),
            json.dumps(item["variable"], sort_keys=True),
        )
        for part in parts
        for item in part.get("reportData", ())
    ]


def expected(station: Station, keep: Callable[[Any], bool]) -> set[tuple[str, str]]:
    return {
        (
            json.dumps(spec.component_json(), sort_keys=True),
            json.dumps(spec.variable_json(), sort_keys=True),
        )
        for spec in station.device_model.spec.variables
        if keep(spec)
    }


# -- B08: custom reports ----------------------------------------------------------------------


@VERSIONS
async def test_a_custom_report_contains_exactly_the_requested_components(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = StationConfig(ocpp_version=version, evses=(EvseConfig(), EvseConfig()))
    async with station_on_memory_link(config, ocpp_version=version) as (station, csms):
        since = csms.station(STATION_ID).messages_received
        answer = await csms.call(
            STATION_ID,
            "GetReport",
            {
                "requestId": 11,
                "componentVariable": [
                    {"component": {"name": "EVSE", "evse": {"id": 2}}},
                    {
                        "component": {"name": "Connector"},
                        "variable": {"name": "ConnectorType"},
                    },
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    },
                ],
            },
        )
        assert answer["status"] == "Accepted"
        parts = await collect_report(csms, 11, since)
        got = reported(parts)
        assert len(got) == len(set(got))
        assert set(got) == expected(
            station,
            lambda spec: (
                (spec.component == "EVSE" and spec.evse_id == 2)
                or (spec.component == "Connector" and spec.variable == "ConnectorType")
                or (spec.component, spec.variable) == ("OCPPCommCtrlr", "HeartbeatInterval")
            ),
        )
        # The EVSE's power follows the simulation: no EV, no power; MaxSet is its rating.
        power = next(
            item
            for part in parts
            for item in part["reportData"]
            if item["variable"]["name"] == "Power"
        )
        attributes = {a["type"]: a["value"] for a in power["variableAttribute"]}
        assert attributes == {"Actual": "0", "MaxSet": "22000"}
        assert power["variableCharacteristics"]["supportsMonitoring"] is True


@VERSIONS
async def test_component_criteria_keep_the_components_that_meet_them(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        # No component of a simulated station has a problem: nothing to report.
        empty = await csms.call(
            STATION_ID, "GetReport", {"requestId": 1, "componentCriteria": ["Problem"]}
        )
        assert empty["status"] == "EmptyResultSet"
        since = csms.station(STATION_ID).messages_received
        answer = await csms.call(
            STATION_ID,
            "GetReport",
            {
                "requestId": 2,
                "componentCriteria": ["Enabled"],
                "componentVariable": [
                    {"component": {"name": "AuthCacheCtrlr"}},
                    {"component": {"name": "AuthCtrlr"}},
                ],
            },
        )
        assert answer["status"] == "Accepted"
        got = reported(await collect_report(csms, 2, since))
        # AuthCtrlr is enabled, the authorization cache is not (its Enabled is false).
        assert set(got) == expected(station, lambda spec: spec.component == "AuthCtrlr")
        # Disabling the component drops it from the same report.
        await csms.call(
            STATION_ID, "SetVariables", {"setVariableData": [_set("AuthCtrlr", "Enabled", "false")]}
        )
        again = await csms.call(
            STATION_ID,
            "GetReport",
            {
                "requestId": 3,
                "componentCriteria": ["Enabled"],
                "componentVariable": [{"component": {"name": "AuthCtrlr"}}],
            },
        )
        assert again["status"] == "EmptyResultSet"


@VERSIONS
async def test_a_report_of_1000_variables_is_split_and_reassembles_to_the_same_set(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    bytes_per_message = 8000
    config = StationConfig(
        ocpp_version=version,
        evses=tuple(EvseConfig(connector_types=("cType2", "cCCS2")) for _ in range(64)),
        variable_values=(
            ("DeviceDataCtrlr.ItemsPerMessage[GetReport]", "40"),
            ("DeviceDataCtrlr.BytesPerMessage[GetReport]", str(bytes_per_message)),
        ),
    )
    async with station_on_memory_link(config, ocpp_version=version) as (station, csms):
        assert len(station.device_model.spec.variables) >= 1000
        since = csms.station(STATION_ID).messages_received
        answer = await csms.call(
            STATION_ID, "GetBaseReport", {"requestId": 5, "reportBase": "FullInventory"}
        )
        assert answer["status"] == "Accepted"
        parts = await collect_report(csms, 5, since)
    got = reported(parts)
    assert len(got) == len(set(got)) == len(station.device_model.spec.variables)
    assert set(got) == expected(station, lambda spec: True)
    assert [part["seqNo"] for part in parts] == list(range(len(parts)))
    assert [part["tbc"] for part in parts] == [True] * (len(parts) - 1) + [False]
    for part in parts:
        assert len(part["reportData"]) <= 40
        # The payload and the CALL around it fit in BytesPerMessage.
        frame = json.dumps([2, "x" * 36, "NotifyReport", part], separators=(",", ":"))
        assert len(frame.encode()) <= bytes_per_message
    # The bytes, not only the count, cut the report: some parts hold fewer than 40 entries.
    assert any(len(part["reportData"]) < 40 for part in parts[:-1])


# -- B05: RebootRequired, and B09/B10: migrating to another CSMS -----------------------------


@asynccontextmanager
async def station_between_two_csms(
    version: OcppVersion, *, new_csms_reachable: bool = True, csms_clock_offset_s: float = 0.0
) -> AsyncIterator[tuple[Station, Csms, Csms]]:
    """A station connected to one CSMS, and a second CSMS at NEW_CSMS_URL that it reaches only
    through a network profile (or never, when it is not reachable)."""
    scenario = one_station_scenario(ocpp_version=version)
    clock = SimClock(T0, 1.0)
    clock.start()
    old = Csms(CsmsConfig(), clock=lambda: clock.epoch_s() + csms_clock_offset_s)
    new = Csms(CsmsConfig(), clock=clock.epoch_s)
    stats = RunStats()
    station = Station(STATION_ID, 1, station_config(scenario), clock, stats)
    pump = EventPump(clock)
    catalogue = load_catalogue(scenario.ev_fleet.extra_models)
    world = World(scenario, clock, pump, {1: station}, catalogue)

    @asynccontextmanager
    async def refused(url: str) -> AsyncIterator[Link]:
        raise ConnectError(f"{url} is unreachable", "refused")
        yield  # pragma: no cover

    def connect(s: Station) -> AbstractAsyncContextManager[Link]:
        profile = s.connection_profile
        csms = old
        if profile is not None:
            if profile["ocppCsmsUrl"] != NEW_CSMS_URL or not new_csms_reachable:
                return refused(profile["ocppCsmsUrl"])
            csms = new
        return open_memory_link(
            s.id, csms.attach, s.handle, spawn=s.spawn, observer=stats, ocpp_version=version
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump.run)
        await nursery.start(station.run, connect)
        world.start()
        with trio.fail_after(600):
            await station.wait_synced()
        yield station, old, new
        nursery.cancel_scope.cancel()


def network_profile(station: Station, url: str = NEW_CSMS_URL) -> dict[str, Any]:
    return {
        "ocppVersion": "OCPP20" if station.config.ocpp_version == "2.0.1" else "OCPP21",
        "ocppTransport": "JSON",
        "ocppInterface": "Wired0",
        "ocppCsmsUrl": url,
        "messageTimeout": round(station.config.message_timeout_s),
        "securityProfile": station.security_profile,
    }


async def migrate(station: Station, old: Csms) -> None:
    """B10: store a profile in slot 2, put it first, and reset."""
    stored = await old.call(
        STATION_ID,
        "SetNetworkProfile",
        {"configurationSlot": 2, "connectionData": network_profile(station)},
    )
    assert stored["status"] == "Accepted"
    answer = await old.call(
        STATION_ID,
        "SetVariables",
        {"setVariableData": [_set("OCPPCommCtrlr", "NetworkConfigurationPriority", "2,1")]},
    )
    assert answer["setVariableResult"][0]["attributeStatus"] == "RebootRequired"
    # The value in effect stays until the reboot.
    read = await old.call(
        STATION_ID,
        "GetVariables",
        {
            "getVariableData": [
                {
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "NetworkConfigurationPriority"},
                }
            ]
        },
    )
    assert read["getVariableResult"][0]["attributeValue"] == "1"
    assert (await old.call(STATION_ID, "Reset", {"type": "Immediate"}))["status"] == "Accepted"


@VERSIONS
async def test_the_station_migrates_to_the_new_csms_after_a_reset(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_between_two_csms(version) as (station, old, new):
        await migrate(station, old)
        with trio.fail_after(600):
            boot = await new.wait_for_message(STATION_ID, "BootNotification")
        assert boot["reason"] == "RemoteReset"
        assert station.device_model.members("OCPPCommCtrlr", "NetworkConfigurationPriority") == (
            "2",
            "1",
        )
        assert station.connection_profile is not None
        assert station.connection_profile["ocppCsmsUrl"] == NEW_CSMS_URL
        assert old.station(STATION_ID).boots == 1


@VERSIONS
async def test_an_unreachable_new_csms_sends_the_station_back_to_the_previous_slot(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_between_two_csms(version, new_csms_reachable=False) as (
        station,
        old,
        _new,
    ):
        answer = await old.call(
            STATION_ID,
            "SetVariables",
            {"setVariableData": [_set("OCPPCommCtrlr", "NetworkProfileConnectionAttempts", "2")]},
        )
        assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
        attempts_before = station.stats.connection_failures
        await migrate(station, old)
        with trio.fail_after(3600):
            await old.wait_for_message(
                STATION_ID, "BootNotification", lambda p: p["reason"] == "RemoteReset"
            )
        # Two attempts on slot 2 (NetworkProfileConnectionAttempts), then slot 1 again.
        assert station.stats.connection_failures - attempts_before == 2
        assert station.connection_profile is None


@VERSIONS
async def test_set_network_profile_refuses_what_the_station_cannot_do(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_between_two_csms(version) as (station, old, _new):

        async def status(slot: int, **changes: Any) -> str:
            data = {**network_profile(station), **changes}
            answer = await old.call(
                STATION_ID, "SetNetworkProfile", {"configurationSlot": slot, "connectionData": data}
            )
            return str(answer["status"])

        assert await status(1) == "Rejected"  # the slot the station is connected through
        assert await status(7) == "Rejected"  # no such slot
        assert await status(2, securityProfile=0) == "Rejected"  # lower than the current
        assert await status(2, ocppCsmsUrl="https://example.com") == "Rejected"
        assert await status(2, messageTimeout=5) == "Rejected"
        # A priority naming a slot without a profile is refused; with one, it waits a reboot.
        answer = await old.call(
            STATION_ID,
            "SetVariables",
            {"setVariableData": [_set("OCPPCommCtrlr", "NetworkConfigurationPriority", "0,1")]},
        )
        assert answer["setVariableResult"][0]["attributeStatus"] == "Rejected"
        assert await status(0) == "Accepted"
        answer = await old.call(
            STATION_ID,
            "SetVariables",
            {"setVariableData": [_set("OCPPCommCtrlr", "NetworkConfigurationPriority", "0,1")]},
        )
        assert answer["setVariableResult"][0]["attributeStatus"] == "RebootRequired"


# -- time from the CSMS -------------------------------------------------------------------------


@VERSIONS
async def test_time_source_heartbeat_sets_the_station_clock_from_the_csms(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    offset_s = 3600.0
    async with station_between_two_csms(version, csms_clock_offset_s=offset_s) as (
        station,
        old,
        _new,
    ):
        fleet_clock = station.clock
        # With the default (RealTimeClock) the station keeps the fleet's time.
        assert station.clock.epoch_s() == pytest.approx(fleet_clock.epoch_s())
        answer = await old.call(
            STATION_ID,
            "SetVariables",
            {"setVariableData": [_set("ClockCtrlr", "TimeSource", "Heartbeat,RealTimeClock")]},
        )
        assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
        since = old.station(STATION_ID).messages_received
        await old.call(STATION_ID, "TriggerMessage", {"requestedMessage": "Heartbeat"})
        with trio.fail_after(60):
            await old.wait_for_message(STATION_ID, "Heartbeat", since=since)
        with trio.fail_after(60):
            while station.clock is fleet_clock:
                await trio.sleep(0.01)
        assert station.clock.epoch_s() - fleet_clock.epoch_s() == pytest.approx(offset_s, abs=1)
        # The timestamps the station sends carry its clock.
        read = await old.call(
            STATION_ID,
            "GetVariables",
            {
                "getVariableData": [
                    {"component": {"name": "ClockCtrlr"}, "variable": {"name": "DateTime"}}
                ]
            },
        )
        assert read["getVariableResult"][0]["attributeValue"] == station.clock.timestamp()
        assert station.clock.timestamp() != fleet_clock.timestamp()
        # Back to the real-time clock: the fleet's time again.
        await old.call(
            STATION_ID,
            "SetVariables",
            {"setVariableData": [_set("ClockCtrlr", "TimeSource", "RealTimeClock")]},
        )
        with trio.fail_after(60):
            while station.clock is not fleet_clock:
                await trio.sleep(0.01)


# -- scenario values ---------------------------------------------------------------------------


def test_a_scenario_sets_variable_values_for_its_stations() -> None:
    scenario = one_station_scenario(
        {
            "stations": {
                "count": 1,
                "variables": {
                    "OCPPCommCtrlr.HeartbeatInterval": "42",
                    "DeviceDataCtrlr.ItemsPerMessage[GetReport]": "7",
                },
            }
        }
    )
    config = station_config(scenario)
    station = Station(STATION_ID, 1, config, SimClock(T0), RunStats())
    assert station.device_model.integer("OCPPCommCtrlr", "HeartbeatInterval") == 42
    assert station.device_model.integer("DeviceDataCtrlr", "ItemsPerMessage", "GetReport") == 7
    assert station.device_model.changed == {}  # shared defaults, nothing per station


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("OCPPCommCtrlr.NoSuchThing", "1", "has no variable"),
        ("ChargingStation.Model", "x", "read-only"),
        ("OCPPCommCtrlr.HeartbeatInterval", "soon", "not an integer"),
        ("heartbeat", "1", "Component.Variable"),
    ],
)
def test_a_scenario_variable_that_cannot_be_set_is_a_scenario_error(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        one_station_scenario({"stations": {"count": 1, "variables": {name: value}}})
