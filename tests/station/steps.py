"""Steps that bring a running station into a state the way a back office would, through the
embedded CSMS: a transaction started remotely, a reservation, a message on the display, a
setting changed.  Shared by the per-block contract test and the conformance table, so a state
both need is reached the same way in both.

Each step waits for the messages its own request makes the station send (the StatusNotification
of a reservation, the TransactionEvents of a start), so whatever a test sends next is answered
by a station at rest, and what arrives after it is the next request's doing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import trio
import trio.testing

from fleetsim.simulator.csms import Csms
from tests.helpers import STATION_ID, TEST_EV

ID_TOKEN = {"idToken": "04A2B3C4D5E6F7", "type": "ISO14443"}
#: A driver other than `ID_TOKEN`'s.
OTHER_TOKEN = {"idToken": "04FFEEDDCCBBAA", "type": "ISO14443"}
#: The remote start's driver plugs in after a minute (and an EV is drawn for them).
REMOTE_DRIVERS: dict[str, Any] = {
    "ev_fleet": {
        "models": {"test-ev": 1.0},
        "extra_models": {"test-ev": TEST_EV},
        "remote_start_plugin_delay_s": 60,
    }
}
#: A reservation of EVSE 1 for the rest of the (simulated) day.
RESERVATION = {"id": 7, "evseId": 1, "expiryDateTime": "2026-01-15T23:00:00Z", "idToken": ID_TOKEN}
DISPLAY_MESSAGE = {
    "id": 7,
    "priority": "NormalCycle",
    "message": {"format": "UTF8", "language": "en", "content": "Welcome"},
}
#: Simulated seconds a step waits for what its request makes the station send.
STEP_WITHIN_S = 600

Payload = Mapping[str, Any]


def messages_now(csms: Csms) -> int:
    """How many messages the station has sent so far: pass as `since` to wait for new ones."""
    return csms.station(STATION_ID).messages_received


def connector_status(evse_id: int, status: str) -> Callable[[Payload], bool]:
    """A StatusNotification reporting `status` for a connector of EVSE `evse_id`."""
    return lambda p: p["evseId"] == evse_id and p["connectorStatus"] == status


async def arrives(
    csms: Csms, action: str, predicate: Callable[[Payload], bool] | None = None, *, since: int
) -> Payload:
    """The first `action` after `since` that `predicate` accepts; fails after STEP_WITHIN_S."""
    with trio.fail_after(STEP_WITHIN_S):
        return await csms.wait_for_message(STATION_ID, action, predicate, since=since)


async def set_variable_statuses(csms: Csms, values: Mapping[tuple[str, str], str]) -> list[str]:
    """SetVariables of (component, variable) -> value; the attributeStatus of each."""
    answer = await csms.call(
        STATION_ID,
        "SetVariables",
        {
            "setVariableData": [
                {
                    "component": {"name": component},
                    "variable": {"name": variable},
                    "attributeValue": value,
                }
                for (component, variable), value in values.items()
            ]
        },
    )
    return [result["attributeStatus"] for result in answer["setVariableResult"]]


async def set_variables(csms: Csms, values: Mapping[tuple[str, str], str]) -> None:
    """SetVariables that the station must accept, every one."""
    statuses = await set_variable_statuses(csms, values)
    assert statuses == ["Accepted"] * len(values), (values, statuses)


async def set_variable(csms: Csms, component: str, variable: str, value: str) -> None:
    await set_variables(csms, {(component, variable): value})


async def get_variable(
    csms: Csms, component: str, variable: str, evse: Mapping[str, int] | None = None
) -> str:
    component_json: dict[str, Any] = {"name": component}
    if evse is not None:
        component_json["evse"] = evse
    answer = await csms.call(
        STATION_ID,
        "GetVariables",
        {"getVariableData": [{"component": component_json, "variable": {"name": variable}}]},
    )
    result = answer["getVariableResult"][0]
    assert result["attributeStatus"] == "Accepted", result
    return str(result["attributeValue"])


async def running_transaction(
    csms: Csms,
    *,
    evse_id: int = 1,
    id_token: Mapping[str, str] = ID_TOKEN,
    remote_start_id: int = 41,
    charging: bool = False,
) -> str:
    """Start a transaction remotely and return its id once its Started event has arrived; with
    `charging`, once the driver has plugged in and the EV charges (nothing more then comes of
    the start but the periodic meter values)."""
    since = messages_now(csms)
    answer = await csms.call(
        STATION_ID,
        "RequestStartTransaction",
        {"remoteStartId": remote_start_id, "idToken": id_token, "evseId": evse_id},
    )
    assert answer["status"] == "Accepted", answer
    started = await arrives(
        csms, "TransactionEvent", lambda p: p["eventType"] == "Started", since=since
    )
    transaction_id = str(started["transactionInfo"]["transactionId"])
    if charging:
        await arrives(
            csms,
            "TransactionEvent",
            lambda p: (
                p["transactionInfo"]["transactionId"] == transaction_id
                and p["transactionInfo"].get("chargingState") == "Charging"
            ),
            since=since,
        )
    return transaction_id


async def stopped_transaction(csms: Csms, transaction_id: str) -> Payload:
    """Stop a transaction remotely; its Ended event, once the station has done what the end of
    a transaction makes it do (a change of availability that waited for it, ...)."""
    since = messages_now(csms)
    answer = await csms.call(
        STATION_ID, "RequestStopTransaction", {"transactionId": transaction_id}
    )
    assert answer["status"] == "Accepted", answer
    ended = await arrives(
        csms,
        "TransactionEvent",
        lambda p: (
            p["eventType"] == "Ended" and p["transactionInfo"]["transactionId"] == transaction_id
        ),
        since=since,
    )
    await trio.testing.wait_all_tasks_blocked()
    return ended


async def reserved(csms: Csms, **fields: Any) -> None:
    """ReserveNow `RESERVATION` (with `fields` changed), Accepted, and its EVSE reported
    Reserved."""
    request = {**RESERVATION, **fields}
    since = messages_now(csms)
    answer = await csms.call(STATION_ID, "ReserveNow", request)
    assert answer["status"] == "Accepted", answer
    if "evseId" in request:
        await arrives(
            csms, "StatusNotification", connector_status(request["evseId"], "Reserved"), since=since
        )


async def displayed_message(csms: Csms, message: Mapping[str, Any] = DISPLAY_MESSAGE) -> None:
    answer = await csms.call(STATION_ID, "SetDisplayMessage", {"message": message})
    assert answer["status"] == "Accepted", answer


async def cache_enabled(csms: Csms) -> None:
    """Switch the authorization cache on (it is off by default)."""
    await set_variable(csms, "AuthCacheCtrlr", "Enabled", "true")


async def out_of_service(csms: Csms, evse_id: int) -> None:
    """ChangeAvailability Inoperative for an idle EVSE, Accepted and reported Unavailable."""
    since = messages_now(csms)
    answer = await csms.call(
        STATION_ID,
        "ChangeAvailability",
        {"operationalStatus": "Inoperative", "evse": {"id": evse_id}},
    )
    assert answer["status"] == "Accepted", answer
    await arrives(csms, "StatusNotification", connector_status(evse_id, "Unavailable"), since=since)


async def local_list(csms: Csms, version: int, *tokens: Mapping[str, str]) -> None:
    """A Full local authorization list of `tokens` (all Accepted), at `version`."""
    answer = await csms.call(
        STATION_ID,
        "SendLocalList",
        {
            "versionNumber": version,
            "updateType": "Full",
            "localAuthorizationList": [
                {"idToken": token, "idTokenInfo": {"status": "Accepted"}} for token in tokens
            ],
        },
    )
    assert answer["status"] == "Accepted", answer


def updated_events(csms: Csms) -> int:
    """How many Updated TransactionEvents the CSMS has recorded from the test station."""
    return sum(
        1
        for message in csms.station(STATION_ID).messages_since(0)
        if message.action == "TransactionEvent" and message.payload["eventType"] == "Updated"
    )
