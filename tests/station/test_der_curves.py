"""The arithmetic of block R's DER controls, with plain numbers: curve values, trip times,
droop, and which stored control is in force."""

from __future__ import annotations

import math

import pytest

from fleetsim.grid_models import DerEvent, grid_at
from fleetsim.simulator.station.blocks.der_control.curves import (
    droop_fractions,
    interpolate,
    trip_time_s,
    voltage_axis,
)
from fleetsim.simulator.station.blocks.der_control.store import DerControls, Stored


def test_a_curve_is_linear_between_points_and_flat_beyond() -> None:
    points = [(49.0, 0.0), (49.8, 100.0)]
    assert interpolate(points, 48.0) == 0.0
    assert interpolate(points, 49.2) == pytest.approx(25.0)
    assert interpolate(points, 50.5) == 100.0


def test_a_voltage_axis_is_percent_of_nominal_unless_the_curve_is_in_volts() -> None:
    assert voltage_axis([(90.0, 1.0), (110.0, 1.0)], 207.0, 230.0) == pytest.approx(90.0)
    assert voltage_axis([(207.0, 1.0), (253.0, 1.0)], 207.0, 230.0) == 207.0


def test_the_shortest_applicable_trip_time_counts_on_its_side() -> None:
    high = [(110.0, 2.0), (120.0, 0.16)]
    assert trip_time_s(high, 105.0, "high") is None
    assert trip_time_s(high, 112.0, "high") == 2.0
    assert trip_time_s(high, 125.0, "high") == 0.16
    low = [(88.0, 2.0), (50.0, 0.5)]
    assert trip_time_s(low, 90.0, "low") is None
    assert trip_time_s(low, 82.6, "low") == 2.0
    assert trip_time_s(low, 40.0, "low") == 0.5


def test_freq_droop_cuts_charging_below_and_discharging_above() -> None:
    droop = {"underFreq": 49.8, "overFreq": 50.2, "underDroop": 0.05, "overDroop": 0.05}
    assert droop_fractions(droop, 50.0, 50.0) == (1.0, 1.0)
    charge, discharge = droop_fractions(droop, 49.3, 50.0)  # 0.5 Hz = 1 % of nominal
    assert (charge, discharge) == (pytest.approx(0.8), 1.0)
    assert droop_fractions(droop, 47.0, 50.0)[0] == 0.0
    assert droop_fractions(droop, 50.7, 50.0) == (1.0, pytest.approx(0.8))


def test_the_grid_is_nominal_except_where_an_event_moves_it() -> None:
    nominal = grid_at((), nominal_hz=50.0, nominal_voltage_v=230.0)
    assert (nominal.frequency_hz, nominal.voltage_v) == (50.0, 230.0)
    sag = DerEvent(0.0, 60.0, "UnderVoltage", 190.0)
    dip = DerEvent(10.0, 60.0, "UnderFrequency", 49.5)
    reading = grid_at((sag, dip), nominal_hz=50.0, nominal_voltage_v=230.0)
    assert (reading.frequency_hz, reading.voltage_v) == (49.5, 190.0)


def _control(
    cid: str, priority: int, seq: int, start_s: float = -math.inf, end_s: float = math.inf
) -> Stored:
    return Stored(cid, "FreqWatt", math.isinf(start_s), {}, priority, start_s, end_s, seq)


def test_a_scheduled_control_beats_the_default_and_the_lowest_number_wins() -> None:
    controls = DerControls()
    assert controls.put(_control("default", 0, 1)) == []
    assert controls.put(_control("late", 5, 2, 100.0, 200.0)) == []
    assert controls.put(_control("urgent", 1, 3, 150.0, 300.0)) == ["late"]
    assert controls.in_force("FreqWatt", 50.0).control_id == "default"  # type: ignore[union-attr]
    assert controls.in_force("FreqWatt", 120.0).control_id == "late"  # type: ignore[union-attr]
    assert controls.in_force("FreqWatt", 160.0).control_id == "urgent"  # type: ignore[union-attr]
    assert controls.in_force("VoltWatt", 160.0) is None
    assert controls.next_boundary_after(120.0) == 150.0
