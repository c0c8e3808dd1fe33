"""DER events: grid voltage and frequency excursions a station must report (OCPP block R).

A `DerEvent` is a scripted excursion (the voltage sags to 190 V for a minute, the frequency
climbs to 50.6 Hz), and a `DerSchedule` holds a run's events.  The events only describe the
grid; which stations see them, and what they send about them (block R of the station), is the
caller's business.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, get_args

__all__ = [
    "DEFAULT_CONTROL",
    "DER_CONTROLS",
    "DER_KINDS",
    "DerControl",
    "DerEvent",
    "DerKind",
    "DerSchedule",
    "GridReading",
    "grid_at",
]

DerKind = Literal["UnderFrequency", "OverFrequency", "UnderVoltage", "OverVoltage"]
DER_KINDS: tuple[DerKind, ...] = get_args(DerKind)

#: OCPP 2.1 DERControlEnumType: the DER control whose condition an alarm reports.
DerControl = Literal[
    "EnterService",
    "FreqDroop",
    "FreqWatt",
    "FixedPFAbsorb",
    "FixedPFInject",
    "FixedVar",
    "Gradients",
    "HFMustTrip",
    "HFMayTrip",
    "HVMustTrip",
    "HVMomCess",
    "HVMayTrip",
    "LimitMaxDischarge",
    "LFMustTrip",
    "LVMustTrip",
    "LVMomCess",
    "LVMayTrip",
    "PowerMonitoringMustTrip",
    "VoltVar",
    "VoltWatt",
    "WattPF",
    "WattVar",
]
DER_CONTROLS: tuple[DerControl, ...] = get_args(DerControl)

#: The control an excursion of each kind trips unless the event names another: the must-trip
#: settings (LF/HF for frequency, LV/HV for voltage) are the protection every grid-connected
#: inverter is set up with, so their alarms are the ones a CSMS is most likely to expect.
DEFAULT_CONTROL: Mapping[DerKind, DerControl] = MappingProxyType(
    {
        "UnderFrequency": "LFMustTrip",
        "OverFrequency": "HFMustTrip",
        "UnderVoltage": "LVMustTrip",
        "OverVoltage": "HVMustTrip",
    }
)

#: Plausible values per quantity.  Frequencies cover 50 and 60 Hz grids with 10 % either way;
#: voltages cover low-voltage supplies (IEC 60038 ends low voltage at 1000 V AC) down to a deep
#: sag of a 100 V supply.  A value outside is a wrong unit (kV, mHz) more often than a real event.
_FREQUENCY_RANGE_HZ = (45.0, 66.0)
_VOLTAGE_RANGE_V = (50.0, 1000.0)


@dataclass(frozen=True, slots=True)
class DerEvent:
    """A grid excursion from `start_s` for `duration_s` simulated seconds.

    `value` is the frequency in Hz for the frequency kinds and the voltage in V for the voltage
    kinds.  `control_type` names the DER control the alarm reports; by default the must-trip
    control of the kind (`DEFAULT_CONTROL`).
    """

    start_s: float
    duration_s: float
    kind: DerKind
    value: float
    control_type: DerControl | None = None

    def __post_init__(self) -> None:
        if self.kind not in DER_KINDS:
            raise ValueError(f"DER event kind {self.kind!r} is not one of {', '.join(DER_KINDS)}")
        where = f"{self.kind} event at {self.start_s!r} s"
        if not (self.start_s >= 0 and math.isfinite(self.start_s)):
            raise ValueError(
                f"{where}: start_s must be >= 0 (simulated seconds after the start of the run)"
            )
        if not (self.duration_s > 0 and math.isfinite(self.duration_s)):
            raise ValueError(
                f"{where}: duration_s must be > 0 seconds, got {self.duration_s!r}; an alarm "
                "needs time between its start and its end"
            )
        low, high = _FREQUENCY_RANGE_HZ if self.is_frequency else _VOLTAGE_RANGE_V
        if not (low <= self.value <= high):
            raise ValueError(
                f"{where}: value {self.value!r} is not a plausible {self.quantity} "
                f"({low:g} to {high:g} {self.unit}); the value is in {self.unit}"
            )
        if self.kind == "UnderFrequency" and self.value >= 60.0:
            raise ValueError(f"{where}: {self.value:g} Hz is not below any nominal frequency")
        if self.kind == "OverFrequency" and self.value <= 50.0:
            raise ValueError(f"{where}: {self.value:g} Hz is not above any nominal frequency")
        if self.control_type is not None and self.control_type not in DER_CONTROLS:
            raise ValueError(
                f"{where}: control_type {self.control_type!r} is not an OCPP 2.1 DER control; "
                f"use one of {', '.join(DER_CONTROLS)}"
            )

    @property
    def is_frequency(self) -> bool:
        return self.kind in ("UnderFrequency", "OverFrequency")

    @property
    def quantity(self) -> str:
        return "frequency" if self.is_frequency else "voltage"

    @property
    def unit(self) -> str:
        return "Hz" if self.is_frequency else "V"

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    @property
    def control(self) -> DerControl:
        """The DER control the alarm names."""
        return self.control_type or DEFAULT_CONTROL[self.kind]

    def active_at(self, t_s: float) -> bool:
        """True from `start_s` up to, not including, `end_s`, when the alarm ends."""
        return self.start_s <= t_s < self.end_s

    def describe(self) -> str:
        """`grid frequency 49.5 Hz (UnderFrequency)`: for logs and alarm texts."""
        return f"grid {self.quantity} {self.value:g} {self.unit} ({self.kind})"


class DerSchedule:
    """The DER events of a run, in start order.  Events may overlap: a voltage sag can come
    with a frequency dip, and each is its own alarm.

    Give `nominal_hz` and `nominal_voltage_v` to check each event against the grid it happens
    on: an under-excursion must be below nominal, an over-excursion above, and no further than
    10 % (frequency) or 30 % (voltage) from it.
    """

    __slots__ = ("events",)

    def __init__(
        self,
        events: Iterable[DerEvent] = (),
        *,
        nominal_hz: float | None = None,
        nominal_voltage_v: float | None = None,
    ) -> None:
        self.events: tuple[DerEvent, ...] = tuple(sorted(events, key=lambda e: e.start_s))
        for event in self.events:
            nominal = nominal_hz if event.is_frequency else nominal_voltage_v
            if nominal is not None:
                _check_against_nominal(event, nominal)

    def active_at(self, t_s: float) -> tuple[DerEvent, ...]:
        """The events in effect at `t_s` (start included, end excluded)."""
        return tuple(event for event in self.events if event.active_at(t_s))

    def boundaries(self) -> list[float]:
        """Every instant an alarm starts or ends, sorted: when the stations have to report."""
        return sorted({t for event in self.events for t in (event.start_s, event.end_s)})

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[DerEvent]:
        return iter(self.events)


def _check_against_nominal(event: DerEvent, nominal: float) -> None:
    limit = 0.10 if event.is_frequency else 0.30
    where = f"{event.kind} event at {event.start_s:g} s"
    below = event.kind.startswith("Under")
    if below and event.value >= nominal:
        raise ValueError(
            f"{where}: {event.value:g} {event.unit} is not below the nominal "
            f"{nominal:g} {event.unit}"
        )
    if not below and event.value <= nominal:
        raise ValueError(
            f"{where}: {event.value:g} {event.unit} is not above the nominal "
            f"{nominal:g} {event.unit}"
        )
    if abs(event.value - nominal) > limit * nominal:
        raise ValueError(
            f"{where}: {event.value:g} {event.unit} is more than {limit:.0%} from the nominal "
            f"{nominal:g} {event.unit}; check the value and the nominal"
        )


@dataclass(frozen=True, slots=True)
class GridReading:
    """The frequency and the phase voltage at a grid connection at one moment."""

    frequency_hz: float
    voltage_v: float


def grid_at(
    events: Iterable[DerEvent], *, nominal_hz: float, nominal_voltage_v: float
) -> GridReading:
    """What a site's meters read while `events` are in effect: the value of the latest-started
    event of each quantity, nominal for a quantity no event moves.

    The frequency model (grid_models.frequency) adds noise and its own scripted dips for the
    V2X frequency response; the DER events are the excursions a station's protection and DER
    curves see, and between them the grid is at its nominal values.
    """
    frequency_hz, voltage_v = nominal_hz, nominal_voltage_v
    for event in sorted(events, key=lambda e: e.start_s):
        if event.is_frequency:
            frequency_hz = event.value
        else:
            voltage_v = event.value
    return GridReading(frequency_hz, voltage_v)
