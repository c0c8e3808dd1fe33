"""DER events: validation, the schedule, and payloads that the OCPP schemas accept."""

from __future__ import annotations

from typing import Any

import pytest

from grid_models import DER_KINDS, DerEvent, DerKind, DerSchedule
from grid_models.der import der_alarm_payload, der_event_data
from simulator.ocpp import OcppVersion, schema_set

TS = "2026-01-15T19:00:00Z"

#: A plausible event of each kind.
EXAMPLES: dict[DerKind, DerEvent] = {
    "UnderFrequency": DerEvent(60.0, 30.0, "UnderFrequency", 49.5),
    "OverFrequency": DerEvent(60.0, 30.0, "OverFrequency", 50.6),
    "UnderVoltage": DerEvent(60.0, 30.0, "UnderVoltage", 190.0),
    "OverVoltage": DerEvent(60.0, 30.0, "OverVoltage", 255.0),
}


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((0.0, -5.0, "UnderVoltage", 190.0), "duration_s must be > 0"),
        ((0.0, 0.0, "UnderVoltage", 190.0), "duration_s must be > 0"),
        ((-1.0, 5.0, "UnderVoltage", 190.0), "start_s must be >= 0"),
        ((0.0, 5.0, "Brownout", 190.0), "not one of UnderFrequency"),
        ((0.0, 5.0, "UnderVoltage", 0.19), "not a plausible voltage .* in V"),
        ((0.0, 5.0, "OverVoltage", 11_000.0), "not a plausible voltage"),
        ((0.0, 5.0, "UnderFrequency", 495.0), "not a plausible frequency .* in Hz"),
        ((0.0, 5.0, "UnderFrequency", 60.5), "not below any nominal"),
        ((0.0, 5.0, "OverFrequency", 49.9), "not above any nominal"),
    ],
)
def test_implausible_events_are_refused_with_what_to_fix(
    arguments: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        DerEvent(*arguments)


def test_an_unknown_control_type_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not an OCPP 2\.1 DER control"):
        DerEvent(0.0, 5.0, "UnderVoltage", 190.0, control_type="Trip")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event", "nominal_hz", "message"),
    [
        (DerEvent(0.0, 5.0, "UnderFrequency", 53.5), 60.0, "more than 10% from the nominal 60 Hz"),
        (DerEvent(0.0, 5.0, "UnderFrequency", 50.5), 50.0, "not below the nominal 50 Hz"),
        (DerEvent(0.0, 5.0, "OverFrequency", 59.5), 60.0, "not above the nominal 60 Hz"),
        (DerEvent(0.0, 5.0, "UnderVoltage", 240.0), 50.0, "not below the nominal 230 V"),
        (DerEvent(0.0, 5.0, "OverVoltage", 330.0), 50.0, "more than 30% from the nominal 230 V"),
    ],
)
def test_a_schedule_checks_events_against_the_nominal_values_it_is_given(
    event: DerEvent, nominal_hz: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        DerSchedule([event], nominal_hz=nominal_hz, nominal_voltage_v=230.0)


# -- the schedule --------------------------------------------------------------------------------


def test_a_schedule_accepts_events_that_fit_its_grid() -> None:
    schedule = DerSchedule(EXAMPLES.values(), nominal_hz=50.0, nominal_voltage_v=230.0)
    assert len(schedule) == 4


def test_schedule_knows_which_events_are_active_and_when_things_change() -> None:
    sag = DerEvent(100.0, 60.0, "UnderVoltage", 190.0)
    dip = DerEvent(130.0, 10.0, "UnderFrequency", 49.7)
    schedule = DerSchedule([dip, sag])
    assert schedule.events == (sag, dip)
    assert schedule.active_at(99.9) == ()
    assert schedule.active_at(100.0) == (sag,)
    assert schedule.active_at(135.0) == (sag, dip)
    assert schedule.active_at(140.0) == (sag,)
    assert schedule.active_at(160.0) == ()
    assert schedule.boundaries() == [100.0, 130.0, 140.0, 160.0]


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
