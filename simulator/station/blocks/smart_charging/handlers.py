"""Block K's answers to the CSMS and its reactions to the station's transactions."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ....link import Answer
from ...config import StationConfig
from ...core import StationCore, TransactionEnded, TxProfileGiven, refused
from ...device_model import VariableSpec
from .profiles import peek_profiles, profiles_of

__all__ = [
    "clear_charging_profile",
    "clear_transaction_profiles",
    "get_charging_profiles",
    "install_given_profile",
    "schedule_refusal",
    "set_charging_profile",
    "variables",
]

_STATION_PURPOSES = ("TxDefaultProfile", "ChargingStationMaxProfile")


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
    if purpose not in (
        "TxProfile",
        "TxDefaultProfile",
        "ChargingStationMaxProfile",
        "PriorityCharging",
    ):
        return refused("UnsupportedRequest", f"{purpose} profiles are not supported")
    if purpose == "TxProfile":
        evse = station.evse(evse_id)
        transaction = evse.transaction if evse is not None else None
        wanted = profile.get("transactionId")
        if transaction is None or wanted not in (None, transaction.id):
            return refused("TxNotFound", f"no transaction {wanted or ''} on EVSE {evse_id}")
    refusal = schedule_refusal(station, profile)
    if refusal is not None:
        return refusal
    profiles_of(station).install(evse_id, profile, station.clock.sim_now())
    _wake_affected(station, evse_id)
    return Answer({"status": "Accepted"})


def schedule_refusal(station: StationCore, profile: Mapping[str, Any]) -> Answer | None:
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
    by_evse: dict[tuple[int, str], list[Mapping[str, Any]]] = {}
    for installed in found:
        by_evse.setdefault((installed.evse_id, installed.source), []).append(installed.profile)

    async def report() -> None:
        groups = sorted(by_evse.items())
        for index, ((group_evse, source), group) in enumerate(groups):
            message: dict[str, Any] = {
                "requestId": request_id,
                "chargingLimitSource": source,
                "evseId": group_evse,
                "chargingProfile": group,
            }
            if index < len(groups) - 1:
                message["tbc"] = True
            await station.call("ReportChargingProfiles", message)

    return Answer({"status": "Accepted"}, then=report)


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
    """TxProfiles end with their transaction (K01.FR.37)."""
    profiles = peek_profiles(station)
    if profiles is not None:
        profiles.clear_transaction(event.transaction.id)


def _profile_count(station: Any) -> str:
    profiles = peek_profiles(station)
    return str(0 if profiles is None else len(profiles))


def variables(config: StationConfig) -> Iterator[VariableSpec]:
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
