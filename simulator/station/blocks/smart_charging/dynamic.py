"""Dynamic charging profiles (K28, OCPP 2.1): one period whose values the CSMS keeps updating.

A profile of chargingProfileKind Dynamic holds a single chargingSchedulePeriod; the composite
uses its values as last updated.  The CSMS pushes new values with UpdateDynamicSchedule, or the
station pulls them with PullDynamicScheduleUpdate every `dynUpdateInterval` seconds after the
last update (K28.FR.10).  Either way the station stamps the profile's `dynUpdateTime` (K28.FR.09)
and wakes the EVSEs it covers, whose visit tasks re-read the limit at once.

The pulls run on one timer task per station, started when a Dynamic profile with an interval is
installed or updated and ending when no such profile is left: a station without one has no task
and no state.  A pull that goes unanswered (offline, CALLERROR, Rejected) is tried again an
interval later, not at once.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Mapping
from functools import partial
from typing import Any

import trio

from ....link import Answer
from ...core import Block, Booted, Handler, StationCore, refused
from .profiles import Installed, epoch_s, peek_profiles

__all__ = [
    "SCHEDULE_UPDATE_FIELDS",
    "apply_schedule_update",
    "pulls_after_boot",
    "update_dynamic_schedule",
    "with_dynamic_pulls",
]

#: The fields of a ChargingScheduleUpdateType, each replacing the period's field of that name.
SCHEDULE_UPDATE_FIELDS = (
    "limit",
    "limit_L2",
    "limit_L3",
    "dischargeLimit",
    "dischargeLimit_L2",
    "dischargeLimit_L3",
    "setpoint",
    "setpoint_L2",
    "setpoint_L3",
    "setpointReactive",
    "setpointReactive_L2",
    "setpointReactive_L3",
)


class DynamicPulls:
    """A station's pull timer: whether its task runs, and how to make it look again."""

    __slots__ = ("changed", "running", "tried_s")

    def __init__(self) -> None:
        self.running = False
        self.changed = trio.Event()
        #: Simulated second of the last pull per profile id, answered or not.
        self.tried_s: dict[int, float] = {}


_PULLS: Block[DynamicPulls] = Block(
    letter="K", name="smart_charging.dynamic", new_state=DynamicPulls
)


def _dynamic(installed: Installed) -> bool:
    return installed.profile.get("chargingProfileKind") == "Dynamic"


def _find(station: StationCore, profile_id: int) -> Installed | None:
    profiles = peek_profiles(station)
    if profiles is None:
        return None
    found = profiles.matching(None, {"chargingProfileId": [profile_id]})
    return found[0] if found else None


def update_dynamic_schedule(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    """UpdateDynamicSchedule (K28): new values for a Dynamic profile's period, in force at once;
    a profile that is not installed or not Dynamic is refused (K28.FR.11)."""
    profile_id = payload["chargingProfileId"]
    installed = _find(station, profile_id)
    if installed is None:
        return refused("InvalidProfile", f"no charging profile {profile_id} is installed")
    if not _dynamic(installed):
        kind = installed.profile.get("chargingProfileKind")
        return refused(
            "InvalidProfile",
            f"charging profile {profile_id} is {kind}; only a Dynamic profile takes updates",
        )
    apply_schedule_update(station, installed, payload["scheduleUpdate"])
    return Answer({"status": "Accepted"})


def apply_schedule_update(
    station: StationCore, installed: Installed, update: Mapping[str, Any]
) -> None:
    """Put `update`'s values in the profile's period, stamp dynUpdateTime (K28.FR.09), wake the
    EVSEs the profile covers and let the pull timer count from now."""
    profile = dict(installed.profile)
    schedules = list(profile["chargingSchedule"])
    schedule = dict(schedules[0])
    periods = list(schedule["chargingSchedulePeriod"])
    period = dict(periods[0])
    for name in SCHEDULE_UPDATE_FIELDS:
        if name in update:
            period[name] = update[name]
    periods[0] = period
    schedule["chargingSchedulePeriod"] = periods
    schedules[0] = schedule
    profile["chargingSchedule"] = schedules
    profile["dynUpdateTime"] = station.clock.timestamp()
    installed.profile = profile
    profiles = peek_profiles(station)
    if profiles is not None:
        profiles.changed()
    for evse in station.evses:
        if installed.evse_id in (0, evse.id):
            evse.wake()
    _look_again(station)


# -- pulling (K28.FR.10) ------------------------------------------------------------------------


def _interval_s(installed: Installed) -> float:
    return float(installed.profile.get("dynUpdateInterval") or 0)


def _next_pull(station: StationCore, pulls: DynamicPulls) -> tuple[float, int] | None:
    """(simulated second, profile id) of the next pull due; None when no profile pulls."""
    profiles = peek_profiles(station)
    if profiles is None:
        return None
    start_epoch_s = station.clock.epoch_s(0.0)
    due: tuple[float, int] | None = None
    for installed in profiles.matching(None, {}):
        interval_s = _interval_s(installed)
        if not _dynamic(installed) or interval_s <= 0:
            continue
        updated = installed.profile.get("dynUpdateTime")
        updated_s = installed.installed_s if updated is None else epoch_s(updated) - start_epoch_s
        last_s = max(updated_s, pulls.tried_s.get(installed.id, -math.inf))
        at_s = last_s + interval_s
        if due is None or at_s < due[0]:
            due = (at_s, installed.id)
    return due


def _look_again(station: StationCore) -> None:
    """A Dynamic profile came, went or was updated: (re)start the timer, which finds the next
    pull due, or ends when there is none."""
    if station.config.ocpp_version != "2.1":
        return  # 2.0.1 has no Dynamic profiles and no PullDynamicScheduleUpdate
    pulls = station.peek_block_state(_PULLS)
    if pulls is not None and pulls.running:
        pulls.changed.set()
        return
    if _next_pull(station, pulls or DynamicPulls()) is None:
        return
    pulls = station.block_state(_PULLS)
    pulls.running = station.spawn(partial(_pull_when_due, station, pulls))


async def _pull_when_due(station: StationCore, pulls: DynamicPulls) -> None:
    try:
        while True:
            due = _next_pull(station, pulls)
            if due is None:
                return
            at_s, profile_id = due
            pulls.changed = trio.Event()
            with trio.move_on_at(station.clock.trio_deadline(at_s)):
                await pulls.changed.wait()
                continue
            pulls.tried_s[profile_id] = station.clock.sim_now()
            await _pull(station, profile_id)
    finally:
        pulls.running = False


async def _pull(station: StationCore, profile_id: int) -> None:
    answer = await station.call("PullDynamicScheduleUpdate", {"chargingProfileId": profile_id})
    if answer is None or answer.get("status") != "Accepted":
        return
    installed = _find(station, profile_id)
    if installed is None or not _dynamic(installed):
        return  # cleared while the CSMS answered
    apply_schedule_update(station, installed, answer.get("scheduleUpdate") or {})


# -- where the timer starts ---------------------------------------------------------------------


def with_dynamic_pulls(handler: Handler) -> Handler:
    """`handler` (SetChargingProfile, ClearChargingProfile), after which the pull timer looks
    again at the Dynamic profiles installed: one just set starts it, one cleared stops it."""

    def handle(station: StationCore, payload: Mapping[str, Any]) -> Answer:
        answer = handler(station, payload)
        if answer.payload.get("status") == "Accepted":
            _look_again(station)
        return answer

    return handle


def pulls_after_boot(station: StationCore, event: Booted) -> Awaitable[None] | None:
    """The timer's task ends with the station's run (a reboot); its profiles do not."""
    _look_again(station)
    return None
