"""Block F, remote control: remote start and stop (F01-F04) and TriggerMessage (F06).

TriggerMessage is answered here for the EVSE it names, and produced by the block that owns the
requested message (each block's `triggers`); a message no block produces is NotImplemented.

A remote start only claims an EVSE and records the request; the EVSE's session task does the
rest -- starting the transaction, waiting for the EV to plug in -- because that task alone
drives the EVSE, so two sources can never start two sessions on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...link import Answer
from ..core import Block, StationCore, TriggerTarget, refused
from ..ev_driver import remote_visit
from ..evse import Evse, RemoteStart
from ..transaction import end_transaction

__all__ = ["BLOCK"]


def _free_for_remote_start(station: StationCore, evse: Evse) -> bool:
    return (
        station.operative
        and evse.operative
        and evse.remote_start is None
        and (evse.transaction is None or evse.transaction.id_token is None)
    )


def _reserved_for_another(evse: Evse, id_token: str, group_id_token: str | None) -> bool:
    """Whether a reservation keeps `evse` for a driver other than this request's (H03)."""
    reservations = evse.reservations
    return reservations is not None and not reservations.admits(evse, id_token, group_id_token)


def request_start_transaction(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    evse_id = payload.get("evseId")
    token = payload["idToken"]
    group = payload.get("groupIdToken")
    group_id_token = None if group is None else str(group["idToken"])
    if evse_id is not None:
        evse = station.evse(evse_id)
        if evse is None:
            return refused("UnknownEvse", f"this station has EVSEs 1..{len(station.evses)}")
        if not _free_for_remote_start(station, evse):
            return refused(
                "TxInProgress" if evse.transaction else "NotAvailable",
                f"EVSE {evse_id} cannot start a transaction now",
            )
        if _reserved_for_another(evse, token["idToken"], group_id_token):
            return refused("NotAvailable", f"EVSE {evse_id} is reserved for another driver")
    else:
        free = [
            evse
            for evse in station.evses
            if _free_for_remote_start(station, evse)
            and evse.visit is None
            and not _reserved_for_another(evse, token["idToken"], group_id_token)
        ]
        if not free:
            return refused("NotAvailable", "no EVSE of this station is free")
        evse = free[0]
    evse.remote_start = RemoteStart(
        token["idToken"], token["type"], payload["remoteStartId"], group_id_token
    )
    response: dict[str, Any] = {"status": "Accepted"}
    if evse.transaction is not None:
        response["transactionId"] = evse.transaction.id
    if evse.visit is not None:
        evse.wake()  # the EV is here: its visit task picks the remote start up
        return Answer(response)

    async def driver_comes(evse: Evse = evse) -> None:
        await remote_visit(station, evse)

    return Answer(response, then=driver_comes)


def request_stop_transaction(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    transaction_id = payload["transactionId"]
    for evse in station.evses:
        if evse.transaction is not None and evse.transaction.id == transaction_id:

            async def stop(evse: Evse = evse) -> None:
                await end_transaction(station, evse, "RemoteStop", "Remote")

            return Answer({"status": "Accepted"}, then=stop)
    return refused("TxNotFound", f"no transaction {transaction_id} on this station")


def trigger_message(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    target = payload.get("evse")
    evses = station.evses
    specific = False
    if target is not None and target.get("id", 0) != 0:
        evse = station.evse(target["id"])
        if evse is None:
            return refused("UnknownEvse", f"this station has EVSEs 1..{len(station.evses)}")
        evses = [evse]
        specific = True
    connector_id = target.get("connectorId") if target else None
    answer = station.trigger(
        payload["requestedMessage"], TriggerTarget(evses, connector_id, specific)
    )
    return Answer({"status": "NotImplemented"}) if answer is None else answer


BLOCK: Block[None] = Block(
    letter="F",
    name="remote_control",
    handlers={
        "RequestStartTransaction": request_start_transaction,
        "RequestStopTransaction": request_stop_transaction,
        "TriggerMessage": trigger_message,
    },
    follow_ups={
        "RequestStartTransaction": ("TransactionEvent",),
        "RequestStopTransaction": ("TransactionEvent",),
    },
)
