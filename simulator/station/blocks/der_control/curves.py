"""The arithmetic of DER controls: a curve's value at the present grid, a trip curve's time.

Plain numbers in, plain numbers out, so each rule is tested without a station
(tests/station/test_der_curves.py).

Axes as fleetsim reads them:

- Frequency curves (FreqWatt, HF*/LF* trips): x in Hz.
- Voltage curves (VoltWatt, VoltVar, HV*/LV* trips): x in percent of the nominal voltage, the
  IEC 61850 / SunSpec convention; a curve whose largest x is above 200 is read in volts.
- Active-power curves (FreqWatt, VoltWatt): y in PctMaxW or PctWAvail, the share of the EVSE's
  maximum power the EV may exchange now, charging or discharging (the sign is not used: the
  curve caps the size of the power, whichever way it flows).
- Trip curves: y is the time in seconds the grid may stay at or beyond x before the station
  must stop.  For the high-side curves (HF, HV) a point applies when the value is at or above
  its x, for the low-side curves (LF, LV) at or below; the shortest applicable time counts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

__all__ = [
    "ACTIVE_POWER_CURVES",
    "ACTIVE_POWER_UNITS",
    "CEASING",
    "STOPPING",
    "TRIP_CURVES",
    "curve_points",
    "droop_fractions",
    "interpolate",
    "percent_of_nominal",
    "trip_time_s",
    "voltage_axis",
]

Quantity = Literal["frequency", "voltage"]
Side = Literal["high", "low"]

#: The ride-through and trip curves: the quantity each watches and on which side of nominal.
TRIP_CURVES: Mapping[str, tuple[Quantity, Side]] = {
    "HFMustTrip": ("frequency", "high"),
    "HFMayTrip": ("frequency", "high"),
    "LFMustTrip": ("frequency", "low"),
    "HVMustTrip": ("voltage", "high"),
    "HVMomCess": ("voltage", "high"),
    "HVMayTrip": ("voltage", "high"),
    "LVMustTrip": ("voltage", "low"),
    "LVMomCess": ("voltage", "low"),
    "LVMayTrip": ("voltage", "low"),
}
#: Curves whose crossing stops the output until the station re-enters service (EnterService).
STOPPING: frozenset[str] = frozenset({"HFMustTrip", "LFMustTrip", "HVMustTrip", "LVMustTrip"})
#: Momentary cessation: the output stops while the grid is beyond the curve and resumes as soon
#: as it is back, without the enter-service delay.
CEASING: frozenset[str] = frozenset({"HVMomCess", "LVMomCess"})
#: Curves whose y is an active power, which the model acts on.
ACTIVE_POWER_CURVES: frozenset[str] = frozenset({"FreqWatt", "VoltWatt"})
ACTIVE_POWER_UNITS: frozenset[str] = frozenset({"PctMaxW", "PctWAvail"})

#: A voltage axis whose largest x is above this is in volts, not percent of nominal.
_VOLTS_ABOVE = 200.0


def curve_points(curve: Mapping[str, Any]) -> list[tuple[float, float]]:
    """The (x, y) points of a DERCurveType, sorted by x."""
    return sorted((float(point["x"]), float(point["y"])) for point in curve["curveData"])


def interpolate(points: Sequence[tuple[float, float]], x: float) -> float:
    """The curve's y at `x`: linear between points, flat beyond the first and the last."""
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def percent_of_nominal(voltage_v: float, nominal_v: float) -> float:
    return 100.0 * voltage_v / nominal_v


def voltage_axis(
    points: Sequence[tuple[float, float]], voltage_v: float, nominal_v: float
) -> float:
    """The present voltage on the curve's own x axis: volts, or percent of nominal."""
    if points and max(x for x, _ in points) > _VOLTS_ABOVE:
        return voltage_v
    return percent_of_nominal(voltage_v, nominal_v)


def trip_time_s(points: Sequence[tuple[float, float]], value: float, side: Side) -> float | None:
    """How long the grid may stay at `value` (on the curve's axis) before the trip, or None
    when no point of the curve applies to it."""
    times = [
        y for x, y in points if (value >= x if side == "high" else value <= x) and math.isfinite(y)
    ]
    return max(0.0, min(times)) if times else None


def droop_fractions(
    droop: Mapping[str, Any], frequency_hz: float, nominal_hz: float
) -> tuple[float, float]:
    """The share of its maximum power an EV may charge and discharge at `frequency_hz` under a
    FreqDroop setting.

    Below `underFreq` the charging power falls by (underFreq - f) / nominal / underDroop of the
    maximum (the per-unit droop: a 5 % droop gives up all power over 5 % of nominal); above
    `overFreq` the discharging power falls likewise with `overDroop`.  The EV is not made to
    take more power than it asks for, so the other direction stays as it is.
    """
    charge, discharge = 1.0, 1.0
    under_hz, over_hz = float(droop["underFreq"]), float(droop["overFreq"])
    if frequency_hz < under_hz:
        charge = _droop_share(under_hz - frequency_hz, nominal_hz, float(droop["underDroop"]))
    if frequency_hz > over_hz:
        discharge = _droop_share(frequency_hz - over_hz, nominal_hz, float(droop["overDroop"]))
    return charge, discharge


def _droop_share(deviation_hz: float, nominal_hz: float, droop_pu: float) -> float:
    if droop_pu <= 0:
        return 0.0
    return max(0.0, 1.0 - deviation_hz / nominal_hz / droop_pu)
