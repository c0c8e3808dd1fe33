"""Block R's DER payloads: NotifyDERAlarm and NotifyEvent entries the OCPP schemas accept."""

from __future__ import annotations

import pytest

from grid_models import DER_KINDS, DerEvent, DerKind
from simulator.ocpp import OcppVersion, schema_set
from simulator.station.blocks.der_control import der_alarm_payload, der_event_data

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
