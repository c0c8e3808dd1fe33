"""Block K, smart charging: the charging profiles a station holds, and the limit they set now.

The CSMS installs profiles with SetChargingProfile (K01), or a TxProfile with the
RequestStartTransaction that begins its transaction (K05: block F checks it against
`charging_profile_refusal` before accepting, and hands it over as `TxProfileGiven` once the
transaction runs), removes them with ClearChargingProfile (K10) and reads them back with
GetChargingProfiles (K09, answered by ReportChargingProfiles) and asks what they add up to with
GetCompositeSchedule (K08: `composite`).  What matters to the EV is
`limit.active_limit(evse)`: the limit, V2X setpoint and operation mode in force at this simulated
second, and when that will next change, so the EVSE's session task can sleep until exactly
then.

An ISO 15118 EV picks one of its TxProfile's schedules (`ScheduleSelected`), which then
rules its EVSE.  Offline, a profile with a maxOfflineDuration gives way to the one below it
once that time has passed (`offline`).

The block is a package: `profiles` holds the store, `composite` merges the profiles over time
(pure computation), `limit` turns that into what it asks of an EVSE now, `handlers` answers
the CSMS, `offline` keeps the time the station went offline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from typing import Any

from ...config import StationConfig
from ...core import (
    Block,
    Booted,
    ConnectionLost,
    ExternalLimitChanged,
    Reaction,
    ScheduleSelected,
    StationCore,
    TransactionEnded,
    TransactionStarted,
    TxProfileGiven,
)
from ...device_model import VariableSpec
from .dynamic import pulls_after_boot, update_dynamic_schedule, with_dynamic_pulls
from .external import external_limit_changed, external_variables, report_after_boot
from .handlers import (
    clear_charging_profile,
    clear_transaction_profiles,
    get_charging_profiles,
    get_composite_schedule,
    install_given_profile,
    schedule_refusal,
    schedule_selected,
    set_charging_profile,
    variables,
)
from .limit import active_limit
from .offline import back_online, went_offline
from .priority import end_priority_charging, press_priority_button, use_priority_charging
from .profiles import ChargingProfiles

__all__ = ["BLOCK", "ChargingProfiles"]


def _in_turn(*reactions: Reaction) -> Reaction:
    """One reaction made of several modules' reactions to the same event, in this order."""

    def react(station: StationCore, event: Any) -> Awaitable[None] | None:
        pending = [w for w in (reaction(station, event) for reaction in reactions) if w is not None]
        if not pending:
            return None
        return _await_all(pending)

    return react


async def _await_all(pending: list[Awaitable[None]]) -> None:
    for waits in pending:
        await waits


def _all_variables(config: StationConfig) -> Iterator[VariableSpec]:
    yield from variables(config)
    yield from external_variables(config)


BLOCK: Block[ChargingProfiles] = Block(
    letter="K",
    name="smart_charging",
    handlers={
        "SetChargingProfile": with_dynamic_pulls(set_charging_profile),
        "ClearChargingProfile": with_dynamic_pulls(clear_charging_profile),
        "GetChargingProfiles": get_charging_profiles,
        "GetCompositeSchedule": get_composite_schedule,
        "UpdateDynamicSchedule": update_dynamic_schedule,
        "UsePriorityCharging": use_priority_charging,
    },
    follow_ups={"GetChargingProfiles": ("ReportChargingProfiles",)},
    variables=_all_variables,
    reactions={
        TransactionEnded: _in_turn(clear_transaction_profiles, end_priority_charging),
        TxProfileGiven: install_given_profile,
        TransactionStarted: press_priority_button,
        ExternalLimitChanged: external_limit_changed,
        ScheduleSelected: schedule_selected,
        ConnectionLost: went_offline,
        Booted: _in_turn(back_online, pulls_after_boot, report_after_boot),
    },
    new_state=ChargingProfiles,
    needs_state=True,
    charging_limit=active_limit,
    charging_profile_refusal=schedule_refusal,
)
