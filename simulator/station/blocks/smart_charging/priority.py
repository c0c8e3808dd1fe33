"""Priority charging (K21-K22, OCPP 2.1): a transaction charges by its EVSE's PriorityCharging
profile instead of its TxProfile or TxDefaultProfile.

The CSMS switches it on or off with UsePriorityCharging (K21): Accepted when the transaction
runs here and, to switch it on, a PriorityCharging profile exists for its EVSE (else NoProfile);
an unknown transaction is Rejected.  A driver may also press the station's priority button
(K22): `StationConfig.priority_button_share` of the drivers do, `PRESS_AFTER_S` into their
transaction; where a PriorityCharging profile exists the station switches to it and tells the
CSMS with NotifyPriorityCharging.  The composite reads `ChargingProfiles.priority_evse_ids`;
whichever way it changes, the EVSE is woken and its EV follows at once.  Priority charging ends
with its transaction.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Mapping
from functools import partial
from typing import Any

from ....link import Answer
from ...core import StationCore, TransactionEnded, TransactionStarted, refused
from ...evse import Evse, Transaction
from .profiles import peek_profiles, profiles_of

__all__ = [
    "PRESS_AFTER_S",
    "end_priority_charging",
    "press_priority_button",
    "use_priority_charging",
]

#: Simulated seconds after its transaction starts that a driver who wants priority charging
#: presses the button: time to plug in and see the rate the station offers.
PRESS_AFTER_S = 120.0


def _has_priority_profile(station: StationCore, evse: Evse) -> bool:
    profiles = peek_profiles(station)
    return profiles is not None and any(
        installed.purpose == "PriorityCharging" for installed in profiles.for_evse(evse.id)
    )


def use_priority_charging(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    transaction_id = payload["transactionId"]
    evse = next(
        (
            e
            for e in station.evses
            if e.transaction is not None and e.transaction.id == transaction_id
        ),
        None,
    )
    if evse is None:
        return refused("TxNotFound", f"no transaction {transaction_id} runs on this station")
    if payload["activate"]:
        if not _has_priority_profile(station, evse):
            return refused(
                "NoProfile",
                f"EVSE {evse.id} has no PriorityCharging profile to charge by",
                status="NoProfile",
            )
        profiles_of(station).priority_evse_ids.add(evse.id)
    else:
        profiles = peek_profiles(station)
        if profiles is not None:
            profiles.priority_evse_ids.discard(evse.id)
    evse.wake()
    return Answer({"status": "Accepted"})


def _presses(station: StationCore, transaction: Transaction) -> bool:
    """Whether the driver of `transaction` is one of the share who press the button: decided
    by the transaction id, so a run is reproducible."""
    share = station.config.priority_button_share
    return zlib.crc32(transaction.id.encode()) < share * 2**32


def press_priority_button(station: StationCore, event: TransactionStarted) -> None:
    if station.config.priority_button_share <= 0 or station.config.ocpp_version != "2.1":
        return
    if _presses(station, event.transaction):
        station.spawn(partial(_press_later, station, event.evse, event.transaction))


async def _press_later(station: StationCore, evse: Evse, transaction: Transaction) -> None:
    await station.clock.sleep(PRESS_AFTER_S)
    if evse.transaction is not transaction or not _has_priority_profile(station, evse):
        return  # gone, or nothing to switch to: the button does nothing
    active = profiles_of(station).priority_evse_ids
    if evse.id in active:
        return
    active.add(evse.id)
    evse.wake()
    await station.call(
        "NotifyPriorityCharging", {"transactionId": transaction.id, "activated": True}
    )


def end_priority_charging(station: StationCore, event: TransactionEnded) -> Awaitable[None] | None:
    profiles = peek_profiles(station)
    if profiles is not None:
        profiles.priority_evse_ids.discard(event.evse.id)
    return None
