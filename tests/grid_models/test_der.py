"""DER events: validation and the schedule."""

from __future__ import annotations

from typing import Any

import pytest

from fleetsim.grid_models import DerEvent, DerKind, DerSchedule

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
