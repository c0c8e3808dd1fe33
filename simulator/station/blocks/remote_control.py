"""Block F, remote control: remote start and stop (F01-F04), unlocking a connector (F05) and
TriggerMessage (F06).

A remote start only claims an EVSE and records the request; the EVSE's visit task does the
rest -- starting the transaction, waiting for the EV to plug in -- because that task alone
drives the EVSE, so two sources can never start two sessions on it.  With
AuthCtrlr.AuthorizeRemoteStart the station first answers, then authorizes the request's IdToken
as it would a driver's (local list, cache, Authorize: F01.FR.01, F02.FR.09); a token that is
not accepted starts nothing, and the EVSE is free again.  A TxProfile in the request (K05) is
checked before the answer -- purpose TxProfile, no transactionId, a schedule block K would
install -- and handed to block K (`TxProfileGiven`) once the transaction it is for runs: at
once when the remote start takes over a transaction that waits for its driver (F01), else when
the transaction starts.

Connector locks (F05): an IEC 62196-2 socket (sType1, sType2, sType3) locks the plug in while a
transaction runs with the plug in it, and releases it when the transaction ends so the driver
can unplug; a captive cable (cCCS2, cType2, ...) has no lock at the station end, and neither do
domestic sockets.  UnlockConnector releases a lock unless an authorized transaction runs on the
connector (OngoingAuthorizedTransaction): the transaction of a driver not authorized (yet, or
any more: E05) goes on, and hears of the unlock in an Updated TransactionEvent (UnlockCommand),
ending when the EV leaves.  The lock state is the device model's
ConnectorPlugRetentionLock.Active of each socket.

TriggerMessage is answered here for the EVSE it names, and produced by the block that owns the
requested message (each block's `triggers`); a message no block produces is NotImplemented, as
is every CustomTrigger (the station knows none, F06.FR.19).  An EVSE matters only to the
messages that are about one (F06.FR.03): for the others a named EVSE, known or not, is ignored.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...link import Answer
from ..config import StationConfig
from ..core import (
    Block,
    ConnectorStatusChanged,
    IdToken,
    StationCore,
    TransactionEnded,
    TransactionStarted,
    TriggerTarget,
    TxProfileGiven,
    refused,
)
from ..device_model import VariableKey, VariableSpec
from ..ev_driver import remote_visit
from ..evse import Connector, Evse, RemoteStart, Transaction
from ..transaction import end_transaction, update_transaction

__all__ = ["BLOCK", "RemoteControlState"]

#: Connector types whose socket has a plug retention lock: the IEC 62196-2 sockets.
_LOCKING_SOCKETS = frozenset({"sType1", "sType2", "sType3"})
#: The messages TriggerMessage may ask about one EVSE; the others ignore a named EVSE.
_ABOUT_AN_EVSE = frozenset({"MeterValues", "StatusNotification", "TransactionEvent"})
_SMART_CHARGING_ENABLED: VariableKey = ("SmartChargingCtrlr", None, None, None, "Enabled", None)


@dataclass(slots=True)
class RemoteControlState:
    """Per station, made by the first remote start that needs it: the EVSEs whose remote start
    waits for its IdToken's authorization, and the remote starts whose TxProfile waits for
    their transaction, by EVSE id."""

    authorizing: set[int] = field(default_factory=set)
    profiles: dict[int, RemoteStart] = field(default_factory=dict)


def _authorizing(station: StationCore, evse: Evse) -> bool:
    state = station.peek_block_state(BLOCK)
    return state is not None and evse.id in state.authorizing


def _authorized(transaction: Transaction) -> bool:
    """Whether a driver is authorized in `transaction`: it has an IdToken the CSMS has not
    deauthorized (E05 leaves a deauthorized transaction running with an energy cap)."""
    return transaction.id_token is not None and transaction.energy_cap_wh is None


# -- remote start (F01, F02, K05) -------------------------------------------------------------


def _free_for_remote_start(station: StationCore, evse: Evse) -> bool:
    """Whether `evse` can take a remote start: in service, with a connector in service (an
    EVSE whose connectors are all Inoperative has nowhere to charge), and not claimed."""
    return (
        station.operative
        and evse.operative
        and any(connector.operative for connector in evse.connectors)
        and evse.remote_start is None
        and (evse.transaction is None or evse.transaction.id_token is None)
        and not _authorizing(station, evse)
    )


def _reserved_for_another(evse: Evse, id_token: str, group_id_token: str | None) -> bool:
    """Whether a reservation keeps `evse` for a driver other than this request's (H03)."""
    reservations = evse.reservations
    return reservations is not None and not reservations.admits(evse, id_token, group_id_token)


def _smart_charging(station: StationCore) -> bool:
    """Whether the station does smart charging (SmartChargingCtrlr.Enabled); without it a
    remote start's profile is ignored (K05.FR.04)."""
    model = station.device_model
    return model.spec.find(_SMART_CHARGING_ENABLED) is not None and model.boolean(
        "SmartChargingCtrlr", "Enabled"
    )


def _profile_refusal(station: StationCore, profile: Mapping[str, Any]) -> Answer | None:
    """Why a remote start's charging profile is not one to charge under (F01.FR.09, F01.FR.11,
    F01.FR.26), or None."""
    purpose = profile["chargingProfilePurpose"]
    if purpose != "TxProfile":
        return refused(
            "InvalidProfile",
            f"the profile of a remote start must be a TxProfile, not a {purpose}; "
            "install other profiles with SetChargingProfile",
        )
    if "transactionId" in profile:
        return refused(
            "InvalidProfile",
            "the TxProfile of a remote start must have no transactionId: its transaction "
            "does not exist yet",
        )
    return station.charging_profile_refusal(profile)


def request_start_transaction(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    evse_id = payload.get("evseId")
    token = payload["idToken"]
    group = payload.get("groupIdToken")
    group_id_token = None if group is None else str(group["idToken"])
    profile = payload.get("chargingProfile")
    if profile is not None:
        if not _smart_charging(station):
            profile = None
        else:
            refusal = _profile_refusal(station, profile)
            if refusal is not None:
                return refusal
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
    remote = RemoteStart(
        token["idToken"], token["type"], payload["remoteStartId"], group_id_token, profile
    )
    response: dict[str, Any] = {"status": "Accepted"}
    if evse.transaction is not None:
        response["transactionId"] = evse.transaction.id
    authorize_first = station.device_model.boolean("AuthCtrlr", "AuthorizeRemoteStart")
    if evse.visit is None:
        evse.remote_start = remote  # claims the EVSE for the driver on the way

        async def driver_comes(evse: Evse = evse) -> None:
            if authorize_first and not await station.authorize(token):
                if evse.remote_start is remote:
                    evse.remote_start = None  # refused: no transaction, the EVSE is free
                return
            if evse.remote_start is not remote:
                return
            if profile is not None:
                station.block_state(BLOCK).profiles[evse.id] = remote
            await remote_visit(station, evse)

        return Answer(response, then=driver_comes)

    # The EV is here: its visit task takes the remote start over (F01).
    if not authorize_first:
        taken = _hand_over(station, evse, remote)
        if taken is None or profile is None:
            return Answer(response)

        async def give_profile(evse: Evse = evse, taken: Transaction = taken) -> None:
            assert profile is not None
            await station.emit(TxProfileGiven(evse, taken, profile))

        return Answer(response, then=give_profile)

    state = station.block_state(BLOCK)
    state.authorizing.add(evse.id)

    async def authorize_then_hand_over(evse: Evse = evse) -> None:
        try:
            authorized = await station.authorize(token)
        finally:
            state.authorizing.discard(evse.id)
        if not authorized or evse.visit is None or evse.remote_start is not None:
            return  # refused, or the EV left meanwhile: nothing starts
        waiting = evse.transaction
        if waiting is not None and waiting.id_token is not None:
            return  # the driver at the EVSE was authorized meanwhile
        taken = _hand_over(station, evse, remote)
        if taken is not None and profile is not None:
            await station.emit(TxProfileGiven(evse, taken, profile))

    return Answer(response, then=authorize_then_hand_over)


def _hand_over(station: StationCore, evse: Evse, remote: RemoteStart) -> Transaction | None:
    """Give `remote` to the visit task of the EV at `evse`; returns the transaction it takes
    over, if one waits for its driver (whose TxProfile the caller then hands to block K)."""
    taken = evse.transaction
    if taken is None and remote.charging_profile is not None:
        station.block_state(BLOCK).profiles[evse.id] = remote
    evse.remote_start = remote
    evse.wake()
    return taken


def _is_remote_starts(transaction: Transaction, remote: RemoteStart) -> bool:
    """Whether `transaction` is the one `remote` began: it carries its remoteStartId or, when
    it started at plug-in, its IdToken."""
    if transaction.remote_start_id is not None:
        return transaction.remote_start_id == remote.remote_start_id
    token: IdToken | None = transaction.id_token
    return token is not None and token.get("idToken") == remote.id_token


def request_stop_transaction(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    transaction_id = payload["transactionId"]
    for evse in station.evses:
        if evse.transaction is not None and evse.transaction.id == transaction_id:

            async def stop(evse: Evse = evse) -> None:
                await end_transaction(station, evse, "RemoteStop", "Remote")

            return Answer({"status": "Accepted"}, then=stop)
    return refused("TxNotFound", f"no transaction {transaction_id} on this station")


# -- connector locks (F05) ----------------------------------------------------------------------


def _has_lock(connector: Connector) -> bool:
    return connector.type in _LOCKING_SOCKETS


@functools.cache
def _station_has_locks(config: StationConfig) -> bool:
    """Whether any connector of this station model locks a plug (most have captive cables)."""
    return any(kind in _LOCKING_SOCKETS for evse in config.evses for kind in evse.connector_types)


def unlock_connector(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    evse_id, connector_id = payload["evseId"], payload["connectorId"]
    evse = station.evse(evse_id)
    connector = evse.connector(connector_id) if evse is not None else None
    if evse is None or connector is None:
        return refused(
            "UnknownConnectorId",
            f"this station has no connector {connector_id} on EVSE {evse_id}",
            status="UnknownConnector",
        )
    transaction = evse.transaction
    on_connector = transaction is not None and transaction.connector_id == connector_id
    if transaction is not None and on_connector and _authorized(transaction):
        return refused(
            "TxInProgress",
            f"transaction {transaction.id} of an authorized driver runs on this connector; "
            "stop it first (RequestStopTransaction), the lock then releases by itself",
            status="OngoingAuthorizedTransaction",
        )
    if not _has_lock(connector):
        if connector.type.startswith("c"):
            return refused(
                "FixedCable",
                f"connector {connector_id} is a captive {connector.type} cable: it has no plug "
                "lock at the station to release",
                status="UnlockFailed",
            )
        return refused(
            "UnsupportedRequest",
            f"a {connector.type} socket has no plug retention lock to release",
            status="UnlockFailed",
        )
    connector.locked = False
    if evse.plugged_connector != connector_id:
        # F05.FR.06: tried without a cable; the lock is open.
        return Answer(
            {
                "status": "Unlocked",
                "statusInfo": {"reasonCode": "NoCable", "additionalInfo": "no plug was in"},
            }
        )
    if transaction is None or not on_connector:
        return Answer({"status": "Unlocked"})

    async def tell(evse: Evse = evse, transaction: Transaction = transaction) -> None:
        if evse.transaction is transaction:
            await update_transaction(station, evse, "UnlockCommand")

    return Answer({"status": "Unlocked"}, then=tell)


def _transaction_started(station: StationCore, event: TransactionStarted) -> Awaitable[None] | None:
    """Lock the plug of a transaction that starts with it in; hand a remote start's TxProfile
    to block K (K05)."""
    evse = event.evse
    plugged = evse.plugged_connector
    if plugged is not None and _station_has_locks(station.config):
        connector = evse.connector(plugged)
        if connector is not None and _has_lock(connector):
            connector.locked = True
    state = station.peek_block_state(BLOCK)
    if state is None:
        return None
    remote = state.profiles.pop(evse.id, None)
    if remote is None or remote.charging_profile is None:
        return None
    if _is_remote_starts(event.transaction, remote):
        return station.emit(TxProfileGiven(evse, event.transaction, remote.charging_profile))
    return None


def _connectors_changed(station: StationCore, event: ConnectorStatusChanged) -> None:
    """A plug went in or out: a socket without a plug is open; the plug of an authorized
    transaction is held (one that arrives after its transaction began)."""
    if not _station_has_locks(station.config):
        return
    for evse in station.evses:
        plugged = evse.plugged_connector
        transaction = evse.transaction
        for connector in evse.connectors:
            if not _has_lock(connector):
                continue
            if connector.id != plugged:
                connector.locked = False
            elif transaction is not None and _authorized(transaction):
                connector.locked = True


def _transaction_ended(station: StationCore, event: TransactionEnded) -> None:
    """The transaction is over: release its plug so the driver can take the cable."""
    connector = event.evse.connector(event.transaction.connector_id)
    if connector is not None:
        connector.locked = False


def _lock_active(evse_id: int, connector_id: int, station: Any) -> str:
    locked = station.evses[evse_id - 1].connectors[connector_id - 1].locked
    return "true" if locked else "false"


def _variables(config: StationConfig) -> Iterator[VariableSpec]:
    """ConnectorPlugRetentionLock.Active of every socket with a lock: whether it holds the plug."""
    for evse_id, evse in enumerate(config.evses, start=1):
        for connector_id, kind in enumerate(evse.connector_types, start=1):
            if kind in _LOCKING_SOCKETS:
                yield VariableSpec(
                    "ConnectorPlugRetentionLock",
                    "Active",
                    "boolean",
                    "false",
                    "ReadOnly",
                    evse_id=evse_id,
                    connector_id=connector_id,
                    reader=functools.partial(_lock_active, evse_id, connector_id),
                )


# -- TriggerMessage (F06) -----------------------------------------------------------------------


def trigger_message(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    requested = payload["requestedMessage"]
    if requested == "CustomTrigger":
        name = payload.get("customTrigger", "")
        return refused(
            "UnsupportedRequest",
            f"this station knows no custom trigger (asked for {name!r})",
            status="NotImplemented",
        )
    target = payload.get("evse")
    evses = station.evses
    specific = False
    connector_id = None
    if target is not None and target.get("id", 0) != 0 and requested in _ABOUT_AN_EVSE:
        evse = station.evse(target["id"])
        if evse is None:
            return refused("UnknownEvse", f"this station has EVSEs 1..{len(station.evses)}")
        connector_id = target.get("connectorId")
        if (
            requested == "StatusNotification"
            and connector_id is not None
            and evse.connector(connector_id) is None
        ):
            return refused(
                "UnknownConnectorId",
                f"EVSE {evse.id} has connectors 1..{len(evse.connectors)}",
            )
        evses = [evse]
        specific = True
    answer = station.trigger(requested, TriggerTarget(evses, connector_id, specific))
    if answer is None:
        return refused(
            "UnsupportedRequest",
            f"this station does not send {requested} on request",
            status="NotImplemented",
        )
    return answer


BLOCK: Block[RemoteControlState] = Block(
    letter="F",
    name="remote_control",
    handlers={
        "RequestStartTransaction": request_start_transaction,
        "RequestStopTransaction": request_stop_transaction,
        "TriggerMessage": trigger_message,
        "UnlockConnector": unlock_connector,
    },
    follow_ups={
        "RequestStartTransaction": ("TransactionEvent",),
        "RequestStopTransaction": ("TransactionEvent",),
    },
    variables=_variables,
    reactions={
        TransactionStarted: _transaction_started,
        ConnectorStatusChanged: _connectors_changed,
        TransactionEnded: _transaction_ended,
    },
    new_state=RemoteControlState,
)
