"""The limit the installed profiles set on one EVSE now, and when it next changes.

Precedence, per EVSE: a TxProfile for the running transaction beats a TxDefaultProfile for the
EVSE, which beats a TxDefaultProfile for the whole station (evseId 0); within a purpose the
highest stackLevel whose schedule is in force wins.  A ChargingStationMaxProfile caps the
station's total; fleetsim splits it equally over the station's EVSEs, a simplification that
keeps each EVSE's limit independent of what the others draw.

Limits in amperes become watts at the nominal phase voltage, times `numberPhases` (else the
EVSE's phases).  Operation modes (2.1): ChargingOnly and ExternalLimits limit import;
CentralSetpoint follows `setpoint` (negative: discharge); LocalFrequency follows
`v2xFreqWattCurve` around nominal; Idle stops power.  The other modes are accepted and behave
as ChargingOnly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...core import NO_LIMIT, ActiveLimit, StationCore
from ...evse import NOMINAL_PHASE_VOLTAGE_V, Evse
from .profiles import Installed, epoch_s, peek_profiles

__all__ = ["active_limit"]

_RECURRENCE_S = {"Daily": 86_400.0, "Weekly": 604_800.0}


@dataclass(frozen=True, slots=True)
class _Period:
    period: Mapping[str, Any] | None  # None: the schedule is not in force now
    unit: str
    next_change_s: float


def _schedule_period(
    installed: Installed, now_s: float, start_epoch_s: float, tx_start_s: float | None
) -> _Period:
    """The period of `installed`'s first schedule in force at `now_s`, and its end."""
    profile = installed.profile
    schedule = profile["chargingSchedule"][0]
    unit = schedule["chargingRateUnit"]
    valid_from = profile.get("validFrom")
    valid_to = profile.get("validTo")
    if valid_from is not None and epoch_s(valid_from) - start_epoch_s > now_s:
        return _Period(None, unit, epoch_s(valid_from) - start_epoch_s)
    valid_to_s = math.inf if valid_to is None else epoch_s(valid_to) - start_epoch_s
    if now_s >= valid_to_s:
        return _Period(None, unit, math.inf)
    kind = profile["chargingProfileKind"]
    if kind == "Relative":
        start_s = tx_start_s if tx_start_s is not None else installed.installed_s
    elif "startSchedule" in schedule:
        start_s = epoch_s(schedule["startSchedule"]) - start_epoch_s
    else:
        start_s = installed.installed_s
    if kind == "Recurring":
        cycle_s = _RECURRENCE_S.get(profile.get("recurrencyKind", "Daily"), 86_400.0)
        if now_s >= start_s:
            start_s += math.floor((now_s - start_s) / cycle_s) * cycle_s
    elapsed_s = now_s - start_s
    if elapsed_s < 0:
        return _Period(None, unit, min(start_s, valid_to_s))
    duration_s = schedule.get("duration")
    end_s = math.inf if duration_s is None else start_s + duration_s
    if kind == "Recurring":
        end_s = min(
            end_s, start_s + _RECURRENCE_S.get(profile.get("recurrencyKind", "Daily"), 86_400.0)
        )
    if now_s >= end_s:
        return _Period(None, unit, valid_to_s if kind != "Recurring" else end_s)
    current = None
    next_start_s = end_s
    for period in sorted(schedule["chargingSchedulePeriod"], key=lambda p: p["startPeriod"]):
        if period["startPeriod"] <= elapsed_s:
            current = period
        else:
            next_start_s = min(next_start_s, start_s + period["startPeriod"])
            break
    return _Period(current, unit, min(next_start_s, end_s, valid_to_s))


def _watts(value: float | None, unit: str, period: Mapping[str, Any], phases: int) -> float | None:
    if value is None:
        return None
    if unit == "W":
        return float(value)
    return float(value) * NOMINAL_PHASE_VOLTAGE_V * int(period.get("numberPhases") or phases)


def active_limit(station: StationCore, evse: Evse) -> ActiveLimit:
    """What the installed profiles ask of `evse` at this simulated second."""
    profiles = peek_profiles(station)
    if profiles is None or not len(profiles):
        return NO_LIMIT
    now_s = station.clock.sim_now()
    start_epoch_s = station.clock.epoch_s(0.0)
    transaction = evse.transaction
    tx_start_s = transaction.started_s if transaction is not None else None
    next_change_s = math.inf
    # rank, stack level, period, unit, the profile
    best: tuple[int, int, Mapping[str, Any], str, Installed] | None = None
    caps: list[float] = []
    for installed in profiles.for_evse(evse.id):
        purpose = installed.purpose
        if purpose == "TxProfile":
            if transaction is None or installed.profile.get("transactionId") not in (
                None,
                transaction.id,
            ):
                continue
            rank = 3
        elif purpose == "PriorityCharging":
            if evse.id not in profiles.priority_evse_ids:
                continue
            rank = 4  # priority charging replaces the TxProfile and TxDefaultProfile (K21)
        elif purpose == "TxDefaultProfile":
            rank = 2 if installed.evse_id == evse.id else 1
        elif purpose in ("ChargingStationMaxProfile", "ChargingStationExternalConstraints"):
            rank = 0
        else:
            continue
        current = _schedule_period(installed, now_s, start_epoch_s, tx_start_s)
        next_change_s = min(next_change_s, current.next_change_s)
        if current.period is None:
            continue
        if rank == 0:
            limit = _watts(current.period.get("limit"), current.unit, current.period, evse.phases)
            if limit is not None:
                caps.append(limit / len(station.evses))
            continue
        key = (rank, installed.stack_level)
        if best is None or key > best[:2]:
            best = (rank, installed.stack_level, current.period, current.unit, installed)
    limit_w: float | None = min(caps) if caps else None
    if best is None:
        return ActiveLimit(limit_w=limit_w, next_change_s=next_change_s)
    _, _, period, unit, chosen = best
    own_limit = _watts(period.get("limit"), unit, period, evse.phases)
    if own_limit is not None:
        limit_w = own_limit if limit_w is None else min(limit_w, own_limit)
    mode = str(period.get("operationMode", "ChargingOnly"))
    curve = tuple(
        (float(point["frequency"]), float(point["power"]))
        for point in period.get("v2xFreqWattCurve", ())
    )
    return ActiveLimit(
        limit_w=0.0 if mode == "Idle" else limit_w,
        discharge_limit_w=_watts(period.get("dischargeLimit"), unit, period, evse.phases),
        setpoint_w=_watts(period.get("setpoint"), unit, period, evse.phases)
        if mode == "CentralSetpoint"
        else None,
        operation_mode=mode,
        freq_watt_curve=curve,
        next_change_s=next_change_s,
        profile_id=chosen.id,
        tx_schedule=chosen.profile["chargingSchedule"][0]
        if chosen.purpose == "TxProfile"
        else None,
        period=period,
    )
