"""The measurands a fleetsim meter samples, in one table: name, unit, location, phases, reader.

Every measurand the device model offers (the valuesList of SampledDataCtrlr's and
AlignedDataCtrlr's measurand lists) is a row here, read from the simulation at the sampled
instant, so what a station advertises and what it can meter cannot drift apart.  A measurand
the simulation does not model (temperatures, reactive power, power factor) has no row and is
not advertised.  A reader returns None when the value does not exist now (no EV: no SoC; no
site: no grid frequency), and the sample leaves that measurand out.

The electrical model is the simplest honest one: a balanced load at the nominal phase voltage
(`NOMINAL_PHASE_VOLTAGE_V`), so the current on each phase in use is the power divided by the
voltage and the number of phases.  The phases in use are the EV's: an AC EV with a one-phase
charger draws on L1 alone even from a three-phase EVSE (`ev_models.EvSession` charges it at the
same power); a DC charger draws on every phase of its supply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .evse import NOMINAL_PHASE_VOLTAGE_V, Evse

if TYPE_CHECKING:
    from .core import StationCore

__all__ = ["MEASURANDS", "Measurand", "phases_in_use", "sampled_values"]

#: Reads one measurand of an EVSE of a station at a simulated second.
Reader = Callable[["StationCore", Evse, float], float | None]


@dataclass(frozen=True, slots=True)
class Measurand:
    """One row of the table: how a measurand is named, measured and read."""

    name: str
    unit: str
    read: Reader
    location: str | None = None
    #: For a measurand sampled per phase, the number of phases of an EVSE it is sampled on and
    #: how a phase is named ("L{}" or "L{}-N"); None: one value for the EVSE.
    phases: Callable[[Evse], int] | None = None
    phase_name: str = "L{}"


def phases_in_use(evse: Evse) -> int:
    """The phases the EVSE draws on now: the EV charger's (at most the EVSE's) for an AC EV,
    all of the supply's for a DC charger or with no EV."""
    session = evse.session
    if session is None or evse.supply != "AC":
        return evse.phases
    return max(1, min(evse.phases, session.model.ac_phases))


def _supply_phases(evse: Evse) -> int:
    return evse.phases


def _import_w(evse: Evse) -> float:
    return max(evse.power_w, 0.0)


def _export_w(evse: Evse) -> float:
    return max(-evse.power_w, 0.0)


def _per_phase_a(power_w: float, evse: Evse) -> float:
    """The current on each phase in use of a balanced load of `power_w`."""
    return round(power_w / (NOMINAL_PHASE_VOLTAGE_V * phases_in_use(evse)), 2)


def _offered_w(station: StationCore, evse: Evse) -> float:
    """What the EVSE offers the EV: its rating, under the charging profiles' limit (K)."""
    limit_w = station.charging_limit(evse).limit_w
    offered_w = evse.max_power_w if limit_w is None else min(evse.max_power_w, limit_w)
    return round(max(offered_w, 0.0), 1)


def _soc_percent(_: StationCore, evse: Evse, now_s: float) -> float | None:
    session = evse.session
    return None if session is None else round(session.soc_at(now_s) * 100, 1)


def _frequency_hz(station: StationCore, _: Evse, __: float) -> float | None:
    site = station.site
    return None if site is None else round(site.grid_frequency_hz(), 3)


_TABLE = (
    Measurand(
        "Energy.Active.Import.Register",
        "Wh",
        lambda _, evse, now_s: round(evse.register_wh(now_s), 1),
    ),
    Measurand(
        "Energy.Active.Export.Register",
        "Wh",
        lambda _, evse, now_s: round(evse.export_register_wh(now_s), 1),
    ),
    # The common measurands are read in one call each: a meter value is taken per message.
    Measurand("Power.Active.Import", "W", lambda _, evse, __: round(max(evse.power_w, 0.0), 1)),
    Measurand("Power.Active.Export", "W", lambda _, evse, __: round(max(-evse.power_w, 0.0), 1)),
    Measurand(
        "Current.Import",
        "A",
        lambda _, evse, __: _per_phase_a(_import_w(evse), evse),
        phases=phases_in_use,
    ),
    Measurand(
        "Current.Export",
        "A",
        lambda _, evse, __: _per_phase_a(_export_w(evse), evse),
        phases=phases_in_use,
    ),
    Measurand(
        "Voltage",
        "V",
        lambda _, __, ___: NOMINAL_PHASE_VOLTAGE_V,
        phases=_supply_phases,
        phase_name="L{}-N",
    ),
    Measurand("SoC", "Percent", _soc_percent, location="EV"),
    Measurand("Frequency", "Hz", _frequency_hz),
    Measurand("Power.Offered", "W", lambda station, evse, _: _offered_w(station, evse)),
    Measurand(
        "Current.Offered",
        "A",
        lambda station, evse, _: _per_phase_a(_offered_w(station, evse), evse),
    ),
)

#: Every measurand by its OCPP name, in the order the device model lists them.
MEASURANDS: dict[str, Measurand] = {measurand.name: measurand for measurand in _TABLE}


def sampled_values(
    station: StationCore, evse: Evse, names: tuple[str, ...], context: str, now_s: float
) -> list[dict[str, Any]]:
    """The SampledValueType entries of `names` on `evse` at simulated second `now_s`: one per
    measurand, or one per phase in use for a measurand sampled per phase."""
    sampled: list[dict[str, Any]] = []
    for name in names:
        measurand = MEASURANDS.get(name)
        if measurand is None:
            continue
        value = measurand.read(station, evse, now_s)
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
        if measurand.phases is None:
            sampled.append(sample)
            continue
        for phase in range(1, measurand.phases(evse) + 1):
            sampled.append({**sample, "phase": measurand.phase_name.format(phase)})
    return sampled
