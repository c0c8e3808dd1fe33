"""Conformance: every CSMS-initiated action of blocks C, D, E, F, G, H and O, in each state of
the station that changes its answer, on a running station of each OCPP version.

One row per (action, state): how to bring the station there, the request, the status the
specification names for that state, the messages that must follow, and a check of the state
that follows, read back over OCPP where the protocol can tell (GetVariables,
GetLocalListVersion, GetDisplayMessages, GetTransactionStatus, the connector status the CSMS
heard).  The answer validates against the version's schema because the CSMS's link checks it:
an invalid answer fails the call as a CALLERROR.  A row without follow-ups says the station
sends nothing: a refusal, or an action whose effect is only state; the test waits past
`QUIET_S` of simulated time and fails on anything but the station's own periodic messages.

A row runs against 2.1 and 2.0.1 unless it uses what only 2.1 has.  Blocks that add actions add
rows to `ROWS`; the steps that prepare a state live in `tests/station/steps.py`, shared with the
per-block contract test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from simulator.csms import Csms, CsmsConfig
from simulator.ocpp import OcppVersion
from simulator.station import Station
from tests.helpers import STATION_ID, station_on_memory_link
from tests.station.steps import (
    DISPLAY_MESSAGE,
    ID_TOKEN,
    OTHER_TOKEN,
    REMOTE_DRIVERS,
    RESERVATION,
    Payload,
    arrives,
    cache_enabled,
    connector_status,
    displayed_message,
    get_variable,
    local_list,
    messages_now,
    out_of_service,
    reserved,
    running_transaction,
    set_variable,
    stopped_transaction,
)

BOTH: tuple[OcppVersion, ...] = ("2.1", "2.0.1")
ONLY_21: tuple[OcppVersion, ...] = ("2.1",)
#: EVSE 1 has a Type 2 socket, whose lock holds a plug; EVSE 2 a captive Type 2 cable.
STATION: dict[str, Any] = {
    **REMOTE_DRIVERS,
    "stations": {"count": 1, "evses": [{"connectors": ["sType2"]}, {}]},
}
#: Simulated seconds within which the follow-ups of an answer must arrive (the remote start's
#: driver plugs in after 60 s).
FOLLOW_UP_WITHIN_S = 120
#: Simulated seconds a row without follow-ups waits for anything the station might wrongly send.
QUIET_S = 90
#: Simulated start is 12:00 UTC.
IN_FIVE_MINUTES = "2026-01-15T12:05:00Z"
AN_HOUR_AGO = "2026-01-15T11:00:00Z"

Prepare = Callable[[Station, Csms], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Expect:
    """A message that must arrive after the answer."""

    action: str
    what: str
    predicate: Callable[[Payload], bool] = lambda payload: True


@dataclass(frozen=True)
class Outcome:
    """What a state check may look at: the station, the CSMS, the request and its answer, and
    how many messages had arrived before the request."""

    station: Station
    csms: Csms
    request: Mapping[str, Any]
    answer: Payload
    since: int


StateCheck = Callable[[Outcome], Awaitable[None]]


@dataclass(frozen=True)
class Row:
    """One action in one state of the station, and what the specification says follows."""

    action: str
    state: str
    prepare: Prepare
    #: The answer's status (per version where they differ); None for answers without one.
    status: str | Mapping[str, str] | None
    #: The statusInfo.reasonCode the refusal names.
    reason: str | None = None
    #: Fields the answer must have, with these values.
    answer: Mapping[str, Any] = field(default_factory=dict)
    follow_ups: tuple[Expect, ...] = ()
    #: Messages that must not come within QUIET_S, even when others follow.
    never: tuple[str, ...] = ()
    then: StateCheck | None = None
    versions: tuple[OcppVersion, ...] = BOTH
    csms_config: CsmsConfig | None = None
    within_s: float = FOLLOW_UP_WITHIN_S

    def expected_status(self, version: OcppVersion) -> str | None:
        if self.status is None or isinstance(self.status, str):
            return self.status
        return self.status[version]


# -- building rows ------------------------------------------------------------------------------


def request(payload: Mapping[str, Any]) -> Prepare:
    """No preparation: a station just booted, all EVSEs free."""

    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        return dict(payload)

    return prepare


def after(step: Callable[[Csms], Awaitable[Any]], payload: Mapping[str, Any]) -> Prepare:
    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        await step(csms)
        return dict(payload)

    return prepare


def with_transaction(build: Callable[[str], Mapping[str, Any]]) -> Prepare:
    """A transaction charging on EVSE 1; the request made from its id."""

    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        return dict(build(await running_transaction(csms, charging=True)))

    return prepare


def after_ended_transaction(build: Callable[[str], Mapping[str, Any]]) -> Prepare:
    """A transaction that ran on EVSE 1 and was stopped; the request made from its id."""

    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        transaction_id = await running_transaction(csms)
        await stopped_transaction(csms, transaction_id)
        return dict(build(transaction_id))

    return prepare


def status_of(evse_id: int, status: str) -> Expect:
    return Expect(
        "StatusNotification", f"EVSE {evse_id} {status}", connector_status(evse_id, status)
    )


def tx_event(event_type: str, trigger_reason: str, **fields: Any) -> Expect:
    """A TransactionEvent of this type and triggerReason whose fields (or transactionInfo's)
    have these values."""

    def matches(payload: Payload) -> bool:
        info = payload["transactionInfo"]
        return (
            payload["eventType"] == event_type
            and payload["triggerReason"] == trigger_reason
            and all(payload.get(key, info.get(key)) == value for key, value in fields.items())
        )

    return Expect("TransactionEvent", f"{event_type} {trigger_reason} {fields}", matches)


def reservation_update(reservation_id: int, status: str) -> Expect:
    return Expect(
        "ReservationStatusUpdate",
        f"reservation {reservation_id} {status}",
        lambda p: p == {"reservationId": reservation_id, "reservationUpdateStatus": status},
    )


def display_list(request_id: int, *message_ids: int) -> Expect:
    return Expect(
        "NotifyDisplayMessages",
        f"request {request_id} lists {message_ids}",
        lambda p: (
            p["requestId"] == request_id
            and [info["id"] for info in p["messageInfo"]] == list(message_ids)
        ),
    )


def message(message_id: int, **fields: Any) -> dict[str, Any]:
    return {**DISPLAY_MESSAGE, "id": message_id, **fields}


def content(text: str, format_: str = "UTF8", language: str = "en") -> dict[str, str]:
    return {"format": format_, "language": language, "content": text}


# -- reading the state back over OCPP ----------------------------------------------------------


async def listed_messages(csms: Csms, request_id: int = 90, **criteria: Any) -> list[Payload]:
    """The MessageInfo of the messages GetDisplayMessages lists; [] when the answer is Unknown."""
    since = messages_now(csms)
    answer = await csms.call(
        STATION_ID, "GetDisplayMessages", {"requestId": request_id, **criteria}
    )
    if answer["status"] == "Unknown":
        return []
    assert answer["status"] == "Accepted", answer
    report = await arrives(
        csms, "NotifyDisplayMessages", lambda p: p["requestId"] == request_id, since=since
    )
    assert not report.get("tbc", False)
    return list(report["messageInfo"])


async def list_version(csms: Csms) -> int:
    return int((await csms.call(STATION_ID, "GetLocalListVersion", {}))["versionNumber"])


async def nothing_more(csms: Csms, since: int, *actions: str) -> None:
    """Wait QUIET_S of simulated time; none of `actions` may have come since `since`."""
    await trio.sleep(QUIET_S)
    sent = [m for m in csms.station(STATION_ID).messages_since(since) if m.action in actions]
    assert not sent, f"unexpected: {sent}"


def heard(csms: Csms, evse_id: int) -> str | None:
    """The status of EVSE `evse_id`'s connector as the CSMS last heard it."""
    return csms.station(STATION_ID).connectors.get((evse_id, 1))


def evse_heard(evse_id: int, status: str) -> StateCheck:
    async def check(outcome: Outcome) -> None:
        assert heard(outcome.csms, evse_id) == status

    return check


def version_and_entries(version: int, entries: int) -> StateCheck:
    async def check(outcome: Outcome) -> None:
        csms = outcome.csms
        assert await list_version(csms) == version
        assert await get_variable(csms, "LocalAuthListCtrlr", "Entries") == str(entries)

    return check


def lock_is(active: str) -> StateCheck:
    async def check(outcome: Outcome) -> None:
        lock = await get_variable(
            outcome.csms, "ConnectorPlugRetentionLock", "Active", {"id": 1, "connectorId": 1}
        )
        assert lock == active

    return check


def messages_listed(*message_ids: int) -> StateCheck:
    async def check(outcome: Outcome) -> None:
        listed = await listed_messages(outcome.csms)
        assert [info["id"] for info in listed] == list(message_ids)

    return check


async def not_ongoing(outcome: Outcome) -> None:
    answer = await outcome.csms.call(
        STATION_ID, "GetTransactionStatus", {"transactionId": outcome.request["transactionId"]}
    )
    assert answer == {"ongoingIndicator": False, "messagesInQueue": False}


# -- preparing the states the rows need -------------------------------------------------------


async def cached_token(station: Station, csms: Csms) -> dict[str, Any]:
    """A cache holding the answer to a driver's Authorize."""
    await cache_enabled(csms)
    assert await station.authorize(ID_TOKEN) is True
    assert await get_variable(csms, "AuthCacheCtrlr", "Storage") != "0"
    return {}


async def cache_emptied(outcome: Outcome) -> None:
    assert await get_variable(outcome.csms, "AuthCacheCtrlr", "Storage") == "0"


async def list_disabled(csms: Csms) -> None:
    await local_list(csms, 3, ID_TOKEN)
    await set_variable(csms, "LocalAuthListCtrlr", "Enabled", "false")


def full_list(version: int, *tokens: Mapping[str, str]) -> dict[str, Any]:
    return {
        "versionNumber": version,
        "updateType": "Full",
        "localAuthorizationList": [
            {"idToken": token, "idTokenInfo": {"status": "Accepted"}} for token in tokens
        ],
    }


def differential(version: int, *entries: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "versionNumber": version,
        "updateType": "Differential",
        "localAuthorizationList": list(entries),
    }


def listing(version: int, *tokens: Mapping[str, str]) -> Callable[[Csms], Awaitable[None]]:
    async def step(csms: Csms) -> None:
        await local_list(csms, version, *tokens)

    return step


async def authorize_remote_start(csms: Csms) -> None:
    await set_variable(csms, "AuthCtrlr", "AuthorizeRemoteStart", "true")


async def no_transaction_since(outcome: Outcome) -> None:
    await nothing_more(outcome.csms, outcome.since, "TransactionEvent")
    assert heard(outcome.csms, 1) == "Available"


async def reserved_for_other(csms: Csms) -> None:
    await reserved(csms, idToken=OTHER_TOKEN)


async def transaction_on_evse_1(csms: Csms) -> None:
    await running_transaction(csms, charging=True)


async def out_of_service_1(csms: Csms) -> None:
    await out_of_service(csms, 1)


async def connector_1_out_of_service(csms: Csms) -> None:
    since = messages_now(csms)
    answer = await csms.call(
        STATION_ID,
        "ChangeAvailability",
        {"operationalStatus": "Inoperative", "evse": {"id": 1, "connectorId": 1}},
    )
    assert answer["status"] == "Accepted", answer
    await arrives(csms, "StatusNotification", connector_status(1, "Unavailable"), since=since)


async def station_out_of_service(csms: Csms) -> None:
    since = messages_now(csms)
    answer = await csms.call(STATION_ID, "ChangeAvailability", {"operationalStatus": "Inoperative"})
    assert answer["status"] == "Accepted", answer
    await arrives(csms, "StatusNotification", connector_status(2, "Unavailable"), since=since)


async def deauthorized_transaction(station: Station, csms: Csms) -> dict[str, Any]:
    """E05 without StopTxOnInvalidId: the CSMS deauthorized the driver's token, the
    transaction goes on with no energy and the plug in the socket."""
    await set_variable(csms, "TxCtrlr", "StopTxOnInvalidId", "false")
    since = messages_now(csms)
    transaction_id = await running_transaction(csms)
    await arrives(
        csms,
        "TransactionEvent",
        lambda p: p["transactionInfo"].get("chargingState") == "SuspendedEVSE",
        since=since,
    )
    assert station.evses[0].transaction is not None
    assert station.evses[0].transaction.id == transaction_id
    return {"evseId": 1, "connectorId": 1}


async def scheduled_until_stopped(outcome: Outcome) -> None:
    """A Scheduled Inoperative applies when the transaction ends: EVSE 1 can be reserved
    until then, not after (its connector shows Occupied while the EV stays plugged in)."""
    csms = outcome.csms
    assert heard(csms, 1) == "Occupied"
    transaction = outcome.station.evses[0].transaction
    assert transaction is not None
    await stopped_transaction(csms, transaction.id)
    answer = await csms.call(STATION_ID, "ReserveNow", reservation(idToken=OTHER_TOKEN))
    assert answer["status"] == "Unavailable", answer


async def other_evse_kept(outcome: Outcome) -> None:
    """A reservation for any EVSE keeps the last free one: a driver taking EVSE 1 leaves
    EVSE 2 Reserved, and another driver cannot have it."""
    csms = outcome.csms
    since = messages_now(csms)
    await running_transaction(csms, id_token=OTHER_TOKEN, evse_id=1)
    await arrives(csms, "StatusNotification", connector_status(2, "Reserved"), since=since)
    answer = await csms.call(
        STATION_ID,
        "RequestStartTransaction",
        {"remoteStartId": 42, "idToken": {"idToken": "THIRD", "type": "ISO14443"}, "evseId": 2},
    )
    assert answer["status"] == "Rejected", answer


async def other_driver_refused(outcome: Outcome) -> None:
    answer = await outcome.csms.call(
        STATION_ID,
        "RequestStartTransaction",
        {"remoteStartId": 43, "idToken": OTHER_TOKEN, "evseId": 1},
    )
    assert answer["status"] == "Rejected", answer
    assert heard(outcome.csms, 1) == "Reserved"


async def no_status_update(outcome: Outcome) -> None:
    await nothing_more(outcome.csms, outcome.since, "ReservationStatusUpdate")


async def expired_reservation(csms: Csms) -> None:
    since = messages_now(csms)
    await reserved(csms, expiryDateTime=IN_FIVE_MINUTES)
    await arrives(csms, "ReservationStatusUpdate", since=since)
    await arrives(csms, "StatusNotification", connector_status(1, "Available"), since=since)


async def two_messages(csms: Csms) -> None:
    await displayed_message(csms)
    await displayed_message(csms, message(8, priority="InFront"))


async def message_for_transaction(station: Station, csms: Csms) -> dict[str, Any]:
    transaction_id = await running_transaction(csms, charging=True)
    return {"message": message(9, transactionId=transaction_id)}


async def gone_with_its_transaction(outcome: Outcome) -> None:
    csms = outcome.csms
    assert [info["id"] for info in await listed_messages(csms)] == [9]
    await stopped_transaction(csms, outcome.request["message"]["transactionId"])
    assert await listed_messages(csms) == []


async def display_disabled(csms: Csms) -> None:
    await set_variable(csms, "DisplayMessageCtrlr", "Enabled", "false")


async def reservations_disabled(csms: Csms) -> None:
    await set_variable(csms, "ReservationCtrlr", "Enabled", "false")


def replaced_content(text: str) -> StateCheck:
    async def check(outcome: Outcome) -> None:
        [info] = await listed_messages(outcome.csms)
        assert info["message"]["content"] == text

    return check


def reservation(**fields: Any) -> dict[str, Any]:
    return {**RESERVATION, **fields}


REMOTE_START = {"remoteStartId": 11, "idToken": ID_TOKEN, "evseId": 1}


def started_by_remote(evse_id: int = 1, **fields: Any) -> Expect:
    return tx_event(
        "Started",
        "RemoteStart",
        remoteStartId=11,
        idToken=ID_TOKEN,
        evse={"id": evse_id, "connectorId": 1},
        **fields,
    )


# -- the table ---------------------------------------------------------------------------------

ROWS: list[Row] = [
    # C: ClearCache (C11)
    Row("ClearCache", "cache holds a token", cached_token, "Accepted", then=cache_emptied),
    Row("ClearCache", "cache disabled", request({}), "Rejected", reason="NotEnabled"),
    # D: SendLocalList (D01), GetLocalListVersion (D02)
    Row(
        "SendLocalList",
        "no list",
        request(full_list(1, ID_TOKEN)),
        "Accepted",
        then=version_and_entries(1, 1),
    ),
    Row(
        "SendLocalList",
        "list v1, a differential adds",
        after(
            listing(1, ID_TOKEN),
            differential(2, {"idToken": OTHER_TOKEN, "idTokenInfo": {"status": "Blocked"}}),
        ),
        "Accepted",
        then=version_and_entries(2, 2),
    ),
    Row(
        "SendLocalList",
        "list v1, a differential removes",
        after(listing(1, ID_TOKEN), differential(2, {"idToken": ID_TOKEN})),
        "Accepted",
        then=version_and_entries(2, 0),
    ),
    Row(
        "SendLocalList",
        "list v2, a differential not newer",
        after(listing(2, ID_TOKEN), differential(2, {"idToken": OTHER_TOKEN})),
        "VersionMismatch",
        then=version_and_entries(2, 1),
    ),
    Row(
        "SendLocalList",
        "list v2, a full list of an older version",
        after(listing(2, ID_TOKEN), full_list(1, ID_TOKEN, OTHER_TOKEN)),
        "Accepted",
        then=version_and_entries(1, 2),
    ),
    Row(
        "SendLocalList",
        "no list, a token twice",
        request(full_list(1, ID_TOKEN, ID_TOKEN)),
        "Failed",
        reason="InvalidValue",
        then=version_and_entries(0, 0),
    ),
    Row(
        "SendLocalList",
        "no list, version 0",
        request(full_list(0, ID_TOKEN)),
        "Failed",
        reason="InvalidValue",
        then=version_and_entries(0, 0),
    ),
    Row(
        "SendLocalList",
        "list disabled",
        after(list_disabled, full_list(4, ID_TOKEN)),
        "Failed",
        reason="NotEnabled",
    ),
    Row("GetLocalListVersion", "no list", request({}), None, answer={"versionNumber": 0}),
    Row(
        "GetLocalListVersion",
        "list v3",
        after(listing(3, ID_TOKEN), {}),
        None,
        answer={"versionNumber": 3},
    ),
    Row(
        "GetLocalListVersion",
        "list disabled",
        after(list_disabled, {}),
        None,
        answer={"versionNumber": 0},
    ),
    # E: GetTransactionStatus (E14)
    Row(
        "GetTransactionStatus",
        "no transaction",
        request({}),
        None,
        answer={"messagesInQueue": False},
    ),
    Row(
        "GetTransactionStatus",
        "transaction running",
        with_transaction(lambda tx: {"transactionId": tx}),
        None,
        answer={"ongoingIndicator": True, "messagesInQueue": False},
    ),
    Row(
        "GetTransactionStatus",
        "transaction ended",
        after_ended_transaction(lambda tx: {"transactionId": tx}),
        None,
        answer={"ongoingIndicator": False, "messagesInQueue": False},
    ),
    Row(
        "GetTransactionStatus",
        "unknown transaction",
        request({"transactionId": "NO-SUCH-TX"}),
        None,
        answer={"ongoingIndicator": False, "messagesInQueue": False},
    ),
    # F: RequestStartTransaction (F01, F02), RequestStopTransaction (F03)
    Row(
        "RequestStartTransaction",
        "EVSE free",
        request(REMOTE_START),
        "Accepted",
        follow_ups=(started_by_remote(), status_of(1, "Occupied")),
        then=evse_heard(1, "Occupied"),
    ),
    Row(
        "RequestStartTransaction",
        "no EVSE named, both free",
        request({"remoteStartId": 11, "idToken": ID_TOKEN}),
        "Accepted",
        follow_ups=(started_by_remote(1), status_of(1, "Occupied")),
    ),
    Row(
        "RequestStartTransaction",
        "EVSE reserved for this driver",
        after(reserved, REMOTE_START),
        "Accepted",
        follow_ups=(started_by_remote(reservationId=7), status_of(1, "Occupied")),
        never=("ReservationStatusUpdate",),
    ),
    Row(
        "RequestStartTransaction",
        "EVSE runs a transaction",
        after(transaction_on_evse_1, REMOTE_START),
        "Rejected",
        reason="TxInProgress",
    ),
    Row(
        "RequestStartTransaction",
        "EVSE unknown",
        request({**REMOTE_START, "evseId": 9}),
        "Rejected",
        reason="UnknownEvse",
    ),
    Row(
        "RequestStartTransaction",
        "EVSE inoperative",
        after(out_of_service_1, REMOTE_START),
        "Rejected",
        reason="NotAvailable",
    ),
    Row(
        "RequestStartTransaction",
        "the EVSE's one connector inoperative",
        after(connector_1_out_of_service, REMOTE_START),
        "Rejected",
        reason="NotAvailable",
    ),
    Row(
        "RequestStartTransaction",
        "EVSE reserved for another driver",
        after(reserved_for_other, REMOTE_START),
        "Rejected",
        reason="NotAvailable",
    ),
    Row(
        "RequestStartTransaction",
        "CSMS deauthorizes the token",
        request(REMOTE_START),
        "Accepted",
        follow_ups=(
            started_by_remote(),
            tx_event("Ended", "Deauthorized", stoppedReason="DeAuthorized"),
        ),
        csms_config=CsmsConfig(deauthorize_share=1.0),
    ),
    Row(
        "RequestStartTransaction",
        "AuthorizeRemoteStart, token refused",
        after(authorize_remote_start, REMOTE_START),
        "Accepted",
        follow_ups=(Expect("Authorize", "the token", lambda p: p["idToken"] == ID_TOKEN),),
        then=no_transaction_since,
        csms_config=CsmsConfig(accepted_id_tokens=("SOMEONE-ELSE",)),
    ),
    Row(
        "RequestStopTransaction",
        "transaction running",
        with_transaction(lambda tx: {"transactionId": tx}),
        "Accepted",
        follow_ups=(tx_event("Ended", "RemoteStop", stoppedReason="Remote"),),
        then=not_ongoing,
    ),
    Row(
        "RequestStopTransaction",
        "transaction ended",
        after_ended_transaction(lambda tx: {"transactionId": tx}),
        "Rejected",
        reason="TxNotFound",
    ),
    Row(
        "RequestStopTransaction",
        "unknown transaction",
        request({"transactionId": "NO-SUCH-TX"}),
        "Rejected",
        reason="TxNotFound",
    ),
    # F: TriggerMessage (F06), the states that change its answer
    Row(
        "TriggerMessage",
        "transaction running",
        with_transaction(lambda tx: {"requestedMessage": "TransactionEvent", "evse": {"id": 1}}),
        "Accepted",
        follow_ups=(tx_event("Updated", "Trigger", chargingState="Charging"),),
    ),
    Row(
        "TriggerMessage",
        "no transaction",
        request({"requestedMessage": "TransactionEvent"}),
        "Rejected",
        reason="TxNotFound",
    ),
    Row(
        "TriggerMessage",
        "EVSE 1 reserved",
        after(reserved, {"requestedMessage": "StatusNotification", "evse": {"id": 1}}),
        "Accepted",
        follow_ups=(status_of(1, "Reserved"),),
    ),
    Row(
        "TriggerMessage",
        "EVSE unknown",
        request({"requestedMessage": "StatusNotification", "evse": {"id": 9}}),
        "Rejected",
        reason="UnknownEvse",
    ),
    Row(
        "TriggerMessage",
        "meter values of EVSE 2",
        request({"requestedMessage": "MeterValues", "evse": {"id": 2}}),
        "Accepted",
        follow_ups=(Expect("MeterValues", "EVSE 2", lambda p: p["evseId"] == 2),),
    ),
    Row(
        "TriggerMessage",
        "station accepted",
        request({"requestedMessage": "BootNotification"}),
        "Rejected",
        reason="NotEnabled",
    ),
    Row(
        "TriggerMessage",
        "custom trigger",
        request({"requestedMessage": "CustomTrigger", "customTrigger": "x-vendor-dump"}),
        "NotImplemented",
        reason="UnsupportedRequest",
        versions=ONLY_21,
    ),
    # F: UnlockConnector (F05); EVSE 1 has a socket, EVSE 2 a captive cable
    Row(
        "UnlockConnector",
        "socket, no plug",
        request({"evseId": 1, "connectorId": 1}),
        "Unlocked",
        reason="NoCable",
        then=lock_is("false"),
    ),
    Row(
        "UnlockConnector",
        "socket, authorized transaction",
        with_transaction(lambda tx: {"evseId": 1, "connectorId": 1}),
        "OngoingAuthorizedTransaction",
        reason="TxInProgress",
        then=lock_is("true"),
    ),
    Row(
        "UnlockConnector",
        "socket, deauthorized transaction",
        deauthorized_transaction,
        "Unlocked",
        follow_ups=(tx_event("Updated", "UnlockCommand"),),
        then=lock_is("false"),
        csms_config=CsmsConfig(deauthorize_share=1.0),
    ),
    Row(
        "UnlockConnector",
        "captive cable",
        request({"evseId": 2, "connectorId": 1}),
        "UnlockFailed",
        reason="FixedCable",
    ),
    Row(
        "UnlockConnector",
        "connector unknown",
        request({"evseId": 1, "connectorId": 2}),
        "UnknownConnector",
        reason="UnknownConnectorId",
    ),
    # G: ChangeAvailability (G03, G04)
    Row(
        "ChangeAvailability",
        "EVSE idle",
        request({"operationalStatus": "Inoperative", "evse": {"id": 1}}),
        "Accepted",
        follow_ups=(status_of(1, "Unavailable"),),
        then=evse_heard(2, "Available"),
    ),
    Row(
        "ChangeAvailability",
        "EVSE inoperative",
        after(out_of_service_1, {"operationalStatus": "Operative", "evse": {"id": 1}}),
        "Accepted",
        follow_ups=(status_of(1, "Available"),),
    ),
    Row(
        "ChangeAvailability",
        "EVSE reserved",
        after(reserved, {"operationalStatus": "Inoperative", "evse": {"id": 1}}),
        "Accepted",
        # The order is not the specification's: the EVSE's status is reported first.
        follow_ups=(status_of(1, "Unavailable"), reservation_update(7, "Removed")),
    ),
    Row(
        "ChangeAvailability",
        "EVSE runs a transaction",
        after(transaction_on_evse_1, {"operationalStatus": "Inoperative", "evse": {"id": 1}}),
        "Scheduled",
        then=scheduled_until_stopped,
    ),
    Row(
        "ChangeAvailability",
        "connector of an EVSE with a transaction",
        after(
            transaction_on_evse_1,
            {"operationalStatus": "Inoperative", "evse": {"id": 1, "connectorId": 1}},
        ),
        "Scheduled",
        then=scheduled_until_stopped,
    ),
    Row(
        "ChangeAvailability",
        "station idle",
        request({"operationalStatus": "Inoperative"}),
        "Accepted",
        follow_ups=(status_of(1, "Unavailable"), status_of(2, "Unavailable")),
    ),
    Row(
        "ChangeAvailability",
        "station with a transaction",
        after(transaction_on_evse_1, {"operationalStatus": "Inoperative"}),
        "Scheduled",
        follow_ups=(status_of(2, "Unavailable"),),
        then=scheduled_until_stopped,
    ),
    Row(
        "ChangeAvailability",
        "EVSE unknown",
        request({"operationalStatus": "Inoperative", "evse": {"id": 9}}),
        "Rejected",
        reason="UnknownEvse",
    ),
    Row(
        "ChangeAvailability",
        "connector unknown",
        request({"operationalStatus": "Inoperative", "evse": {"id": 1, "connectorId": 3}}),
        "Rejected",
        reason="UnknownConnectorId",
    ),
    # H: ReserveNow (H01, H04), CancelReservation (H02)
    Row(
        "ReserveNow",
        "EVSE free",
        request(RESERVATION),
        "Accepted",
        follow_ups=(status_of(1, "Reserved"),),
        then=other_driver_refused,
    ),
    Row(
        "ReserveNow",
        "no EVSE named, both free",
        request({key: value for key, value in RESERVATION.items() if key != "evseId"}),
        "Accepted",
        then=other_evse_kept,
    ),
    Row(
        "ReserveNow",
        "EVSE free, expires in five minutes",
        request(reservation(expiryDateTime=IN_FIVE_MINUTES)),
        "Accepted",
        follow_ups=(
            status_of(1, "Reserved"),
            reservation_update(7, "Expired"),
            status_of(1, "Available"),
        ),
        within_s=900,
    ),
    Row(
        "ReserveNow",
        "same id, another EVSE",
        after(reserved, reservation(evseId=2)),
        "Accepted",
        follow_ups=(status_of(1, "Available"), status_of(2, "Reserved")),
        never=("ReservationStatusUpdate",),
    ),
    Row(
        "ReserveNow",
        "EVSE runs a transaction",
        after(transaction_on_evse_1, RESERVATION),
        "Occupied",
        reason="NotAvailable",
    ),
    Row(
        "ReserveNow",
        "EVSE reserved for another driver",
        after(reserved_for_other, reservation(id=8)),
        "Occupied",
        reason="NotAvailable",
    ),
    Row(
        "ReserveNow",
        "EVSE inoperative",
        after(out_of_service_1, RESERVATION),
        "Unavailable",
        reason="NotAvailable",
    ),
    Row(
        "ReserveNow",
        "station inoperative",
        after(station_out_of_service, RESERVATION),
        "Unavailable",
        reason="NotAvailable",
    ),
    Row(
        "ReserveNow",
        "EVSE unknown",
        request(reservation(evseId=9)),
        "Rejected",
        reason="UnknownEvse",
    ),
    Row(
        "ReserveNow",
        "no such connector type",
        request(reservation(connectorType="cCCS2")),
        "Rejected",
        reason="UnknownConnectorType",
    ),
    Row(
        "ReserveNow",
        "expiry passed",
        request(reservation(expiryDateTime=AN_HOUR_AGO)),
        "Rejected",
        reason="InvalidValue",
    ),
    Row(
        "ReserveNow",
        "reservations disabled",
        after(reservations_disabled, RESERVATION),
        "Rejected",
        reason="NotEnabled",
    ),
    Row(
        "CancelReservation",
        "reserved",
        after(reserved, {"reservationId": 7}),
        "Accepted",
        follow_ups=(status_of(1, "Available"),),
        then=no_status_update,
    ),
    Row(
        "CancelReservation",
        "reservation expired",
        after(expired_reservation, {"reservationId": 7}),
        "Rejected",
        reason="NotFound",
    ),
    Row(
        "CancelReservation",
        "unknown reservation",
        request({"reservationId": 99}),
        "Rejected",
        reason="NotFound",
    ),
    # O: SetDisplayMessage (O01, O02, O06), GetDisplayMessages (O03, O04), ClearDisplayMessage
    Row(
        "SetDisplayMessage",
        "display empty",
        request({"message": DISPLAY_MESSAGE}),
        "Accepted",
        then=messages_listed(7),
    ),
    Row(
        "SetDisplayMessage",
        "a message of that id shown",
        after(displayed_message, {"message": message(7, message=content("Hello again"))}),
        "Accepted",
        then=replaced_content("Hello again"),
    ),
    Row(
        "SetDisplayMessage",
        "transaction running",
        message_for_transaction,
        "Accepted",
        then=gone_with_its_transaction,
    ),
    Row(
        "SetDisplayMessage",
        "a QR code",
        request({"message": message(7, message=content("https://example.com/pay", "QRCODE"))}),
        "Accepted",
        then=messages_listed(7),
        versions=ONLY_21,
    ),
    Row(
        "SetDisplayMessage",
        "HTML",
        request({"message": message(7, message=content("<b>Hi</b>", "HTML"))}),
        "NotSupportedMessageFormat",
        reason="UnsupportedParam",
        then=messages_listed(),
    ),
    Row(
        "SetDisplayMessage",
        "always in front",
        request({"message": message(7, priority="AlwaysFront")}),
        "NotSupportedPriority",
        reason="UnsupportedParam",
    ),
    Row(
        "SetDisplayMessage",
        "state Faulted",
        request({"message": message(7, state="Faulted")}),
        "NotSupportedState",
        reason="UnsupportedParam",
    ),
    Row(
        "SetDisplayMessage",
        "language not offered",
        request({"message": message(7, message=content("ようこそ", language="ja"))}),
        {"2.1": "LanguageNotSupported", "2.0.1": "Rejected"},
        reason="UnsupportedParam",
    ),
    Row(
        "SetDisplayMessage",
        "unknown transaction",
        request({"message": message(7, transactionId="NO-SUCH-TX")}),
        "UnknownTransaction",
        reason="UnknownTxId",
    ),
    Row(
        "SetDisplayMessage",
        "display of an unknown EVSE",
        request({"message": message(7, display={"name": "Display", "evse": {"id": 9}})}),
        "Rejected",
        reason="UnknownEvse",
    ),
    Row(
        "SetDisplayMessage",
        "window ended",
        request({"message": message(7, endDateTime=AN_HOUR_AGO)}),
        "Rejected",
        reason="InvalidValue",
        then=messages_listed(),
    ),
    Row(
        "SetDisplayMessage",
        "display disabled",
        after(display_disabled, {"message": DISPLAY_MESSAGE}),
        "Rejected",
        reason="NotEnabled",
    ),
    Row(
        "GetDisplayMessages",
        "a message shown",
        after(displayed_message, {"requestId": 3}),
        "Accepted",
        follow_ups=(display_list(3, 7),),
    ),
    Row(
        "GetDisplayMessages",
        "two messages, one asked for",
        after(two_messages, {"requestId": 4, "id": [8]}),
        "Accepted",
        follow_ups=(display_list(4, 8),),
    ),
    Row(
        "GetDisplayMessages",
        "two messages, by priority",
        after(two_messages, {"requestId": 5, "priority": "NormalCycle"}),
        "Accepted",
        follow_ups=(display_list(5, 7),),
    ),
    Row("GetDisplayMessages", "display empty", request({"requestId": 6}), "Unknown"),
    Row(
        "GetDisplayMessages",
        "no message of that id",
        after(displayed_message, {"requestId": 7, "id": [99]}),
        "Unknown",
    ),
    Row(
        "ClearDisplayMessage",
        "a message shown",
        after(two_messages, {"id": 7}),
        "Accepted",
        then=messages_listed(8),
    ),
    Row(
        "ClearDisplayMessage",
        "no message of that id",
        after(displayed_message, {"id": 99}),
        "Unknown",
        then=messages_listed(7),
    ),
]

#: The CSMS-initiated actions of the blocks this table covers; each must have rows.
ACTIONS = (
    "ClearCache",
    "SendLocalList",
    "GetLocalListVersion",
    "GetTransactionStatus",
    "RequestStartTransaction",
    "RequestStopTransaction",
    "TriggerMessage",
    "UnlockConnector",
    "ChangeAvailability",
    "ReserveNow",
    "CancelReservation",
    "SetDisplayMessage",
    "GetDisplayMessages",
    "ClearDisplayMessage",
)


def _is_ambient(action: str, payload: Payload) -> bool:
    """What a station sends of its own accord, whatever it was asked: its heartbeat and the
    periodic meter values of a running transaction."""
    return action == "Heartbeat" or (
        action == "TransactionEvent" and payload["triggerReason"] == "MeterValuePeriodic"
    )


def _cases() -> list[Any]:
    return [
        pytest.param(row, version, id=f"{row.action}-{row.state}-{version}")
        for row in ROWS
        for version in row.versions
    ]


def test_every_action_has_rows_and_every_state_is_named_once() -> None:
    assert {row.action for row in ROWS} == set(ACTIONS)
    named = [(row.action, row.state) for row in ROWS]
    assert len(named) == len(set(named)), "two rows for the same action and state"


async def _settled(station: Station, csms: Csms) -> None:
    """Wait for the connector reports that follow the boot, so that nothing the boot caused
    arrives after a row's request."""
    for evse in station.evses:
        for connector in evse.connectors:
            await csms.wait_for_message(
                STATION_ID,
                "StatusNotification",
                lambda p, e=evse.id, c=connector.id: (p["evseId"], p["connectorId"]) == (e, c),
            )


@pytest.mark.parametrize(("row", "version"), _cases())
async def test_action_in_state(autojump_clock: MockClock, row: Row, version: OcppVersion) -> None:
    async with station_on_memory_link(
        csms_config=row.csms_config, scenario=STATION, ocpp_version=version
    ) as (station, csms):
        with trio.fail_after(3600):
            await _settled(station, csms)
            payload = await row.prepare(station, csms)
            # At rest: whatever the preparation sent has been answered.
            await trio.testing.wait_all_tasks_blocked()
        since = messages_now(csms)
        with trio.fail_after(30):
            answer = await csms.call(STATION_ID, row.action, payload)
        expected = row.expected_status(version)
        assert answer.get("status") == expected, answer
        if row.reason is not None:
            assert answer["statusInfo"]["reasonCode"] == row.reason, answer
            assert answer["statusInfo"]["additionalInfo"], answer
        for key, value in row.answer.items():
            assert answer.get(key) == value, answer
        if row.follow_ups:
            await _follow_ups_arrive(csms, row.follow_ups, since, row.within_s)
        else:
            await trio.sleep(QUIET_S)
            sent = [
                (m.action, m.payload)
                for m in csms.station(STATION_ID).messages_since(since)
                if not _is_ambient(m.action, m.payload)
            ]
            assert not sent, f"{row.action} answered {expected}, yet the station sent {sent}"
        if row.never:
            await nothing_more(csms, since, *row.never)
        if row.then is not None:
            await trio.testing.wait_all_tasks_blocked()
            with trio.fail_after(3600):
                await row.then(Outcome(station, csms, payload, answer, since))


async def _follow_ups_arrive(
    csms: Csms, follow_ups: Sequence[Expect], since: int, within_s: float
) -> None:
    """Each follow-up arrives within `within_s`, in order: each after the one before."""
    position = since
    with trio.fail_after(within_s):
        for expect in follow_ups:
            await csms.wait_for_message(STATION_ID, expect.action, expect.predicate, since=position)
            position = _after(csms, expect, position)


def _after(csms: Csms, expect: Expect, start: int) -> int:
    """The count of messages up to the first one after `start` that meets `expect` (which has
    arrived): the next follow-up must come after it."""
    for index, received in enumerate(csms.station(STATION_ID).messages_since(start), start):
        if received.action == expect.action and expect.predicate(received.payload):
            return index + 1
    raise AssertionError(f"{expect.action} ({expect.what}) arrived but is not kept")
