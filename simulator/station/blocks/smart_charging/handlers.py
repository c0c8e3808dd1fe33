"""Block K's answers to the CSMS and its reactions to the station's transactions.

SetChargingProfile checks a profile as the specification does before it installs it (K01):
where it may go (the EVSE exists; a ChargingStationMaxProfile is for evseId 0 and not
Relative; a TxProfile names the running transaction of its EVSE;
ChargingStationExternalConstraints are set by an energy management system, never by the
CSMS), its schedules (how many, the
unit, the periods, startSchedule as the kind requires) and whether it clashes with one
installed (same purpose, stack level and EVSE with overlapping validity; a TxDefaultProfile
for the station at a stack level an EVSE's own uses, and the other way round).  Each refusal
names a reasonCode and says what was wrong.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from itertools import pairwise
from typing import Any

from ....link import Answer
from ...config import StationConfig
from ...core import ScheduleSelected, StationCore, TransactionEnded, TxProfileGiven, refused
from ...device_model import VariableSpec
from ...evse import Evse
from .composite import CompositePeriod, composite_schedule
from .limit import station_view
from .profiles import ChargingProfiles, epoch_s, peek_profiles, profiles_of

__all__ = [
    "clear_charging_profile",
    "clear_transaction_profiles",
    "get_charging_profiles",
    "get_composite_schedule",
    "install_given_profile",
    "schedule_refusal",
    "schedule_selected",
    "set_charging_profile",
    "variables",
]

_SMART = "SmartChargingCtrlr"
#: Operation modes whose periods need no limit (2.1 ChargingSchedulePeriodType).
_MODES_WITHOUT_LIMIT = frozenset(
    {
        "Idle",
        "CentralSetpoint",
        "ExternalSetpoint",
        "ExternalLimits",
        "CentralFrequency",
        "LocalFrequency",
        "LocalLoadBalancing",
    }
)


def set_charging_profile(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    evse_id = int(payload["evseId"])
    profile = payload["chargingProfile"]
    refusal = (
        _placement_refusal(station, evse_id, profile)
        or schedule_refusal(station, profile)
        or _phases_refusal(station.evse(evse_id), profile)
        or _clash_refusal(station, evse_id, profile)
    )
    if refusal is not None:
        return refusal
    profiles_of(station).install(evse_id, profile, station.clock.sim_now())
    _wake_affected(station, evse_id)
    return Answer({"status": "Accepted"})


def _placement_refusal(
    station: StationCore, evse_id: int, profile: Mapping[str, Any]
) -> Answer | None:
    """Why the profile cannot go on `evse_id` (0: the station), or None."""
    purpose = profile["chargingProfilePurpose"]
    if purpose == "ChargingStationExternalConstraints":
        return refused(
            "InvalidValue",
            "ChargingStationExternalConstraints are set by an energy management system at the "
            "station, not by the CSMS (K01.FR.22); send a ChargingStationMaxProfile instead",
        )
    evse = station.evse(evse_id) if evse_id != 0 else None
    if evse_id != 0 and evse is None:
        return refused("UnknownEvse", f"this station has EVSEs 1..{len(station.evses)}")
    if purpose == "ChargingStationMaxProfile":
        if evse_id != 0:
            return refused("InvalidValue", "a ChargingStationMaxProfile is for evseId 0")
        if profile["chargingProfileKind"] == "Relative":
            return refused("InvalidValue", "a ChargingStationMaxProfile cannot be Relative")
    if purpose == "TxProfile":
        return _tx_profile_refusal(evse_id, evse, profile)
    return None


def _tx_profile_refusal(
    evse_id: int, evse: Evse | None, profile: Mapping[str, Any]
) -> Answer | None:
    """A TxProfile belongs to the transaction it names (K01.FR.16: on an EVSE; K01.FR.03: the
    CSMS names the transaction; K01.FR.09: one runs there; K01.FR.33: it is that one).  Only
    the TxProfile of a RequestStartTransaction comes without a transactionId, its transaction
    not yet begun (K05); that one does not pass here."""
    if evse is None:
        return refused("InvalidValue", "a TxProfile is for one EVSE, not evseId 0")
    wanted = profile.get("transactionId")
    if wanted is None:
        return refused(
            "MissingParam",
            "a TxProfile names the transaction it is for in transactionId (K01.FR.03)",
        )
    transaction = evse.transaction
    if transaction is None:
        return refused(
            "TxNotFound", f"transaction {wanted} is not running: EVSE {evse_id} has none"
        )
    if wanted != transaction.id:
        return refused(
            "TxNotFound",
            f"transaction {wanted} is not running on EVSE {evse_id} "
            f"(transaction {transaction.id} is)",
        )
    return None


def schedule_refusal(station: StationCore, profile: Mapping[str, Any]) -> Answer | None:
    """Why `profile` cannot be installed whatever EVSE it is for (its schedules, stack level,
    validity), or None when it can.  Also checks the TxProfile of a remote start (K05)."""
    model = station.device_model
    purpose = profile["chargingProfilePurpose"]
    kind = profile["chargingProfileKind"]
    schedules = profile["chargingSchedule"]
    most = 1 if station.config.ocpp_version == "2.0.1" else 3
    if len(schedules) > most:
        return refused(
            "InvalidSchedule",
            f"{len(schedules)} chargingSchedules; OCPP {station.config.ocpp_version} allows "
            f"{most} in a SetChargingProfile",
        )
    if len({schedule["id"] for schedule in schedules}) < len(schedules):
        return refused("InvalidSchedule", "the chargingSchedules' ids must differ")
    levels = model.integer(_SMART, "ProfileStackLevel")
    if profile["stackLevel"] > levels:
        return refused("InvalidStackLevel", f"stackLevel {profile['stackLevel']}; at most {levels}")
    valid_from, valid_to = profile.get("validFrom"), profile.get("validTo")
    if valid_from is not None and valid_to is not None and epoch_s(valid_to) <= epoch_s(valid_from):
        return refused("InvalidValue", f"validTo {valid_to} is not after validFrom {valid_from}")
    if kind == "Recurring" and "recurrencyKind" not in profile:
        return refused("InvalidSchedule", "a Recurring profile needs a recurrencyKind")
    if kind != "Dynamic" and ("dynUpdateInterval" in profile or "dynUpdateTime" in profile):
        return refused(
            "InvalidProfile", "dynUpdateInterval and dynUpdateTime are for Dynamic profiles"
        )
    for schedule in schedules:
        refusal = _one_schedule_refusal(station, purpose, kind, schedule)
        if refusal is not None:
            return refusal
    return None


def _one_schedule_refusal(
    station: StationCore, purpose: str, kind: str, schedule: Mapping[str, Any]
) -> Answer | None:
    model = station.device_model
    units = model.members(_SMART, "RateUnit")
    if schedule["chargingRateUnit"] not in units:
        return refused(
            "UnsupportedRateUnit",
            f"chargingRateUnit {schedule['chargingRateUnit']}; this station takes {units}",
        )
    periods = schedule["chargingSchedulePeriod"]
    allowed = model.integer(_SMART, "PeriodsPerSchedule")
    if len(periods) > allowed:
        return refused(
            "InvalidSchedule", f"{len(periods)} periods; PeriodsPerSchedule is {allowed}"
        )
    if periods[0]["startPeriod"] != 0:
        return refused("InvalidSchedule", "the first period must have startPeriod 0")
    starts = [period["startPeriod"] for period in periods]
    if any(later <= earlier for earlier, later in pairwise(starts)):
        return refused("InvalidSchedule", f"startPeriods must ascend: {starts}")
    if kind == "Relative" and "startSchedule" in schedule:
        return refused("InvalidSchedule", "a Relative schedule has no startSchedule")
    if kind in ("Absolute", "Recurring") and "startSchedule" not in schedule:
        return refused("InvalidSchedule", f"an {kind} schedule needs a startSchedule")
    if purpose == "PriorityCharging" and "duration" in schedule:
        return refused("InvalidSchedule", "a PriorityCharging schedule has no duration")
    switching = model.boolean(_SMART, "ACPhaseSwitchingSupported")
    for period in periods:
        mode = period.get("operationMode", "ChargingOnly")
        if purpose == "PriorityCharging" and mode != "ChargingOnly":
            return refused("InvalidSchedule", "a PriorityCharging period is ChargingOnly")
        if "limit" not in period and mode not in _MODES_WITHOUT_LIMIT:
            return refused("InvalidSchedule", f"a {mode} period needs a limit")
        if "phaseToUse" in period and (period.get("numberPhases") != 1 or not switching):
            return refused(
                "InvalidSchedule",
                "phaseToUse needs numberPhases 1 and an EVSE that switches phases "
                "(SmartChargingCtrlr.ACPhaseSwitchingSupported is false)",
            )
    return None


def _phases_refusal(evse: Evse | None, profile: Mapping[str, Any]) -> Answer | None:
    if evse is None:
        return None
    for schedule in profile["chargingSchedule"]:
        for period in schedule["chargingSchedulePeriod"]:
            if int(period.get("numberPhases") or 0) > evse.phases:
                return refused(
                    "InvalidSchedule",
                    f"numberPhases {period['numberPhases']}; EVSE {evse.id} has {evse.phases}",
                )
    return None


def _validity(profile: Mapping[str, Any]) -> tuple[float, float]:
    valid_from, valid_to = profile.get("validFrom"), profile.get("validTo")
    return (
        -math.inf if valid_from is None else epoch_s(valid_from),
        math.inf if valid_to is None else epoch_s(valid_to),
    )


def _clash_refusal(station: StationCore, evse_id: int, profile: Mapping[str, Any]) -> Answer | None:
    """Whether the profile clashes with one installed under another id (K01.FR.06, and the
    TxDefaultProfile rule between the station and its EVSEs)."""
    profiles = peek_profiles(station)
    if profiles is None:
        return None
    purpose, level, profile_id = (
        profile["chargingProfilePurpose"],
        profile["stackLevel"],
        profile["id"],
    )
    start, end = _validity(profile)
    for held in profiles.installed:
        if held.id == profile_id:
            if held.purpose == "ChargingStationExternalConstraints":
                return refused(
                    "DuplicateProfile",
                    f"id {profile_id} is an external constraint's; choose another id",
                )
            continue  # the new profile replaces it (K01.FR.05)
        if held.purpose != purpose or held.stack_level != level:
            continue
        if held.evse_id == evse_id:
            held_start, held_end = _validity(held.profile)
            if held_start < end and start < held_end:
                return refused(
                    "DuplicateProfile",
                    f"profile {held.id} already is a {purpose} at stackLevel {level} on "
                    f"evseId {evse_id} for an overlapping time; replace it with its id or "
                    "choose another stackLevel",
                )
        elif purpose == "TxDefaultProfile" and 0 in (held.evse_id, evse_id):
            return refused(
                "DuplicateProfile",
                f"TxDefaultProfile {held.id} on evseId {held.evse_id} uses stackLevel {level}; "
                "a station-wide and an EVSE's own TxDefaultProfile need different stack levels",
            )
    return None


def _wake_affected(station: StationCore, evse_id: int) -> None:
    for evse in station.evses:
        if evse_id in (0, evse.id):
            evse.wake()


def clear_charging_profile(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    profiles = peek_profiles(station)
    removed = 0
    if profiles is not None:
        removed = profiles.clear(
            payload.get("chargingProfileId"), payload.get("chargingProfileCriteria")
        )
    if removed:
        _wake_affected(station, 0)
    return Answer({"status": "Accepted" if removed else "Unknown"})


def get_charging_profiles(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    profiles = peek_profiles(station)
    evse_id = payload.get("evseId")
    found = [] if profiles is None else profiles.matching(evse_id, payload["chargingProfile"])
    if not found:
        return Answer({"status": "NoProfiles"})
    request_id = payload["requestId"]
    groups: dict[tuple[int, str], list[Mapping[str, Any]]] = {}
    for installed in found:
        groups.setdefault((installed.evse_id, installed.source), []).append(installed.profile)

    async def report() -> None:
        ordered = sorted(groups.items())
        for index, ((group_evse, source), group) in enumerate(ordered):
            message: dict[str, Any] = {
                "requestId": request_id,
                "chargingLimitSource": source,
                "evseId": group_evse,
                "chargingProfile": group,
            }
            if index < len(ordered) - 1:
                message["tbc"] = True
            await station.call("ReportChargingProfiles", message)

    return Answer({"status": "Accepted"}, then=report)


def get_composite_schedule(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    """The composite schedule of an EVSE, or of the station for evseId 0 (K08), from now for
    `duration` seconds, in the unit asked for (W when none is)."""
    evse_id = int(payload["evseId"])
    evse = station.evse(evse_id) if evse_id != 0 else None
    if evse_id != 0 and evse is None:
        return refused("UnknownEvse", f"this station has EVSEs 1..{len(station.evses)}")
    units = station.device_model.members(_SMART, "RateUnit")
    unit = payload.get("chargingRateUnit", "W" if "W" in units else units[0])
    if unit not in units:
        return refused("UnsupportedRateUnit", f"chargingRateUnit {unit}; this station uses {units}")
    duration_s = int(payload["duration"])
    if duration_s <= 0:
        return refused("InvalidValue", f"duration {duration_s}; ask for at least one second")
    now_s = station.clock.sim_now()
    profiles = peek_profiles(station)
    store = profiles if profiles is not None else ChargingProfiles()
    view = station_view(station, store)
    periods = composite_schedule(store.installed, view, evse_id, now_s, duration_s)
    rated_w = evse.max_power_w if evse is not None else sum(e.max_power_w for e in station.evses)
    version_21 = station.config.ocpp_version != "2.0.1"
    schedule = {
        "evseId": evse_id,
        "duration": duration_s,
        "scheduleStart": station.clock.timestamp(now_s),
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": _whole_seconds(
            [
                _ocpp_period(entry, now_s, unit, rated_w, view.voltage_v, version_21)
                for entry in periods
            ]
        ),
    }
    return Answer({"status": "Accepted", "schedule": schedule})


#: Period fields in the schedule's unit that a composite in another unit converts.
_POWER_FIELDS = ("setpoint", "dischargeLimit", "v2xBaseline")
#: 2.1 period fields a composite passes on as the profile has them.
_PASSED_FIELDS = (
    "operationMode",
    "setpointReactive",
    "preconditioningRequest",
    "evseSleep",
    "v2xFreqWattCurve",
    "v2xSignalWattCurve",
)


def _whole_seconds(periods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The periods with their startPeriods in whole seconds (as the schema has them), a period
    shorter than that giving way to the next, and one that reports what the one before does
    (another profile's period of the same limit) merged into it."""
    kept: list[dict[str, Any]] = []
    for period in periods:
        if kept and kept[-1]["startPeriod"] == period["startPeriod"]:
            kept[-1] = period
        elif kept and {**kept[-1], "startPeriod": 0} == {**period, "startPeriod": 0}:
            continue
        else:
            kept.append(period)
    return kept


def _ocpp_period(
    entry: CompositePeriod,
    start_s: float,
    unit: str,
    rated_w: float,
    voltage_v: float,
    version_21: bool,
) -> dict[str, Any]:
    phases = entry.number_phases
    per_unit_w = 1.0 if unit == "W" else voltage_v * phases
    limit_w = rated_w if entry.limit_w is None else entry.limit_w
    out: dict[str, Any] = {
        "startPeriod": round(entry.start_s - start_s),
        "limit": round(limit_w / per_unit_w, 1),
        "numberPhases": phases,
    }
    period = entry.period
    if version_21 and period is not None:
        from_unit_w = 1.0 if entry.unit == "W" else voltage_v * phases
        for name in _POWER_FIELDS:
            if name in period:
                out[name] = round(float(period[name]) * from_unit_w / per_unit_w, 1)
        for name in _PASSED_FIELDS:
            if name in period:
                out[name] = period[name]
    return out


async def install_given_profile(station: StationCore, event: TxProfileGiven) -> None:
    """The TxProfile of a RequestStartTransaction, now that its transaction runs (K05): it
    gets the transaction's id, so it ends with it (K01.FR.37), and the EV follows it at once."""
    evse = event.evse
    if evse.transaction is not event.transaction:
        return  # the transaction ended before its profile arrived
    profile = {**event.profile, "transactionId": event.transaction.id}
    profiles_of(station).install(evse.id, profile, station.clock.sim_now())
    evse.wake()


def clear_transaction_profiles(station: StationCore, event: TransactionEnded) -> None:
    """TxProfiles end with their transaction (K01.FR.37), and so does the EV's pick among
    their schedules."""
    profiles = peek_profiles(station)
    if profiles is not None:
        profiles.clear_transaction(event.transaction.id)
        profiles.selected_schedule_ids.pop(event.evse.id, None)


def schedule_selected(station: StationCore, event: ScheduleSelected) -> None:
    """An ISO 15118 EV picked one of its TxProfile's chargingSchedules (K15, K18): from now on
    that schedule limits the EVSE -- its power and its composite schedule."""
    profiles = peek_profiles(station)
    if profiles is None:
        return
    evse = event.evse
    installed = profiles.by_id(event.profile_id)
    if (
        installed is None
        or installed.purpose != "TxProfile"
        or installed.evse_id != evse.id
        or all(s["id"] != event.schedule_id for s in installed.profile["chargingSchedule"])
    ):
        return  # replaced or gone meanwhile: the EV picks again among the new schedules
    profiles.selected_schedule_ids[evse.id] = event.schedule_id
    evse.wake()


def _profile_count(station: Any) -> str:
    profiles = peek_profiles(station)
    return str(0 if profiles is None else len(profiles))


def variables(config: StationConfig) -> Iterator[VariableSpec]:
    """SmartChargingCtrlr: all read-only, each read where it matters (SetChargingProfile's
    checks, GetCompositeSchedule's unit, remote starts for Enabled)."""
    yield VariableSpec(_SMART, "Enabled", "boolean", "true", "ReadOnly")
    yield VariableSpec(
        _SMART,
        "Entries",
        "integer",
        "0",
        "ReadOnly",
        reader=_profile_count,
        variable_instance="ChargingProfiles",
    )
    yield VariableSpec(_SMART, "PeriodsPerSchedule", "integer", "24", "ReadOnly")
    yield VariableSpec(_SMART, "ProfileStackLevel", "integer", "10", "ReadOnly")
    yield VariableSpec(_SMART, "RateUnit", "MemberList", "A,W", "ReadOnly", values_list=("A", "W"))
    yield VariableSpec(_SMART, "ACPhaseSwitchingSupported", "boolean", "false", "ReadOnly")
