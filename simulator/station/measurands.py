"""The measurands a fleetsim meter samples, in one table: name, unit, location, how to read it.

Every measurand the device model offers (SampledDataCtrlr and AlignedDataCtrlr's member lists)
is a row here, read from the EVSE's live state at the sampled instant, so what a station
advertises and what it can meter cannot drift apart.  A reader returns None when the value does
not exist now (no EV, no SoC), and the sample leaves that measurand out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .evse import NOMINAL_PHASE_VOLTAGE_V, Evse

__all__ = ["MEASURANDS", "Measurand", "sampled_values"]


@dataclass(frozen=True, slots=True)
class Measurand:
    name: str
    unit: str
    #: Reads the value from an EVSE at simulated second `now_s`.
    read: Callable[[Evse, float], float | None]
    location: str | None = None


def _soc_percent(evse: Evse, now_s: float) -> float | None:
    session = evse.session
    return None if session is None else round(session.soc_at(now_s) * 100, 1)


_TABLE = (
    Measurand(
        "Energy.Active.Import.Register", "Wh", lambda evse, now_s: round(evse.register_wh(now_s), 1)
    ),
    Measurand(
        "Energy.Active.Export.Register",
        "Wh",
        lambda evse, now_s: round(evse.export_register_wh(now_s), 1),
    ),
    Measurand("Power.Active.Import", "W", lambda evse, _: round(max(evse.power_w, 0.0), 1)),
    Measurand("Power.Active.Export", "W", lambda evse, _: round(max(-evse.power_w, 0.0), 1)),
    Measurand("SoC", "Percent", _soc_percent, location="EV"),
    Measurand(
        "Current.Import",
        "A",
        lambda evse, _: round(max(evse.power_w, 0.0) / (NOMINAL_PHASE_VOLTAGE_V * evse.phases), 2),
    ),
    Measurand("Voltage", "V", lambda evse, _: NOMINAL_PHASE_VOLTAGE_V),
    Measurand(
        "Current.Offered",
        "A",
        lambda evse, _: round(evse.max_power_w / (NOMINAL_PHASE_VOLTAGE_V * evse.phases), 2),
    ),
    Measurand("Power.Offered", "W", lambda evse, _: evse.max_power_w),
)

#: Every measurand by its OCPP name, in the order the device model lists them.
MEASURANDS: dict[str, Measurand] = {measurand.name: measurand for measurand in _TABLE}


def sampled_values(
    evse: Evse, names: tuple[str, ...], context: str, now_s: float
) -> list[dict[str, Any]]:
    """The SampledValueType entries of `names` on `evse` at `now_s`."""
    sampled = []
    for name in names:
        measurand = MEASURANDS.get(name)
        if measurand is None:
            continue
        value = measurand.read(evse, now_s)
        if value is None:
            continue
        sample: dict[str, Any] = {
            "value": value,
            "context": context,
            "measurand": name,
            "unitOfMeasure": {"unit": measurand.unit},
        }
        if measurand.location is not None:
            sample["location"] = measurand.location
        sampled.append(sample)
    return sampled
