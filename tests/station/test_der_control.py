"""Block R: the DER alarm payloads both versions accept, and the DER controls a CSMS sets,
reads back, clears, and sees act on the EVs' power (R04, R05)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.ev_models import EvArrival, load_catalogue
from fleetsim.grid_models import DER_KINDS, DerEvent, DerKind
from fleetsim.simulator.csms import Csms
from fleetsim.simulator.csms.processes import csms_config_for
from fleetsim.simulator.ocpp import OcppVersion, schema_set
from fleetsim.simulator.station import Station
from fleetsim.simulator.station.blocks.der_control import der_alarm_payload, der_event_data
from fleetsim.simulator.station.ev_driver import ev_arrives
from tests.helpers import STATION_ID, TEST_EV, one_station_scenario, station_on_memory_link

TS = "2026-01-15T19:00:00Z"

#: A plausible event of each kind.
EXAMPLES: dict[DerKind, DerEvent] = {
    "UnderFrequency": DerEvent(60.0, 30.0, "UnderFrequency", 49.5),
    "OverFrequency": DerEvent(60.0, 30.0, "OverFrequency", 50.6),
    "UnderVoltage": DerEvent(60.0, 30.0, "UnderVoltage", 190.0),
    "OverVoltage": DerEvent(60.0, 30.0, "OverVoltage", 255.0),
}


# -- payloads ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", DER_KINDS)
@pytest.mark.parametrize("ended", [False, True])
def test_der_alarm_payload_is_a_valid_notify_der_alarm(kind: DerKind, ended: bool) -> None:
    payload = der_alarm_payload(EXAMPLES[kind], TS, ended=ended)
    schema_set("2.1").validate("NotifyDERAlarm", "Request", payload)
    assert payload["gridEventFault"] == kind
    assert payload["alarmEnded"] is ended
    assert payload["timestamp"] == TS


def test_alarm_names_the_must_trip_control_of_its_kind_unless_told_otherwise() -> None:
    controls = {
        kind: der_alarm_payload(e, TS, ended=False)["controlType"] for kind, e in EXAMPLES.items()
    }
    assert controls == {
        "UnderFrequency": "LFMustTrip",
        "OverFrequency": "HFMustTrip",
        "UnderVoltage": "LVMustTrip",
        "OverVoltage": "HVMustTrip",
    }
    droop = DerEvent(0.0, 30.0, "UnderFrequency", 49.8, control_type="FreqDroop")
    assert der_alarm_payload(droop, TS, ended=False)["controlType"] == "FreqDroop"


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
@pytest.mark.parametrize("kind", DER_KINDS)
@pytest.mark.parametrize("ended", [False, True])
def test_der_event_data_is_valid_in_a_notify_event_of_both_versions(
    version: OcppVersion, kind: DerKind, ended: bool
) -> None:
    entry = der_event_data(EXAMPLES[kind], 17, TS, ended=ended)
    request = {"generatedAt": TS, "seqNo": 0, "eventData": [entry]}
    schema_set(version).validate("NotifyEvent", "Request", request)
    assert entry["trigger"] == "Alerting"
    assert entry["cleared"] is ended


def test_event_data_reports_the_measured_variable_of_the_supply() -> None:
    sag = der_event_data(EXAMPLES["UnderVoltage"], 1, TS, ended=False)
    assert (sag["component"], sag["variable"], sag["actualValue"]) == (
        {"name": "ElectricalFeed"},
        {"name": "ACVoltage"},
        "190",
    )
    dip = der_event_data(EXAMPLES["UnderFrequency"], 2, TS, ended=True, actual_value=50.0)
    assert (dip["variable"], dip["actualValue"]) == ({"name": "Frequency"}, "50")


def test_event_data_needs_a_non_negative_integer_event_id() -> None:
    with pytest.raises(ValueError, match="event_id"):
        der_event_data(EXAMPLES["OverVoltage"], -1, TS, ended=False)


# -- DER controls over OCPP (R04) ----------------------------------------------------------------

#: Every DERControlEnumType of the 2.1 schema: a new type fails the parametrized test below
#: until `setting_for` knows its setting.
CONTROL_TYPES: list[str] = schema_set("2.1").schema("SetDERControl", "Request")["definitions"][
    "DERControlEnumType"
]["enum"]
IN_AN_HOUR = "2026-01-15T13:00:00Z"


def curve(points: list[tuple[float, float]], *, y_unit: str = "PctMaxW", priority: int = 1) -> dict:
    return {
        "priority": priority,
        "yUnit": y_unit,
        "curveData": [{"x": x, "y": y} for x, y in points],
    }


def setting_for(control_type: str, priority: int = 1) -> tuple[str, dict[str, Any]]:
    """A plausible setting of `control_type`, and the request field that carries it."""
    settings: dict[str, tuple[str, dict[str, Any]]] = {
        "EnterService": (
            "enterService",
            {
                "priority": priority,
                "highVoltage": 110,
                "lowVoltage": 90,
                "highFreq": 50.1,
                "lowFreq": 49.9,
                "delay": 60,
                "rampRate": 120,
            },
        ),
        "FixedPFAbsorb": (
            "fixedPFAbsorb",
            {"priority": priority, "displacement": 0.95, "excitation": True},
        ),
        "FixedPFInject": (
            "fixedPFInject",
            {"priority": priority, "displacement": 0.9, "excitation": False},
        ),
        "FixedVar": ("fixedVar", {"priority": priority, "setpoint": 10, "unit": "PctMaxVar"}),
        "FreqDroop": (
            "freqDroop",
            {
                "priority": priority,
                "overFreq": 50.2,
                "underFreq": 49.8,
                "overDroop": 0.05,
                "underDroop": 0.05,
                "responseTime": 1,
            },
        ),
        "Gradients": ("gradient", {"priority": priority, "gradient": 10, "softGradient": 60}),
        "LimitMaxDischarge": (
            "limitMaxDischarge",
            {"priority": priority, "pctMaxDischargePower": 50},
        ),
        "VoltVar": (
            "curve",
            curve([(92, 30), (98, 0), (102, 0), (108, -30)], y_unit="PctMaxVar", priority=priority),
        ),
        "WattVar": ("curve", curve([(0, 0), (100, -20)], y_unit="PctMaxVar", priority=priority)),
        "WattPF": (
            "curve",
            curve([(0, 1), (100, 0.9)], y_unit="Not_Applicable", priority=priority),
        ),
    }
    if control_type in settings:
        return settings[control_type]
    if control_type == "FreqWatt":
        return "curve", curve([(49.0, 0), (49.5, 25), (50.0, 100)], priority=priority)
    if control_type == "VoltWatt":
        return "curve", curve([(90, 40), (95, 100)], priority=priority)
    if control_type.startswith(("HV", "LV", "HF", "LF")):
        x = {"HV": 110, "LV": 88, "HF": 51.5, "LF": 47.5}[control_type[:2]]
        return "curve", curve([(x, 2)], y_unit="Not_Applicable", priority=priority)
    if control_type == "PowerMonitoringMustTrip":
        return "curve", curve([(100, 5)], y_unit="PctMaxW", priority=priority)
    raise AssertionError(f"add a setting for {control_type}")


def set_request(
    control_type: str, control_id: str, *, is_default: bool = True, priority: int = 1, **timing: Any
) -> dict[str, Any]:
    field, setting = setting_for(control_type, priority)
    return {
        "isDefault": is_default,
        "controlId": control_id,
        "controlType": control_type,
        field: {**setting, **timing},
    }


def messages_now(csms: Csms) -> int:
    return csms.station(STATION_ID).messages_received


async def set_control(csms: Csms, request: Mapping[str, Any]) -> Mapping[str, Any]:
    return await csms.call(STATION_ID, "SetDERControl", request)


async def report_of(csms: Csms, request: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """GetDERControl's answer must be Accepted; the ReportDERControl parts that follow."""
    since = messages_now(csms)
    answer = await csms.call(STATION_ID, "GetDERControl", request)
    assert answer["status"] == "Accepted"
    parts = []
    with trio.fail_after(60):
        while True:
            part = await csms.wait_for_message(
                STATION_ID,
                "ReportDERControl",
                lambda p: p["requestId"] == request["requestId"],
                since=since,
            )
            since = messages_now(csms)
            parts.append(part)
            if not part.get("tbc"):
                return parts


def entries(parts: list[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Every reported control by id."""
    found = {}
    for part in parts:
        for key, items in part.items():
            if isinstance(items, list):
                for item in items:
                    found[item["id"]] = {**item, "list": key}
    return found


@pytest.mark.parametrize("control_type", CONTROL_TYPES)
async def test_each_control_type_is_stored_and_reported_back(
    autojump_clock: MockClock, control_type: str
) -> None:
    request = set_request(control_type, f"ctl-{control_type}")
    async with station_on_memory_link() as (_station, csms):
        answer = await set_control(csms, request)
        assert answer["status"] == "Accepted", answer
        parts = await report_of(csms, {"requestId": 4, "controlType": control_type})
    (reported,) = entries(parts).values()
    field = next(k for k in request if k not in ("isDefault", "controlId", "controlType"))
    assert reported["id"] == f"ctl-{control_type}"
    if field == "curve":
        assert (reported["list"], reported["curveType"]) == ("curve", control_type)
        assert reported["curve"] == request["curve"]
    else:
        assert reported["list"] == field
        setting = reported.get("fixedPF", reported.get(field))
        assert setting == request[field]


async def test_a_higher_priority_supersedes_and_the_lowest_number_is_in_force(
    autojump_clock: MockClock,
) -> None:
    flat = lambda pct, priority: {  # noqa: E731
        "isDefault": True,
        "controlId": f"fw-{pct}",
        "controlType": "FreqWatt",
        "curve": curve([(45.0, pct), (55.0, pct)], priority=priority),
    }
    async with station_on_memory_link() as (station, csms):
        evse = station.evses[0]
        assert (await set_control(csms, flat(60, 2)))["status"] == "Accepted"
        answer = await set_control(csms, flat(30, 1))
        assert answer == {"status": "Accepted", "supersededIds": ["fw-60"]}
        lower = await set_control(csms, flat(90, 3))
        assert "supersededIds" not in lower
        assert station.charging_limit(evse).limit_w == pytest.approx(0.30 * evse.max_power_w)
        reported = entries(await report_of(csms, {"requestId": 5, "controlType": "FreqWatt"}))
        assert {i: e["isSuperseded"] for i, e in reported.items()} == {
            "fw-60": True,
            "fw-30": False,
            "fw-90": True,
        }
        # Clearing the one in force leaves the next priority in force.
        cleared = await csms.call(
            STATION_ID, "ClearDERControl", {"isDefault": True, "controlId": "fw-30"}
        )
        assert cleared["status"] == "Accepted"
        assert station.charging_limit(evse).limit_w == pytest.approx(0.60 * evse.max_power_w)


async def test_clear_by_type_and_by_id_and_not_found(autojump_clock: MockClock) -> None:
    async with station_on_memory_link() as (_station, csms):
        for control_id, control_type in (("a", "VoltVar"), ("b", "VoltVar"), ("c", "FixedVar")):
            assert (await set_control(csms, set_request(control_type, control_id)))[
                "status"
            ] == "Accepted"
        clear = {"isDefault": True, "controlType": "VoltVar"}
        assert (await csms.call(STATION_ID, "ClearDERControl", clear))["status"] == "Accepted"
        assert (await csms.call(STATION_ID, "ClearDERControl", clear))["status"] == "NotFound"
        scheduled = {"isDefault": False, "controlId": "c"}
        assert (await csms.call(STATION_ID, "ClearDERControl", scheduled))["status"] == "NotFound"
        by_id = {"isDefault": True, "controlId": "c"}
        assert (await csms.call(STATION_ID, "ClearDERControl", by_id))["status"] == "Accepted"
        answer = await csms.call(STATION_ID, "GetDERControl", {"requestId": 9})
        assert answer["status"] == "NotFound"


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        ({"isDefault": True, "controlId": "x", "controlType": "FreqWatt"}, "MissingParam"),
        (set_request("EnterService", "es", is_default=False), "InvalidValue"),
        (set_request("FreqDroop", "fd", is_default=False), "MissingParam"),
        (
            set_request(
                "FreqDroop", "fd", is_default=False, startTime="2026-01-15T11:00:00Z", duration=60
            ),
            "InvalidValue",
        ),
        (
            {
                "isDefault": True,
                "controlId": "v",
                "controlType": "VoltWatt",
                "curve": curve([(90, 10)], y_unit="PctMaxVar"),
            },
            "InvalidValue",
        ),
    ],
)
async def test_a_control_the_station_cannot_act_on_is_rejected_with_a_reason(
    autojump_clock: MockClock, request_: dict[str, Any], reason: str
) -> None:
    async with station_on_memory_link() as (_station, csms):
        answer = await set_control(csms, request_)
        assert answer["status"] == "Rejected"
        assert answer["statusInfo"]["reasonCode"] == reason
        assert (await csms.call(STATION_ID, "GetDERControl", {"requestId": 1}))[
            "status"
        ] == "NotFound"


async def test_a_control_id_in_use_by_another_type_is_rejected(autojump_clock: MockClock) -> None:
    async with station_on_memory_link() as (_station, csms):
        assert (await set_control(csms, set_request("VoltVar", "grid-1")))["status"] == "Accepted"
        answer = await set_control(csms, set_request("FixedVar", "grid-1"))
        assert (answer["status"], answer["statusInfo"]["reasonCode"]) == (
            "Rejected",
            "InvalidValue",
        )
        reported = entries(await report_of(csms, {"requestId": 2}))
        assert reported["grid-1"]["curveType"] == "VoltVar"


async def test_a_large_report_is_split_with_tbc(autojump_clock: MockClock) -> None:
    async with station_on_memory_link() as (_station, csms):
        for number in range(30):
            control_type = "VoltVar" if number < 20 else "FixedVar"
            request = set_request(control_type, f"c{number}", priority=number)
            assert (await set_control(csms, request))["status"] == "Accepted"
        parts = await report_of(csms, {"requestId": 7})
    assert [p.get("tbc", False) for p in parts] == [True, False]
    assert sum(len(v) for p in parts for v in p.values() if isinstance(v, list)) == 30
    assert len(entries(parts)) == 30


async def test_a_scheduled_control_overrides_the_default_while_it_runs(
    autojump_clock: MockClock,
) -> None:
    default = {
        "isDefault": True,
        "controlId": "always",
        "controlType": "FreqWatt",
        "curve": curve([(45.0, 80), (55.0, 80)], priority=5),
    }
    scheduled = {
        "isDefault": False,
        "controlId": "evening",
        "controlType": "FreqWatt",
        "curve": {
            **curve([(45.0, 20), (55.0, 20)], priority=9),
            "startTime": IN_AN_HOUR,
            "duration": 1800,
        },
    }
    async with station_on_memory_link() as (station, csms):
        evse = station.evses[0]
        assert (await set_control(csms, default))["status"] == "Accepted"
        assert (await set_control(csms, scheduled))["status"] == "Accepted"
        assert station.charging_limit(evse).limit_w == pytest.approx(0.8 * evse.max_power_w)
        assert station.charging_limit(evse).next_change_s == pytest.approx(3600, abs=1)
        with trio.fail_after(4000):
            started = await csms.wait_for_message(STATION_ID, "NotifyDERStartStop")
        assert (started["controlId"], started["started"]) == ("evening", True)
        assert station.charging_limit(evse).limit_w == pytest.approx(0.2 * evse.max_power_w)
        with trio.fail_after(2000):
            ended = await csms.wait_for_message(
                STATION_ID, "NotifyDERStartStop", lambda p: p["started"] is False
            )
        assert ended["controlId"] == "evening"
        assert trio.current_time() == pytest.approx(3600 + 1800, abs=2)
        assert station.charging_limit(evse).limit_w == pytest.approx(0.8 * evse.max_power_w)


# -- the EV's power during a grid event ----------------------------------------------------------

TEST_MODEL = load_catalogue({"test-ev": TEST_EV})["test-ev"]
EV_W = 11_000.0


def arrive(station: Station) -> None:
    """An 11 kW EV plugs in at EVSE 1 and stays four hours."""
    now_s = station.clock.sim_now()
    ev_arrives(
        station,
        station.evses[0],
        EvArrival(
            arrival_s=now_s,
            model=TEST_MODEL,
            soc_start=0.1,
            target_soc=0.95,
            min_soc=0.1,
            departure_s=now_s + 4 * 3600,
            id_token="DER-DRIVER",
            id_token_type="ISO14443",
            id_token_first=False,
            uses_iso15118_20=False,
        ),
    )


def power_w(payload: Mapping[str, Any]) -> float:
    for meter_value in payload["meterValue"]:
        for sample in meter_value["sampledValue"]:
            if sample.get("measurand") == "Power.Active.Import":
                return float(sample["value"])
    raise AssertionError(f"no Power.Active.Import in {payload}")


async def power_at(csms: Csms, after_s: float) -> float:
    """The power of the first periodic meter value sent after simulated second `after_s`."""
    while trio.current_time() < after_s:
        await csms.wait_for_message(STATION_ID, "TransactionEvent", since=messages_now(csms))
    payload = await csms.wait_for_message(
        STATION_ID,
        "TransactionEvent",
        lambda p: p["triggerReason"] == "MeterValuePeriodic",
        since=messages_now(csms),
    )
    return power_w(payload)


def grid_event_scenario(kind: str, value: float) -> dict[str, Any]:
    return {
        "stations": {"count": 1, "meter_interval_s": 60},
        "grid": {"der_events": [{"at_s": 1800, "duration_s": 1200, "kind": kind, "value": value}]},
    }


async def test_a_freq_watt_curve_limits_the_ev_during_an_under_frequency_and_restores_it(
    autojump_clock: MockClock,
) -> None:
    request = set_request("FreqWatt", "fw")  # 25 % of the EVSE's maximum at 49.5 Hz
    async with station_on_memory_link(scenario=grid_event_scenario("UnderFrequency", 49.5)) as (
        station,
        csms,
    ):
        assert (await set_control(csms, request))["status"] == "Accepted"
        arrive(station)
        max_w = station.evses[0].max_power_w
        with trio.fail_after(4000):
            assert await power_at(csms, 600) == pytest.approx(EV_W)
            assert await power_at(csms, 1860) == pytest.approx(min(EV_W, 0.25 * max_w))
            assert await power_at(csms, 3060) == pytest.approx(EV_W)


async def test_a_must_trip_curve_stops_the_output_and_enter_service_brings_it_back(
    autojump_clock: MockClock,
) -> None:
    trip = {
        "isDefault": True,
        "controlId": "lv-trip",
        "controlType": "LVMustTrip",
        "curve": curve([(88, 2)], y_unit="Not_Applicable"),  # below 88 % for 2 s
    }
    enter = set_request("EnterService", "es")  # 60 s delay, 120 s ramp
    async with station_on_memory_link(scenario=grid_event_scenario("UnderVoltage", 190)) as (
        station,
        csms,
    ):
        for request in (trip, enter):
            assert (await set_control(csms, request))["status"] == "Accepted"
        arrive(station)
        with trio.fail_after(4000):
            assert await power_at(csms, 600) == pytest.approx(EV_W)
            stopped = await csms.wait_for_message(STATION_ID, "NotifyDERStartStop")
            assert (stopped["controlId"], stopped["started"]) == ("lv-trip", False)
            assert trio.current_time() == pytest.approx(1802, abs=1)
            assert await power_at(csms, 1900) == 0
            started = await csms.wait_for_message(
                STATION_ID, "NotifyDERStartStop", lambda p: p["started"] is True
            )
            assert started["controlId"] == "lv-trip"
            assert trio.current_time() == pytest.approx(3000 + 60, abs=1)
            assert await power_at(csms, 3300) == pytest.approx(EV_W)


# -- the embedded CSMS's DER curve (embedded_csms.der_control) ------------------------------------


@pytest.mark.parametrize("when", ["after_boot", "on_alarm"])
async def test_the_embedded_csms_curve_limits_the_ev_during_a_grid_event(
    autojump_clock: MockClock, when: str
) -> None:
    sections = {
        **grid_event_scenario("UnderFrequency", 49.2),
        "embedded_csms": {
            "der_control": {"after_boot": when == "after_boot", "on_alarm": when == "on_alarm"}
        },
    }
    config = dataclasses.replace(
        csms_config_for(one_station_scenario(sections)), record_messages=True
    )
    async with station_on_memory_link(csms_config=config, scenario=sections) as (station, csms):
        arrive(station)
        max_w = station.evses[0].max_power_w
        with trio.fail_after(4000):
            assert await power_at(csms, 600) == pytest.approx(EV_W)
            # The default curve: 0 % at 49.0 Hz to 100 % at 49.8 Hz, so 25 % at 49.2 Hz.
            assert await power_at(csms, 1860) == pytest.approx(0.25 * max_w)
            assert await power_at(csms, 3060) == pytest.approx(EV_W)
        assert csms.statistics().pushes == {"der_control_set": 1}


async def test_the_embedded_csms_sets_no_der_curve_on_a_2_0_1_station(
    autojump_clock: MockClock,
) -> None:
    sections = {**grid_event_scenario("UnderFrequency", 49.5), "embedded_csms": {"der_control": {}}}
    built = one_station_scenario(sections, ocpp_version="2.0.1")
    config = dataclasses.replace(csms_config_for(built), record_messages=True)
    async with station_on_memory_link(
        csms_config=config, scenario=sections, ocpp_version="2.0.1"
    ) as (_station, csms):
        with trio.fail_after(2000):
            await csms.wait_for_message(STATION_ID, "NotifyEvent")
        assert csms.statistics().pushes == {}
