"""The composite schedule: what all installed charging profiles together allow, over time.

Pure computation (no trio, no station): `composite_schedule` answers GetCompositeSchedule (K08)
and `instant` is what `limit.active_limit` gives the EV, so the power an EV draws and the
schedule the CSMS reads back are one computation and agree to the watt.

How the profiles merge, for one EVSE at one instant:

- Within a purpose, the profile with the highest stackLevel whose schedule is in force wins
  (validFrom/validTo, startSchedule/duration, the recurrence); an EVSE's own TxDefaultProfile
  (PriorityCharging) beats any for the whole station (evseId 0) that is in force.
- Caps: ChargingStationMaxProfile and ChargingStationExternalConstraints.  The station-wide
  caps (the winner of each purpose, then the lowest of them) limit the station's total; a
  LocalGeneration profile for the station adds its limit to that total (power produced on
  site that the grid connection need not carry).  fleetsim shares a station total equally
  over its EVSEs, which keeps each EVSE's limit independent of what the others draw; an
  EVSE's own external constraint (or LocalGeneration) caps (or raises) that EVSE's share.
- What the EVSE's charging follows: the TxProfile of its running transaction, else its own
  TxDefaultProfile, else the station's TxDefaultProfile; on an EVSE where priority charging
  is active (`priority_evse_ids`, K21) a PriorityCharging profile in force replaces them.
  Its period gives the operation mode and V2X setpoints; its limit is capped by the above.
- evseId 0 reports the station's total: the station cap, or the sum of what the EVSEs may draw
  (each its limit, at most its rated power) when that is lower.  Where nothing limits an EVSE,
  its composite reports its rated power, as the schema wants a limit.

Offline (2.1, K01, Q11-Q12): a profile with a maxOfflineDuration is invalid from that many
seconds after the station went offline (`StationView.offline_since_s`) until it is back online;
what is below it rules meanwhile.

Kinds: Absolute from startSchedule; Recurring Daily/Weekly from the latest recurrence of
startSchedule (a daily schedule running past midnight goes on into the next day until its
duration or the next recurrence); Relative from the transaction's start, or from the start of
the window without a transaction; Dynamic from startSchedule (else its installation), with
period values as last updated (K28-K29 update them in place).

Amperes become watts with the period's numberPhases (else the EVSE's phases) at the nominal
phase voltage, and back the same way when the composite is asked in amperes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

from .profiles import Installed, epoch_s

__all__ = [
    "CAP_PURPOSES",
    "RECURRENCE_S",
    "CompositePeriod",
    "EvseView",
    "Instant",
    "NO_SELECTIONS",
    "StationView",
    "composite_schedule",
    "instant",
    "selected_schedule",
]

RECURRENCE_S = {"Daily": 86_400.0, "Weekly": 604_800.0}
CAP_PURPOSES = ("ChargingStationMaxProfile", "ChargingStationExternalConstraints")
#: The most periods one composite holds: a week of quarter-hour periods and then some.
MAX_COMPOSITE_PERIODS = 2048
#: A period boundary this close (in simulated seconds) counts as reached: float times drift.
BOUNDARY_S = 1e-6


class EvseView(NamedTuple):
    """What the composite needs to know of one EVSE.  Views are tuples: the EV's charging
    loop makes one at each step to see whether its kept limit still holds, and a tuple is
    made and compared in a fraction of a frozen dataclass's time."""

    id: int
    phases: int
    max_power_w: float
    transaction_id: str | None = None
    #: Simulated second the running transaction started (Relative profiles start there).
    transaction_started_s: float | None = None


#: No ISO 15118 EV picked a schedule: the empty `StationView.selected_schedule_ids`.
NO_SELECTIONS: Mapping[int, int] = MappingProxyType({})


class StationView(NamedTuple):
    """What the composite needs to know of the station (a tuple, as `EvseView`)."""

    evses: tuple[EvseView, ...]
    #: Unix time of simulated second 0 (profiles speak in dateTimes, the station in seconds).
    start_epoch_s: float
    voltage_v: float
    priority_evse_ids: frozenset[int] = frozenset()
    #: The chargingSchedule id an ISO 15118 EV picked among its TxProfile's, by EVSE (else
    #: the first schedule).
    selected_schedule_ids: Mapping[int, int] = NO_SELECTIONS
    #: Simulated second the station went offline; None while online.
    offline_since_s: float | None = None

    def evse(self, evse_id: int) -> EvseView | None:
        for evse in self.evses:
            if evse.id == evse_id:
                return evse
        return None


@dataclass(frozen=True, slots=True)
class Instant:
    """What the profiles allow an EVSE (or, for id 0, the station) from one simulated second
    until `next_change_s`."""

    #: The limit in watts; None where nothing limits.
    limit_w: float | None
    #: The phases the limit is for: the period's numberPhases, else the EVSE's.
    number_phases: int
    #: The period the EVSE's charging follows (TxProfile, TxDefault or PriorityCharging), as
    #: the CSMS sent it; None without one.
    period: Mapping[str, Any] | None
    #: The unit of `period`'s values.
    unit: str
    #: The profile `period` belongs to.
    profile: Installed | None
    next_change_s: float


@dataclass(frozen=True, slots=True)
class CompositePeriod:
    """One period of a composite schedule: from `start_s` (simulated seconds) on."""

    start_s: float
    limit_w: float | None
    number_phases: int
    period: Mapping[str, Any] | None
    unit: str


def selected_schedule(installed: Installed, selected_id: int | None) -> Mapping[str, Any]:
    """The chargingSchedule of `installed` in use: for a TxProfile the one the EV picked,
    else the first."""
    schedules = installed.profile["chargingSchedule"]
    if selected_id is not None and installed.purpose == "TxProfile":
        for schedule in schedules:
            if schedule["id"] == selected_id:
                return schedule  # type: ignore[no-any-return]
    return schedules[0]  # type: ignore[no-any-return]


def _in_force(
    installed: Installed,
    schedule: Mapping[str, Any],
    at_s: float,
    start_epoch_s: float,
    relative_start_s: float | None,
) -> tuple[Mapping[str, Any] | None, float]:
    """The period of `schedule` in force at `at_s` (None: the schedule is not in force), and
    the simulated second that may change.  `relative_start_s` None: a Relative schedule
    starting at `at_s` itself, which then never changes by itself."""
    profile = installed.profile
    valid_from = profile.get("validFrom")
    if valid_from is not None:
        valid_from_s = epoch_s(valid_from) - start_epoch_s
        if at_s < valid_from_s:
            return None, valid_from_s
    valid_to = profile.get("validTo")
    valid_to_s = math.inf if valid_to is None else epoch_s(valid_to) - start_epoch_s
    if at_s >= valid_to_s:
        return None, math.inf
    kind = profile["chargingProfileKind"]
    anchored = True
    if kind == "Relative":
        start_s = relative_start_s if relative_start_s is not None else at_s
        anchored = relative_start_s is not None
    elif "startSchedule" in schedule:
        start_s = epoch_s(schedule["startSchedule"]) - start_epoch_s
    else:
        start_s = installed.installed_s
    duration_s = schedule.get("duration")
    end_s = math.inf if duration_s is None else start_s + duration_s
    if kind == "Recurring":
        cycle_s = RECURRENCE_S[profile.get("recurrencyKind", "Daily")]
        start_s += math.floor((at_s - start_s + BOUNDARY_S) / cycle_s) * cycle_s
        end_s = start_s + min(cycle_s, math.inf if duration_s is None else duration_s)
        if at_s >= end_s:
            return None, min(start_s + cycle_s, valid_to_s)
    if at_s < start_s:
        return None, min(start_s, valid_to_s)
    if at_s >= end_s:
        return None, math.inf
    elapsed_s = at_s - start_s
    current = None
    next_s = end_s
    for period in schedule["chargingSchedulePeriod"]:
        if period["startPeriod"] <= elapsed_s + BOUNDARY_S:
            current = period
        else:
            next_s = start_s + period["startPeriod"]
            break
    if not anchored:
        return current, valid_to_s
    return current, min(next_s, valid_to_s)


def _watts(value: float, unit: str, phases: int, voltage_v: float) -> float:
    return float(value) if unit == "W" else float(value) * voltage_v * phases


def _phases_of(period: Mapping[str, Any], default: int) -> int:
    phases = period.get("numberPhases")
    return int(phases) if phases else default


@dataclass(slots=True)
class _Winners:
    """The profile that wins each purpose for one EVSE at one instant."""

    by_purpose: dict[str, tuple[tuple[int, int], Installed, Mapping[str, Any], str]] = field(
        default_factory=dict
    )
    next_change_s: float = math.inf


def _winners(
    profiles: Iterable[Installed],
    view: StationView,
    evse: EvseView | None,
    at_s: float,
    relative_start_s: float | None,
) -> _Winners:
    """For each purpose, the profile in force at `at_s` for `evse` (None: station-wide
    profiles only), with its period; the station-wide and EVSE-own winners of a cap purpose
    are kept apart (key suffix "@0")."""
    found = _Winners()
    selected_id = None if evse is None else view.selected_schedule_ids.get(evse.id)
    for installed in profiles:
        own = evse is not None and installed.evse_id == evse.id
        if not own and installed.evse_id != 0:
            continue
        purpose = installed.purpose
        if purpose == "TxProfile":
            if evse is None or evse.transaction_id is None:
                continue
            if installed.profile.get("transactionId") not in (None, evse.transaction_id):
                continue
        max_offline_s = installed.profile.get("maxOfflineDuration")
        if max_offline_s is not None and view.offline_since_s is not None:
            invalid_from_s = view.offline_since_s + max_offline_s
            if at_s >= invalid_from_s - BOUNDARY_S:
                continue  # offline too long: the profile below it rules until back online
            found.next_change_s = min(found.next_change_s, invalid_from_s)
        schedule = selected_schedule(installed, selected_id)
        period, change_s = _in_force(
            installed, schedule, at_s, view.start_epoch_s, relative_start_s
        )
        found.next_change_s = min(found.next_change_s, change_s)
        if period is None:
            continue
        key = purpose
        if purpose in CAP_PURPOSES or purpose == "LocalGeneration":
            key = purpose if own else purpose + "@0"
        rank = (1 if own else 0, installed.stack_level)
        best = found.by_purpose.get(key)
        if best is None or rank > best[0]:
            found.by_purpose[key] = (rank, installed, period, schedule["chargingRateUnit"])
    return found


def _limit_of(
    winner: tuple[Any, Installed, Mapping[str, Any], str] | None, phases: int, voltage_v: float
) -> float | None:
    if winner is None:
        return None
    _, _, period, unit = winner
    value = period.get("limit")
    if value is None:
        return None
    return _watts(value, unit, _phases_of(period, phases), voltage_v)


def _lowest(*limits: float | None) -> float | None:
    present = [limit for limit in limits if limit is not None]
    return min(present) if present else None


def _station_cap_w(winners: _Winners, phases: int, voltage_v: float) -> float | None:
    """The station-wide caps in force, raised by the station's local generation."""
    by = winners.by_purpose
    cap = _lowest(
        *(_limit_of(by.get(purpose + "@0"), phases, voltage_v) for purpose in CAP_PURPOSES)
    )
    generation = _limit_of(by.get("LocalGeneration@0"), phases, voltage_v)
    if cap is not None and generation is not None:
        cap += max(generation, 0.0)
    return cap


def instant(
    profiles: Sequence[Installed],
    view: StationView,
    evse_id: int,
    at_s: float,
    window_start_s: float | None = None,
) -> Instant:
    """What the profiles allow EVSE `evse_id` (0: the station's total) at `at_s`.

    A Relative profile starts at the EVSE's transaction; without one at `window_start_s`, or,
    when that is None, at `at_s` itself (the EV's limit now: the first period, unchanging)."""
    if evse_id == 0:
        return _station_instant(profiles, view, at_s, window_start_s)
    evse = view.evse(evse_id)
    assert evse is not None, f"no EVSE {evse_id}"
    relative_start_s = evse.transaction_started_s
    if relative_start_s is None:
        relative_start_s = window_start_s
    winners = _winners(profiles, view, evse, at_s, relative_start_s)
    by = winners.by_purpose
    voltage_v = view.voltage_v
    station_cap = _station_cap_w(winners, evse.phases, voltage_v)
    cap = None if station_cap is None else station_cap / len(view.evses)
    generation = _limit_of(by.get("LocalGeneration"), evse.phases, voltage_v)
    if cap is not None and generation is not None:
        cap += max(generation, 0.0)
    cap = _lowest(
        cap,
        *(_limit_of(by.get(purpose), evse.phases, voltage_v) for purpose in CAP_PURPOSES),
    )
    follows = None
    if evse.id in view.priority_evse_ids:
        follows = by.get("PriorityCharging")
    if follows is None:
        follows = by.get("TxProfile") or by.get("TxDefaultProfile")
    if follows is None:
        return Instant(cap, evse.phases, None, "W", None, winners.next_change_s)
    _, chosen, period, unit = follows
    limit = _lowest(cap, _limit_of(follows, evse.phases, voltage_v))
    if period.get("operationMode") == "Idle":
        limit = 0.0
    return Instant(
        limit,
        _phases_of(period, evse.phases),
        period,
        unit,
        chosen,
        winners.next_change_s,
    )


def _station_instant(
    profiles: Sequence[Installed],
    view: StationView,
    at_s: float,
    window_start_s: float | None,
) -> Instant:
    """The station's total: its cap, or the sum of what its EVSEs may draw (each its limit or,
    where none is lower, its rated power) when that is lower."""
    phases = max((evse.phases for evse in view.evses), default=3)
    winners = _winners(profiles, view, None, at_s, window_start_s)
    next_change_s = winners.next_change_s
    total_w = 0.0
    for evse in view.evses:
        own = instant(profiles, view, evse.id, at_s, window_start_s)
        next_change_s = min(next_change_s, own.next_change_s)
        total_w += evse.max_power_w if own.limit_w is None else min(own.limit_w, evse.max_power_w)
    limit = _lowest(_station_cap_w(winners, phases, view.voltage_v), total_w)
    return Instant(limit, phases, None, "W", None, next_change_s)


def composite_schedule(
    profiles: Sequence[Installed],
    view: StationView,
    evse_id: int,
    start_s: float,
    duration_s: float,
) -> list[CompositePeriod]:
    """The composite schedule of EVSE `evse_id` (0: the station) over
    [start_s, start_s + duration_s): one period per change, the first at `start_s`."""
    end_s = start_s + duration_s
    periods: list[CompositePeriod] = []
    at_s = start_s
    while at_s < end_s and len(periods) < MAX_COMPOSITE_PERIODS:
        now = instant(profiles, view, evse_id, at_s, start_s)
        entry = CompositePeriod(at_s, now.limit_w, now.number_phases, now.period, now.unit)
        last = periods[-1] if periods else None
        if last is None or (last.limit_w, last.number_phases, last.period, last.unit) != (
            entry.limit_w,
            entry.number_phases,
            entry.period,
            entry.unit,
        ):
            periods.append(entry)
        if now.next_change_s <= at_s:
            break  # cannot happen with well-formed profiles; never loop on it
        at_s = now.next_change_s
    return periods
