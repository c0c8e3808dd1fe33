"""Local frequency support: how much an EV changes its power when the grid frequency moves.

Sign convention, the same as OCPP's `v2xFreqWattCurve` and `ev_models.EvSession`: power is
grid-side and positive when the EV consumes.  A positive response asks it to consume more, which
is what the grid needs when the frequency is high (too much generation); a negative response asks
it to consume less or, if it can, to export, which is what the grid needs when the frequency is
low.

Two shapes:

* `DroopCurve` is a proportional (droop) controller with a deadband, the way frequency
  containment reserve works: no response within +/-`deadband_hz` of nominal, then linear in the
  deviation beyond it, saturating at `max_response_w`.  Its output is a *change* added to what
  the EV would do anyway.
* `FreqWattCurve` is a table of (frequency, power) points, as in OCPP 2.1's
  `v2xFreqWattCurve`, interpolated linearly.  Its output is the *setpoint* itself (OCPP adds
  `v2xBaseline` to it when the profile gives one).

The defaults follow the Continental European rules for frequency containment reserve, as the
ENTSO-E Operation Handbook (Policy 1) states them and mainsfrequency.com summarises: units
respond beyond +/-20 mHz (10 mHz of allowed measurement error plus a 10 mHz deadband) and are
fully activated at +/-200 mHz.  The network codes leave room around that: Commission Regulation
(EU) 2016/1447 (HVDC connections) allows a frequency response deadband of 0 to +/-500 mHz and an
insensitivity of at most 30 mHz.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

__all__ = [
    "DEFAULT_DEADBAND_HZ",
    "DEFAULT_FULL_RESPONSE_DEVIATION_HZ",
    "DroopCurve",
    "FreqWattCurve",
]

#: No response within this distance of nominal: 10 mHz of measurement error plus a 10 mHz
#: deadband, as for Continental European FCR.  It also keeps EVs from chasing the +/-20 mHz
#: noise the grid shows in normal operation.
DEFAULT_DEADBAND_HZ = 0.02
#: Full response at this distance from nominal: Continental European FCR is fully activated at
#: +/-200 mHz, the edge of the range allowed in normal operation.
DEFAULT_FULL_RESPONSE_DEVIATION_HZ = 0.2


@dataclass(frozen=True, slots=True, kw_only=True)
class DroopCurve:
    """Linear response beyond a deadband, saturating at `max_response_w` (see the module).

    Give the slope one of two ways:

    * `full_response_deviation_hz`: the deviation from nominal (deadband included) at which the
      response reaches `max_response_w`; 0.2 Hz when neither is given;
    * `droop_percent`: the droop s of a governor, the relative frequency change that moves the
      response from zero to `max_response_w`: full response at
      `deadband_hz + droop_percent / 100 * nominal_hz`, so 0.4 % on a 50 Hz grid adds 0.2 Hz
      to the deadband.
    """

    max_response_w: float
    deadband_hz: float = DEFAULT_DEADBAND_HZ
    full_response_deviation_hz: float | None = None
    droop_percent: float | None = None

    def __post_init__(self) -> None:
        if not (self.max_response_w >= 0 and math.isfinite(self.max_response_w)):
            raise ValueError(
                f"max_response_w must be >= 0 W (the sign comes from the frequency), "
                f"got {self.max_response_w!r}"
            )
        if not (self.deadband_hz >= 0 and math.isfinite(self.deadband_hz)):
            raise ValueError(f"deadband_hz must be >= 0 Hz, got {self.deadband_hz!r}")
        if self.full_response_deviation_hz is not None and self.droop_percent is not None:
            raise ValueError(
                "give either full_response_deviation_hz or droop_percent, not both: each sets "
                "the slope of the droop"
            )
        if self.droop_percent is not None and not (
            self.droop_percent > 0 and math.isfinite(self.droop_percent)
        ):
            raise ValueError(f"droop_percent must be > 0, got {self.droop_percent!r}")
        if self.droop_percent is None:
            full_hz = self.full_response_deviation_hz
            if full_hz is None:
                full_hz = DEFAULT_FULL_RESPONSE_DEVIATION_HZ
            if not (full_hz > self.deadband_hz and math.isfinite(full_hz)):
                raise ValueError(
                    f"the full response deviation ({full_hz!r} Hz) must be larger than "
                    f"deadband_hz ({self.deadband_hz!r}): the response grows from the "
                    "deadband's edge to it; give full_response_deviation_hz"
                )

    def full_response_at_hz(self, nominal_hz: float) -> float:
        """The deviation from `nominal_hz` at which the response saturates."""
        if self.droop_percent is not None:
            return self.deadband_hz + self.droop_percent / 100.0 * nominal_hz
        if self.full_response_deviation_hz is not None:
            return self.full_response_deviation_hz
        return DEFAULT_FULL_RESPONSE_DEVIATION_HZ

    def response_w(self, frequency_hz: float, nominal_hz: float) -> float:
        """The change of consumption in W: > 0 above nominal, < 0 below, 0 in the deadband."""
        deviation_hz = frequency_hz - nominal_hz
        beyond_hz = abs(deviation_hz) - self.deadband_hz
        if beyond_hz <= 0:
            return 0.0
        span_hz = self.full_response_at_hz(nominal_hz) - self.deadband_hz
        fraction = min(1.0, beyond_hz / span_hz)
        return math.copysign(fraction * self.max_response_w, deviation_hz)


class FreqWattCurve:
    """A frequency-watt curve: the power setpoint (W, > 0 consume, < 0 export) at a frequency.

    Between points the power is interpolated linearly; outside them it holds the nearest end
    point's value, so a curve that ends at full discharge at 49.8 Hz keeps discharging below it.
    """

    __slots__ = ("_frequency_hz", "_power_w")

    def __init__(self, points: Iterable[tuple[float, float]]) -> None:
        ordered = sorted((float(f), float(p)) for f, p in points)
        if not ordered:
            raise ValueError("a frequency-watt curve needs at least one (frequency, power) point")
        for frequency_hz, power_w in ordered:
            if not (frequency_hz > 0 and math.isfinite(frequency_hz) and math.isfinite(power_w)):
                raise ValueError(
                    f"frequency-watt point ({frequency_hz!r} Hz, {power_w!r} W): the frequency "
                    "must be a positive number of Hz and the power a finite number of W"
                )
        for (first_hz, _), (second_hz, _) in pairwise(ordered):
            if first_hz == second_hz:
                raise ValueError(
                    f"frequency-watt curve has two points at {first_hz:g} Hz; a curve gives "
                    "one power per frequency"
                )
        self._frequency_hz = np.array([f for f, _ in ordered])
        self._power_w = np.array([p for _, p in ordered])

    @classmethod
    def from_fractions(
        cls, points: Iterable[tuple[float, float]], max_power_w: float
    ) -> FreqWattCurve:
        """From (frequency Hz, fraction of `max_power_w`) points, fractions in [-1, 1].

        Lets one curve shape serve EVSEs of any rating.
        """
        if not (max_power_w >= 0 and math.isfinite(max_power_w)):
            raise ValueError(f"max_power_w must be >= 0 W, got {max_power_w!r}")
        scaled: list[tuple[float, float]] = []
        for frequency_hz, fraction in points:
            if not -1.0 <= fraction <= 1.0:
                raise ValueError(
                    f"frequency-watt point at {frequency_hz:g} Hz has fraction {fraction!r}; "
                    "fractions of the maximum power lie in [-1, 1]"
                )
            scaled.append((frequency_hz, fraction * max_power_w))
        return cls(scaled)

    @property
    def points(self) -> list[tuple[float, float]]:
        """The (frequency Hz, power W) points in increasing frequency."""
        return list(zip(self._frequency_hz.tolist(), self._power_w.tolist(), strict=True))

    def power_w(self, frequency_hz: float) -> float:
        """The setpoint at `frequency_hz`, interpolated linearly between the points."""
        return float(np.interp(frequency_hz, self._frequency_hz, self._power_w))

    def __len__(self) -> int:
        return len(self._frequency_hz)

    def __repr__(self) -> str:
        return f"FreqWattCurve({self.points!r})"
