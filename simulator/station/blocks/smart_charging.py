"""Block K, smart charging: the charging profiles a station holds, and the limit they set now.

The CSMS installs profiles with SetChargingProfile (K01), or a TxProfile with the
RequestStartTransaction that begins its transaction (K05: block F checks it against
`charging_profile_refusal` before accepting, and hands it over as `TxProfileGiven` once the
transaction runs), removes them with ClearChargingProfile (K10) and reads them back with
GetChargingProfiles (K09, answered by ReportChargingProfiles).  What matters to the EV is
`active_limit(evse)`: the limit, V2X setpoint and operation mode in force at this simulated
second, and when that will next change, so the EVSE's session task can sleep until exactly
then.

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

import datetime as dt
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ...link import Answer
from ..config import StationConfig
from ..core import (
    NO_LIMIT,
    ActiveLimit,
    Block,
    StationCore,
    TransactionEnded,
    TxProfileGiven,
    refused,
)
from ..device_model import VariableSpec
from ..evse import NOMINAL_PHASE_VOLTAGE_V, Evse

__all__ = ["BLOCK", "ChargingProfiles"]
_RECURRENCE_S = {"Daily": 86_400.0, "Weekly": 604_800.0}
_STATION_PURPOSES = ("TxDefaultProfile", "ChargingStationMaxProfile")


@dataclass(slots=True)
class _Installed:
    evse_id: int
    profile: Mapping[str, Any]
    installed_s: float

    @property
    def id(self) -> int:
        return int(self.profile["id"])

    @property
    def purpose(self) -> str:
        return str(self.profile["chargingProfilePurpose"])

    @property
    def stack_level(self) -> int:
        return int(self.profile["stackLevel"])


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True, slots=True)
class _Period:
    period: Mapping[str, Any] | None  # None: the schedule is not in force now
    unit: str
    next_change_s: float


class ChargingProfiles:
    """The profiles one station holds (created on first use: most stations never get any)."""

    __slots__ = ("_installed",)

    def __init__(self) -> None:
        self._installed: list[_Installed] = []

    def __len__(self) -> int:
        return len(self._installed)

    def install(self, evse_id: int, profile: Mapping[str, Any], now_s: float) -> None:
        """Add `profile`, replacing one with the same id, or with the same purpose, stack
        level and EVSE (K01.FR.05, K01.FR.06)."""
        purpose, level = profile["chargingProfilePurpose"], profile["stackLevel"]
        self._installed = [
            p
            for p in self._installed
            if p.id != profile["id"]
            and not (p.evse_id == evse_id and p.purpose == purpose and p.stack_level == level)
        ]
        self._installed.append(_Installed(evse_id, profile, now_s))

    def clear(self, profile_id: int | None, criteria: Mapping[str, Any] | None) -> int:
        """Remove the profiles that match; return how many went."""

        def matches(p: _Installed) -> bool:
            if profile_id is not None:
                return p.id == profile_id
            if criteria is None:
                return True
            if "evseId" in criteria and p.evse_id != criteria["evseId"]:
                return False
            if (
                "chargingProfilePurpose" in criteria
                and p.purpose != criteria["chargingProfilePurpose"]
            ):
                return False
            return not ("stackLevel" in criteria and p.stack_level != criteria["stackLevel"])

        kept = [p for p in self._installed if not matches(p)]
        removed = len(self._installed) - len(kept)
        self._installed = kept
        return removed

    def clear_transaction(self, transaction_id: str) -> None:
        """TxProfiles end with their transaction (K01.FR.37)."""
        self._installed = [
            p
            for p in self._installed
            if not (
                p.purpose == "TxProfile"
                and p.profile.get("transactionId") in (None, transaction_id)
            )
        ]

    def matching(self, evse_id: int | None, criteria: Mapping[str, Any]) -> list[_Installed]:
        ids = criteria.get("chargingProfileId")
        found = []
        for p in self._installed:
            if evse_id is not None and p.evse_id != evse_id:
                continue
            if ids and p.id not in ids:
                continue
            if (
                "chargingProfilePurpose" in criteria
                and p.purpose != criteria["chargingProfilePurpose"]
            ):
                continue
            if "stackLevel" in criteria and p.stack_level != criteria["stackLevel"]:
                continue
            if criteria.get("chargingLimitSource") and "CSO" not in criteria["chargingLimitSource"]:
                continue
            found.append(p)
        return found

    def for_evse(self, evse_id: int) -> list[_Installed]:
        return [p for p in self._installed if p.evse_id in (evse_id, 0)]


def _schedule_period(
    installed: _Installed, now_s: float, start_epoch_s: float, tx_start_s: float | None
) -> _Period:
    """The period of `installed`'s first schedule in force at `now_s`, and its end."""
    profile = installed.profile
    schedule = profile["chargingSchedule"][0]
    unit = schedule["chargingRateUnit"]
    valid_from = profile.get("validFrom")
    valid_to = profile.get("validTo")
    if valid_from is not None and _epoch(valid_from) - start_epoch_s > now_s:
        return _Period(None, unit, _epoch(valid_from) - start_epoch_s)
    valid_to_s = math.inf if valid_to is None else _epoch(valid_to) - start_epoch_s
    if now_s >= valid_to_s:
        return _Period(None, unit, math.inf)
    kind = profile["chargingProfileKind"]
    if kind == "Relative":
        start_s = tx_start_s if tx_start_s is not None else installed.installed_s
    elif "startSchedule" in schedule:
        start_s = _epoch(schedule["startSchedule"]) - start_epoch_s
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
    profiles = station.peek_block_state(BLOCK)
    if profiles is None or not len(profiles):
        return NO_LIMIT
    now_s = station.clock.sim_now()
    start_epoch_s = station.clock.epoch_s(0.0)
    transaction = evse.transaction
    tx_start_s = transaction.started_s if transaction is not None else None
    next_change_s = math.inf
    # rank, stack level, period, unit, the profile
    best: tuple[int, int, Mapping[str, Any], str, _Installed] | None = None
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
    )


# -- handlers -----------------------------------------------------------------------------------


def set_charging_profile(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    evse_id = payload["evseId"]
    profile = payload["chargingProfile"]
    purpose = profile["chargingProfilePurpose"]
    if evse_id != 0 and station.evse(evse_id) is None:
        return refused("UnknownEvse", f"this station has EVSEs 1..{len(station.evses)}")
    if evse_id == 0 and purpose not in _STATION_PURPOSES:
        return refused("InvalidValue", f"a {purpose} needs an EVSE, not evseId 0")
    if evse_id != 0 and purpose == "ChargingStationMaxProfile":
        return refused("InvalidValue", "a ChargingStationMaxProfile is for evseId 0")
    if purpose not in ("TxProfile", "TxDefaultProfile", "ChargingStationMaxProfile"):
        return refused("UnsupportedRequest", f"{purpose} profiles are not supported")
    if purpose == "TxProfile":
        evse = station.evse(evse_id)
        transaction = evse.transaction if evse is not None else None
        wanted = profile.get("transactionId")
        if transaction is None or wanted not in (None, transaction.id):
            return refused("TxNotFound", f"no transaction {wanted or ''} on EVSE {evse_id}")
    refusal = _schedule_refusal(station, profile)
    if refusal is not None:
        return refusal
    station.block_state(BLOCK).install(evse_id, profile, station.clock.sim_now())
    _wake_affected(station, evse_id)
    return Answer({"status": "Accepted"})


def _schedule_refusal(station: StationCore, profile: Mapping[str, Any]) -> Answer | None:
    """Why `profile` cannot be installed whatever it is for: more periods than
    PeriodsPerSchedule, a stackLevel beyond ProfileStackLevel; None when it can."""
    periods = max(len(s["chargingSchedulePeriod"]) for s in profile["chargingSchedule"])
    allowed = station.device_model.integer("SmartChargingCtrlr", "PeriodsPerSchedule")
    if periods > allowed:
        return refused("InvalidSchedule", f"{periods} periods; PeriodsPerSchedule is {allowed}")
    levels = station.device_model.integer("SmartChargingCtrlr", "ProfileStackLevel")
    if profile["stackLevel"] > levels:
        return refused("InvalidStackLevel", f"stackLevel at most {levels}")
    return None


def _wake_affected(station: StationCore, evse_id: int) -> None:
    for evse in station.evses:
        if evse_id in (0, evse.id):
            evse.wake()


def clear_charging_profile(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    profiles = station.peek_block_state(BLOCK)
    removed = 0
    if profiles is not None:
        removed = profiles.clear(
            payload.get("chargingProfileId"), payload.get("chargingProfileCriteria")
        )
    if removed:
        _wake_affected(station, 0)
    return Answer({"status": "Accepted" if removed else "Unknown"})


def get_charging_profiles(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    profiles = station.peek_block_state(BLOCK)
    evse_id = payload.get("evseId")
    found = [] if profiles is None else profiles.matching(evse_id, payload["chargingProfile"])
    if not found:
        return Answer({"status": "NoProfiles"})
    request_id = payload["requestId"]
    by_evse: dict[int, list[Mapping[str, Any]]] = {}
    for installed in found:
        by_evse.setdefault(installed.evse_id, []).append(installed.profile)

    async def report() -> None:
        groups = sorted(by_evse.items())
        for index, (group_evse, group) in enumerate(groups):
            message: dict[str, Any] = {
                "requestId": request_id,
                "chargingLimitSource": "CSO",
                "evseId": group_evse,
                "chargingProfile": group,
            }
            if index < len(groups) - 1:
                message["tbc"] = True
            await station.call("ReportChargingProfiles", message)

    return Answer({"status": "Accepted"}, then=report)


async def _install_given_profile(station: StationCore, event: TxProfileGiven) -> None:
    """The TxProfile of a RequestStartTransaction, now that its transaction runs (K05): it
    gets the transaction's id, so it ends with it (K01.FR.37), and the EV follows it at once."""
    evse = event.evse
    if evse.transaction is not event.transaction:
        return  # the transaction ended before its profile arrived
    profile = {**event.profile, "transactionId": event.transaction.id}
    station.block_state(BLOCK).install(evse.id, profile, station.clock.sim_now())
    evse.wake()


def _clear_transaction_profiles(station: StationCore, event: TransactionEnded) -> None:
    """TxProfiles end with their transaction (K01.FR.37)."""
    profiles = station.peek_block_state(BLOCK)
    if profiles is not None:
        profiles.clear_transaction(event.transaction.id)


def _profile_count(station: Any) -> str:
    profiles = station.peek_block_state(BLOCK)
    return str(0 if profiles is None else len(profiles))


def _variables(config: StationConfig) -> Iterator[VariableSpec]:
    smart = "SmartChargingCtrlr"
    yield VariableSpec(smart, "Enabled", "boolean", "true", "ReadOnly")
    yield VariableSpec(
        smart,
        "Entries",
        "integer",
        "0",
        "ReadOnly",
        reader=_profile_count,
        variable_instance="ChargingProfiles",
    )
    yield VariableSpec(smart, "PeriodsPerSchedule", "integer", "24", "ReadOnly")
    yield VariableSpec(smart, "ProfileStackLevel", "integer", "10", "ReadOnly")
    yield VariableSpec(smart, "RateUnit", "MemberList", "A,W", "ReadOnly", values_list=("A", "W"))


BLOCK: Block[ChargingProfiles] = Block(
    letter="K",
    name="smart_charging",
    handlers={
        "SetChargingProfile": set_charging_profile,
        "ClearChargingProfile": clear_charging_profile,
        "GetChargingProfiles": get_charging_profiles,
    },
    follow_ups={"GetChargingProfiles": ("ReportChargingProfiles",)},
    variables=_variables,
    reactions={
        TransactionEnded: _clear_transaction_profiles,
        TxProfileGiven: _install_given_profile,
    },
    new_state=ChargingProfiles,
    charging_limit=active_limit,
    charging_profile_refusal=_schedule_refusal,
)
