"""The limit the installed profiles set on one EVSE now, and when it next changes.

It is the composite schedule (`composite.py`) at this simulated second, so the power an EV
draws is what GetCompositeSchedule reports, to the watt.  `next_change_s` is the next period
boundary of any profile that matters to the EVSE, so the EVSE's visit task sleeps until exactly
then and nothing polls.

Operation modes (2.1): ChargingOnly and ExternalLimits limit import; CentralSetpoint follows
`setpoint` (negative: discharge); LocalFrequency follows `v2xFreqWattCurve` around nominal;
Idle stops power.  The other modes are accepted and behave as ChargingOnly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core import NO_LIMIT, ActiveLimit, StationCore
from ...evse import NOMINAL_PHASE_VOLTAGE_V, Evse
from .composite import (
    BOUNDARY_S,
    NO_SELECTIONS,
    EvseView,
    StationView,
    instant,
    selected_schedule,
)
from .profiles import ChargingProfiles, peek_profiles

__all__ = ["active_limit", "station_view"]


#: Makes a named tuple from a tuple of all its fields without a Python-level call: the view is
#: made at every step of every EV's charging loop.
_new_tuple = tuple.__new__
_NO_PRIORITY: frozenset[int] = frozenset()


def station_view(station: StationCore, profiles: ChargingProfiles) -> StationView:
    """What the composite computation needs of `station` now: a snapshot (the schedule picks
    are copied), so that two views compare equal only when the station is the same."""
    evses = []
    for evse in station.evses:
        transaction = evse.transaction
        evses.append(
            _new_tuple(
                EvseView,
                (evse.id, evse.phases, evse.max_power_w, None, None)
                if transaction is None
                else (
                    evse.id,
                    evse.phases,
                    evse.max_power_w,
                    transaction.id,
                    transaction.started_s,
                ),
            )
        )
    priority = profiles.priority_evse_ids
    selected = profiles.selected_schedule_ids
    return _new_tuple(
        StationView,
        (
            tuple(evses),
            station.clock.epoch_s(0.0),
            NOMINAL_PHASE_VOLTAGE_V,
            frozenset(priority) if priority else _NO_PRIORITY,
            dict(selected) if selected else NO_SELECTIONS,
            profiles.offline_since_s,
        ),
    )


def _watts(value: float | None, unit: str, period: Mapping[str, Any], phases: int) -> float | None:
    if value is None:
        return None
    if unit == "W":
        return float(value)
    return float(value) * NOMINAL_PHASE_VOLTAGE_V * int(period.get("numberPhases") or phases)


def active_limit(station: StationCore, evse: Evse) -> ActiveLimit:
    """What the installed profiles ask of `evse` at this simulated second.

    The EVSE's charging loop asks at each of its steps (meter values, site power changes,
    EV curve points); the answer only changes at a period boundary (`next_change_s`) or when
    what the composite reads changes, so it is kept until then."""
    profiles = peek_profiles(station)
    if profiles is None or not len(profiles):
        return NO_LIMIT
    now_s = station.clock.sim_now()
    view = station_view(station, profiles)
    kept = profiles.limits.get(evse.id)
    if kept is not None:
        generation, kept_view, computed_s, limit = kept
        if (
            computed_s <= now_s < limit.next_change_s - BOUNDARY_S
            and generation == profiles.generation
            and kept_view == view
        ):
            return limit
    limit = _compute(profiles, view, evse, now_s)
    profiles.limits[evse.id] = (profiles.generation, view, now_s, limit)
    return limit


def _compute(
    profiles: ChargingProfiles, view: StationView, evse: Evse, now_s: float
) -> ActiveLimit:
    now = instant(profiles.installed, view, evse.id, now_s)
    period = now.period
    chosen = now.profile
    if period is None or chosen is None:
        return ActiveLimit(limit_w=now.limit_w, next_change_s=now.next_change_s)
    unit = now.unit
    mode = str(period.get("operationMode", "ChargingOnly"))
    tx_schedule = (
        selected_schedule(chosen, profiles.selected_schedule_ids.get(evse.id))
        if chosen.purpose == "TxProfile"
        else None
    )
    curve = tuple(
        (float(point["frequency"]), float(point["power"]))
        for point in period.get("v2xFreqWattCurve", ())
    )
    return ActiveLimit(
        limit_w=0.0 if mode == "Idle" else now.limit_w,
        discharge_limit_w=_watts(period.get("dischargeLimit"), unit, period, evse.phases),
        setpoint_w=_watts(period.get("setpoint"), unit, period, evse.phases)
        if mode == "CentralSetpoint"
        else None,
        operation_mode=mode,
        freq_watt_curve=curve,
        next_change_s=now.next_change_s,
        profile_id=chosen.id,
        tx_schedule=tx_schedule,
        tx_schedules=tuple(chosen.profile["chargingSchedule"]) if tx_schedule is not None else (),
        period=period,
    )
