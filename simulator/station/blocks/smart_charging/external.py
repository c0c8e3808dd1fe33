"""External charging limits (K11-K14): a limit an energy management system sets on the station.

The site's own energy management (simulator/world.py, `sites[].external_limits`) posts
`ExternalLimitChanged` when its limit on the station changes.  The station keeps the limit as
a ChargingStationExternalConstraints profile for the whole station (evseId 0) with the limit's
source (EMS), an Absolute profile replaced on every change (K11.FR.06), and tells the CSMS with
NotifyChargingLimit -- carrying the schedule when SmartChargingCtrlr.
NotifyChargingLimitWithSchedules is true -- or, when the limit is lifted, removes it and sends
ClearedChargingLimit (K13).  A running transaction whose limit moved by at least
LimitChangeSignificance per cent then gets a TransactionEvent, triggerReason
ChargingRateChanged (K11.FR.04, K13.FR.03).  The EVs follow at once: the EVSEs are woken and
re-read the limit, which the composite caps with the external constraint.

A NotifyChargingLimit that could not go out (the station was offline, or not yet booted when the
site first set its limit) is sent after the next boot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator, Mapping
from typing import Any

from ...config import StationConfig
from ...core import Block, Booted, ExternalLimitChanged, StationCore
from ...device_model import VariableSpec
from ...evse import Evse
from ...transaction import update_transaction
from .profiles import Installed, peek_profiles, profiles_of

__all__ = ["external_limit_changed", "external_variables", "report_after_boot"]

#: Profile ids of the external constraints, by source: far above what a CSMS numbers its own.
_PROFILE_IDS = {"EMS": 2_000_000_001, "SO": 2_000_000_002, "Other": 2_000_000_003}


class ExternalState:
    """What the station still owes the CSMS about its external limits."""

    __slots__ = ("grid_critical", "unreported")

    def __init__(self) -> None:
        #: Sources whose NotifyChargingLimit has not gone out yet.
        self.unreported: set[str] = set()
        #: Whether each source's limit in force is critical for the grid.
        self.grid_critical: dict[str, bool] = {}


_STATE: Block[ExternalState] = Block(
    letter="K", name="smart_charging.external", new_state=ExternalState
)


def _profile_id(source: str) -> int:
    return _PROFILE_IDS.get(source, _PROFILE_IDS["Other"])


def _installed(station: StationCore, source: str) -> Installed | None:
    profiles = peek_profiles(station)
    if profiles is None:
        return None
    found = profiles.matching(0, {"chargingProfileId": [_profile_id(source)]})
    return found[0] if found else None


def _running(station: StationCore) -> dict[int, float]:
    """The limit on each running transaction, W (no limit: what the EVSE can give)."""
    limits = {}
    for evse in station.transactions():
        limit_w = station.charging_limit(evse).limit_w
        limits[evse.id] = evse.max_power_w if limit_w is None else min(limit_w, evse.max_power_w)
    return limits


def external_limit_changed(
    station: StationCore, event: ExternalLimitChanged
) -> Awaitable[None] | None:
    before = _running(station)
    source = event.source
    if event.limit_w is None:
        profiles = peek_profiles(station)
        if profiles is None or not profiles.remove_external(_profile_id(source)):
            return None
        message: tuple[str, dict[str, Any]] = (
            "ClearedChargingLimit",
            {"chargingLimitSource": source},
        )
        state = station.peek_block_state(_STATE)
        if state is not None:
            state.unreported.discard(source)
    else:
        profile = {
            "id": _profile_id(source),
            "stackLevel": 0,
            "chargingProfilePurpose": "ChargingStationExternalConstraints",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": [
                {
                    "id": 1,
                    "startSchedule": station.clock.timestamp(),
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": event.limit_w}],
                }
            ],
        }
        profiles_of(station).install(0, profile, station.clock.sim_now(), source=source)
        message = (
            "NotifyChargingLimit",
            _notification(station, profile, source, event.is_grid_critical),
        )
        state = station.block_state(_STATE)
        state.unreported.add(source)
        state.grid_critical[source] = event.is_grid_critical
    for evse in station.evses:
        evse.wake()
    after = _running(station)
    changed = [
        evse
        for evse in station.transactions()
        if evse.id in before and _significant(station, before[evse.id], after.get(evse.id))
    ]
    return _report(station, source, message, changed)


def _notification(
    station: StationCore,
    profile: Mapping[str, Any],
    source: str,
    is_grid_critical: bool,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "chargingLimit": {
            "chargingLimitSource": source,
            "isGridCritical": is_grid_critical,
        }
    }
    if station.device_model.boolean("SmartChargingCtrlr", "NotifyChargingLimitWithSchedules"):
        payload["chargingSchedule"] = list(profile["chargingSchedule"])
    return payload


def _significant(station: StationCore, before_w: float, after_w: float | None) -> bool:
    """Whether a transaction's limit moved by at least LimitChangeSignificance per cent."""
    if after_w is None or before_w == after_w:
        return False
    if before_w == 0:
        return True
    significance = float(station.device_model.get("SmartChargingCtrlr", "LimitChangeSignificance"))
    return abs(after_w - before_w) / before_w * 100.0 >= significance


async def _report(
    station: StationCore, source: str, message: tuple[str, dict[str, Any]], changed: list[Evse]
) -> None:
    action, payload = message
    answered = await station.call(action, payload)
    if answered is not None and action == "NotifyChargingLimit":
        state = station.peek_block_state(_STATE)
        if state is not None:
            state.unreported.discard(source)
    for evse in changed:
        await update_transaction(station, evse, "ChargingRateChanged")


def report_after_boot(station: StationCore, event: Booted) -> Awaitable[None] | None:
    """Tell the CSMS now of the external limits it has not heard of."""
    state = station.peek_block_state(_STATE)
    if state is None or not state.unreported:
        return None
    return _report_unreported(station, state)


async def _report_unreported(station: StationCore, state: ExternalState) -> None:
    for source in sorted(state.unreported):
        installed = _installed(station, source)
        if installed is None:
            state.unreported.discard(source)
            continue
        payload = _notification(
            station, installed.profile, source, state.grid_critical.get(source, False)
        )
        if await station.call("NotifyChargingLimit", payload) is not None:
            state.unreported.discard(source)


def external_variables(config: StationConfig) -> Iterator[VariableSpec]:
    smart = "SmartChargingCtrlr"
    yield VariableSpec(smart, "NotifyChargingLimitWithSchedules", "boolean", "false")
    yield VariableSpec(
        smart, "LimitChangeSignificance", "decimal", "1", min_limit=0, max_limit=100, unit="%"
    )
    yield VariableSpec(
        smart, "ExternalConstraintsProfileDisallowed", "boolean", "false", "ReadOnly"
    )
