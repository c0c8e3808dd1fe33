"""Conformance: every CSMS-initiated action of blocks B, C, D, E, F, G, H, J, L, N and O, in each
state of the station that changes its answer, on a running station of each OCPP version.

One row per (action, state): how to bring the station there, the request, the status the
specification names for that state, the messages that must follow, and a check of the state
that follows, read back over OCPP where the protocol can tell (GetVariables,
GetLocalListVersion, GetDisplayMessages, GetTransactionStatus, GetMonitoringReport, a triggered
status notification, the connector status the CSMS heard).  Follow-ups that come as a sequence
(NotifyReport parts, the FirmwareStatusNotifications of an update through its reboot, the
LogStatusNotifications of an upload) must arrive in the order the row lists them.  The answer
validates against the version's schema because the CSMS's link checks it: an invalid answer
fails the call as a CALLERROR.  A row without follow-ups says the station
sends nothing: a refusal, or an action whose effect is only state; the test waits past
`QUIET_S` of simulated time and fails on anything but the station's own periodic messages.

A row runs against 2.1 and 2.0.1 unless it uses what only 2.1 has.  How a row runs is
`tests/station/conformance.py`; blocks added later keep their rows in their own
`test_conformance_<block>.py`, which the meta-test below gathers.  The steps that prepare a
state live in `tests/station/steps.py`, shared with the per-block contract test.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import Station
from fleetsim.simulator.station.registry import default_registry
from tests.helpers import STATION_ID
from tests.station.conformance import (
    AN_HOUR_AGO,
    IN_FIVE_MINUTES,
    ONLY_21,
    QUIET_S,
    STATION,
    Expect,
    Outcome,
    Prepare,
    Row,
    StateCheck,
    after,
    after_ended_transaction,
    cases,
    nothing_more,
    request,
    run_row,
    status_of,
    tx_event,
    with_transaction,
)
from tests.station.steps import (
    DISPLAY_MESSAGE,
    ID_TOKEN,
    OTHER_TOKEN,
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
    set_variable_statuses,
    stopped_transaction,
)

# -- building rows ------------------------------------------------------------------------------


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


# -- B, J, L, N: the device model, meter values, firmware, diagnostics and monitoring -----------

HEARTBEAT = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
PRIORITY = {
    "component": {"name": "OCPPCommCtrlr"},
    "variable": {"name": "NetworkConfigurationPriority"},
}
ALIGNED_INTERVAL = {"component": {"name": "AlignedDataCtrlr"}, "variable": {"name": "Interval"}}
EVSE_1_POWER = {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"}}
#: A station that publishes firmware to the stations behind it (L03, L04).
LOCAL_CONTROLLER: dict[str, Any] = {
    **STATION,
    "stations": {**STATION["stations"], "firmware": {"local_controller": True}},
}
FIRMWARE_URL = "https://firmware.example.com/fleetsim-0.2.bin"
#: The version `FIRMWARE_URL` installs: its file name without the extension.
NEW_FIRMWARE = "fleetsim-0.2"
PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUFAKE\n-----END CERTIFICATE-----\n"
PUBLISH = {
    "location": FIRMWARE_URL,
    "checksum": "9e107d9d372bb6826bd81d3542a419d6",
    "requestId": 6,
}
LOG_URL = "https://csms.example.com/logs"
DAY_BEFORE = ("2026-01-14T00:00:00Z", "2026-01-14T06:00:00Z")


def variables(*items: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
    return {"getVariableData": [{**item, **fields} for item in items]}


def setting(item: Mapping[str, Any], value: str) -> dict[str, Any]:
    return {"setVariableData": [{**item, "attributeValue": value}]}


def named(component: str, variable: str) -> dict[str, Any]:
    return {"component": {"name": component}, "variable": {"name": variable}}


def results(key: str, *statuses: str, field_: str = "attributeStatus") -> StateCheck:
    """The answer lists one result per item of the request, with these statuses."""

    async def check(outcome: Outcome) -> None:
        assert [result[field_] for result in outcome.answer[key]] == list(statuses), outcome.answer

    return check


def both(*checks: StateCheck) -> StateCheck:
    async def check(outcome: Outcome) -> None:
        for each in checks:
            await each(outcome)

    return check


def reads(item: Mapping[str, Any], value: str) -> StateCheck:
    """GetVariables reads `value` for `item` afterwards."""

    async def check(outcome: Outcome) -> None:
        component = item["component"]
        assert (
            await get_variable(
                outcome.csms, component["name"], item["variable"]["name"], component.get("evse")
            )
            == value
        )

    return check


async def charging_power_read(outcome: Outcome) -> None:
    [result] = outcome.answer["getVariableResult"]
    assert result["attributeStatus"] == "Accepted", result
    assert float(result["attributeValue"]) > 0, result


def heartbeat_at(value: str) -> Prepare:
    """HeartbeatInterval set to `value`; the request reads it."""

    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        await set_variable(csms, "OCPPCommCtrlr", "HeartbeatInterval", value)
        return variables(HEARTBEAT)

    return prepare


def profile_data(version: OcppVersion, station: Station, **fields: Any) -> dict[str, Any]:
    return {
        "ocppVersion": "OCPP20" if version == "2.0.1" else "OCPP21",
        "ocppTransport": "JSON",
        "ocppInterface": "Wired0",
        "ocppCsmsUrl": "ws://127.0.0.1:9999/ocpp",
        "messageTimeout": round(station.config.message_timeout_s),
        "securityProfile": station.security_profile,
        **fields,
    }


def network_profile(slot: int, **fields: Any) -> Prepare:
    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        data = profile_data(station.config.ocpp_version, station, **fields)
        return {"configurationSlot": slot, "connectionData": data}

    return prepare


async def profile_in_slot_2(station: Station, csms: Csms) -> dict[str, Any]:
    payload = await network_profile(2)(station, csms)
    answer = await csms.call(STATION_ID, "SetNetworkProfile", payload)
    assert answer["status"] == "Accepted", answer
    return setting(PRIORITY, "2,1")


async def slot_2_stored(outcome: Outcome) -> None:
    """The stored profile lets the priority list name slot 2 (a new value that waits for the
    next reboot), which it could not before."""
    statuses = await set_variable_statuses(
        outcome.csms, {("OCPPCommCtrlr", "NetworkConfigurationPriority"): "2,1"}
    )
    assert statuses == ["RebootRequired"]


async def priority_unchanged(outcome: Outcome) -> None:
    assert await get_variable(outcome.csms, "OCPPCommCtrlr", "NetworkConfigurationPriority") == "1"


def report_done(request_id: int) -> Expect:
    """The last NotifyReport of request `request_id` (tbc false)."""
    return Expect(
        "NotifyReport",
        f"request {request_id}, last part",
        lambda p: p["requestId"] == request_id and not p.get("tbc", False),
    )


def reported(csms: Csms, action: str, key: str, request_id: int, since: int) -> list[Payload]:
    """The entries of every part of a report, checked to be numbered 0.. and to end there."""
    parts = [
        m.payload
        for m in csms.station(STATION_ID).messages_since(since)
        if m.action == action and m.payload["requestId"] == request_id
    ]
    assert [part["seqNo"] for part in parts] == list(range(len(parts))), parts
    assert [part.get("tbc", False) for part in parts] == [True] * (len(parts) - 1) + [False]
    return [entry for part in parts for entry in part.get(key, ())]


def report_holds(check: Callable[[list[Payload]], bool]) -> StateCheck:
    """The NotifyReport parts of the request hold entries that pass `check`."""

    async def state(outcome: Outcome) -> None:
        entries = reported(
            outcome.csms, "NotifyReport", "reportData", outcome.request["requestId"], outcome.since
        )
        assert check(entries), entries

    return state


def only_components(*names: str) -> Callable[[list[Payload]], bool]:
    return lambda entries: bool(entries) and {e["component"]["name"] for e in entries} == set(names)


def writable_only(entries: list[Payload]) -> bool:
    """Every variable reported has a writable Actual value."""
    return bool(entries) and all(
        attribute["mutability"] != "ReadOnly"
        for entry in entries
        for attribute in entry["variableAttribute"]
        if attribute.get("type", "Actual") == "Actual"
    )


def availability_only(entries: list[Payload]) -> bool:
    return bool(entries) and {e["variable"]["name"] for e in entries} == {"AvailabilityState"}


def booted(reason: str, **fields: Any) -> Expect:
    return Expect(
        "BootNotification",
        f"reason {reason} {fields}",
        lambda p: (
            p["reason"] == reason
            and all(p["chargingStation"].get(k) == v for k, v in fields.items())
        ),
    )


async def idle_after_stop(outcome: Outcome) -> None:
    """A Reset OnIdle waits for the transaction, then reboots."""
    csms = outcome.csms
    await nothing_more(csms, outcome.since, "BootNotification")
    transaction = outcome.station.evses[0].transaction
    assert transaction is not None
    since = messages_now(csms)
    await stopped_transaction(csms, transaction.id)
    await arrives(csms, "BootNotification", lambda p: p["reason"] == "RemoteReset", since=since)


async def no_resumption(csms: Csms) -> None:
    await set_variable(csms, "TxCtrlr", "ResumptionTimeout", "0")
    await running_transaction(csms, charging=True)


def meter_values_of(evse_id: int, context: str) -> Expect:
    return Expect(
        "MeterValues",
        f"EVSE {evse_id}, {context}",
        lambda p: (
            p["evseId"] == evse_id
            and all(
                sample.get("context") == context
                for value in p["meterValue"]
                for sample in value["sampledValue"]
            )
        ),
    )


async def no_meter_values_of_evse_1(outcome: Outcome) -> None:
    """During a transaction its EVSE's clock-aligned values go in TransactionEvents only."""
    sent = outcome.csms.station(STATION_ID).messages_since(outcome.since)
    assert not [m for m in sent if m.action == "MeterValues" and m.payload["evseId"] == 1]


def firmware(request_id: int, *statuses: str) -> tuple[Expect, ...]:
    return tuple(
        Expect(
            "FirmwareStatusNotification",
            f"{status} of request {request_id}",
            lambda p, s=status: p["status"] == s and p.get("requestId") == request_id,
        )
        for status in statuses
    )


def update(request_id: int = 5, **fields: Any) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "firmware": {"location": FIRMWARE_URL, "retrieveDateTime": AN_HOUR_AGO, **fields},
    }


#: The whole of an update that succeeds: the reboot into the new firmware, then Installed.
INSTALLED = (
    *firmware(5, "Downloading", "Downloaded", "Installing", "InstallRebooting"),
    booted("FirmwareUpdate", firmwareVersion=NEW_FIRMWARE),
    *firmware(5, "Installed"),
    Expect(
        "SecurityEventNotification", "FirmwareUpdated", lambda p: p["type"] == "FirmwareUpdated"
    ),
)


def updating(until: str, **fields: Any) -> Callable[[Csms], Awaitable[None]]:
    """UpdateFirmware 5, Accepted, and on its way: `until` reported."""

    async def step(csms: Csms) -> None:
        since = messages_now(csms)
        answer = await csms.call(STATION_ID, "UpdateFirmware", update(**fields))
        assert answer["status"] == "Accepted", answer
        await arrives(
            csms, "FirmwareStatusNotification", lambda p: p["status"] == until, since=since
        )

    return step


async def installs_once_idle(outcome: Outcome) -> None:
    """L01.FR.06: no installation while the transaction runs; it begins once it has ended."""
    csms = outcome.csms

    def installing(p: Payload) -> bool:
        return p["status"] == "Installing"

    await trio.sleep(QUIET_S)
    sent = csms.station(STATION_ID).messages_since(outcome.since)
    assert not [
        m for m in sent if m.action == "FirmwareStatusNotification" and installing(m.payload)
    ]
    transaction = outcome.station.evses[0].transaction
    assert transaction is not None
    since = messages_now(csms)
    await stopped_transaction(csms, transaction.id)
    await arrives(csms, "FirmwareStatusNotification", installing, since=since)


def publication(*statuses: str, request_id: int = 6) -> tuple[Expect, ...]:
    return tuple(
        Expect(
            "PublishFirmwareStatusNotification",
            f"{status} of request {request_id}",
            lambda p, s=status: p["status"] == s and p.get("requestId") == request_id,
        )
        for status in statuses
    )


def publishing(until: str) -> Callable[[Csms], Awaitable[None]]:
    async def step(csms: Csms) -> None:
        since = messages_now(csms)
        answer = await csms.call(STATION_ID, "PublishFirmware", PUBLISH)
        assert answer["status"] == "Accepted", answer
        await arrives(
            csms, "PublishFirmwareStatusNotification", lambda p: p["status"] == until, since=since
        )

    return step


async def publication_idle(outcome: Outcome) -> None:
    """Unpublished: the station reports no publication."""
    since = messages_now(outcome.csms)
    answer = await outcome.csms.call(
        STATION_ID, "TriggerMessage", {"requestedMessage": "PublishFirmwareStatusNotification"}
    )
    assert answer["status"] == "Accepted", answer
    report = await arrives(outcome.csms, "PublishFirmwareStatusNotification", since=since)
    assert report["status"] == "Idle", report


def get_log(request_id: int = 5, log_type: str = "DiagnosticsLog", **log: Any) -> dict[str, Any]:
    return {
        "logType": log_type,
        "requestId": request_id,
        "log": {"remoteLocation": LOG_URL, **log},
    }


def log_status(status: str, request_id: int | None = 5) -> Expect:
    return Expect(
        "LogStatusNotification",
        f"{status} of request {request_id}",
        lambda p: p["status"] == status and p.get("requestId") == request_id,
    )


async def uploading(csms: Csms) -> None:
    since = messages_now(csms)
    answer = await csms.call(STATION_ID, "GetLog", get_log())
    assert answer["status"] == "Accepted", answer
    await arrives(csms, "LogStatusNotification", lambda p: p["status"] == "Uploading", since=since)


def names_file(log_type: str) -> StateCheck:
    async def check(outcome: Outcome) -> None:
        filename = outcome.answer["filename"]
        assert STATION_ID in filename and log_type in filename, outcome.answer

    return check


async def no_file(outcome: Outcome) -> None:
    assert "filename" not in outcome.answer, outcome.answer


def customer(**fields: Any) -> dict[str, Any]:
    return {"requestId": 8, "report": True, "clear": False, "idToken": ID_TOKEN, **fields}


def customer_data(*phrases: str) -> Expect:
    return Expect(
        "NotifyCustomerInformation",
        f"request 8 tells {phrases}",
        lambda p: p["requestId"] == 8 and all(phrase in p["data"] for phrase in phrases),
    )


def with_cached(payload: Mapping[str, Any]) -> Prepare:
    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        await cached_token(station, csms)
        return dict(payload)

    return prepare


def monitor(item: Mapping[str, Any] = EVSE_1_POWER, **fields: Any) -> dict[str, Any]:
    return {**item, "type": "UpperThreshold", "value": 1000, "severity": 5, **fields}


def monitors(*items: Mapping[str, Any]) -> dict[str, Any]:
    return {"setMonitoringData": list(items)}


def event(trigger: str, variable: str, **fields: Any) -> Expect:
    """A NotifyEvent from a monitor of `variable`, with this trigger."""

    def matches(payload: Payload) -> bool:
        return any(
            data["trigger"] == trigger
            and data["variable"]["name"] == variable
            and "variableMonitoringId" in data
            and all(data.get(key) == value for key, value in fields.items())
            for data in payload["eventData"]
        )

    return Expect("NotifyEvent", f"{trigger} of {variable} {fields}", matches)


def monitoring(*items: Mapping[str, Any]) -> Callable[[Csms], Awaitable[None]]:
    """SetVariableMonitoring of `items`, each Accepted."""

    async def step(csms: Csms) -> None:
        answer = await csms.call(STATION_ID, "SetVariableMonitoring", monitors(*items))
        statuses = [result["status"] for result in answer["setMonitoringResult"]]
        assert statuses == ["Accepted"] * len(items), answer

    return step


async def monitor_ids(csms: Csms, request_id: int = 91, **criteria: Any) -> list[int]:
    """The ids GetMonitoringReport lists; [] for EmptyResultSet."""
    since = messages_now(csms)
    answer = await csms.call(
        STATION_ID, "GetMonitoringReport", {"requestId": request_id, **criteria}
    )
    if answer["status"] == "EmptyResultSet":
        return []
    assert answer["status"] == "Accepted", answer
    await arrives(
        csms,
        "NotifyMonitoringReport",
        lambda p: p["requestId"] == request_id and not p.get("tbc", False),
        since=since,
    )
    entries = reported(csms, "NotifyMonitoringReport", "monitor", request_id, since)
    return sorted(m["id"] for entry in entries for m in entry["variableMonitoring"])


#: The hard-wired over-power monitors of EVSEs 1 and 2: always there.
HARD_WIRED = [1, 2]


def monitors_listed(*ids: int) -> StateCheck:
    async def check(outcome: Outcome) -> None:
        assert await monitor_ids(outcome.csms) == sorted(ids)

    return check


async def custom_monitor(csms: Csms) -> int:
    answer = await csms.call(STATION_ID, "SetVariableMonitoring", monitors(monitor()))
    [result] = answer["setMonitoringResult"]
    assert result["status"] == "Accepted", answer
    return int(result["id"])


def custom_then(build: Callable[[int], Mapping[str, Any]]) -> Prepare:
    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        return dict(build(await custom_monitor(csms)))

    return prepare


async def custom_gone(outcome: Outcome) -> None:
    assert await monitor_ids(outcome.csms) == HARD_WIRED


def monitoring_report(request_id: int, *ids: int) -> Expect:
    return Expect(
        "NotifyMonitoringReport",
        f"request {request_id} lists {ids}",
        lambda p: (
            p["requestId"] == request_id
            and sorted(m["id"] for entry in p["monitor"] for m in entry["variableMonitoring"])
            == list(ids)
        ),
    )


def level_is(level: str) -> StateCheck:
    async def check(outcome: Outcome) -> None:
        assert await get_variable(outcome.csms, "MonitoringCtrlr", "ActiveMonitoringLevel") == level

    return check


async def periodic_power_monitor(csms: Csms) -> None:
    await monitoring(monitor(type="Periodic", value=60))(csms)


#: A periodic monitor of EVSE 1's power whose values go out on a periodic event stream.
STREAMED = monitor(type="Periodic", value=60, periodicEventStream={"interval": 300, "values": 5})


async def stream_open(csms: Csms) -> int:
    since = messages_now(csms)
    await monitoring(STREAMED)(csms)
    opened = await arrives(csms, "OpenPeriodicEventStream", since=since)
    await trio.testing.wait_all_tasks_blocked()
    return int(opened["constantStreamData"]["id"])


def stream_then(build: Callable[[int], Mapping[str, Any]]) -> Prepare:
    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        return dict(build(await stream_open(csms)))

    return prepare


async def streamed_monitor(station: Station, csms: Csms) -> dict[str, Any]:
    await stream_open(csms)
    return {"id": [await _streamed_monitor_id(csms)]}


async def _streamed_monitor_id(csms: Csms) -> int:
    answer = await csms.call(STATION_ID, "GetPeriodicEventStream", {})
    [stream] = answer["constantStreamData"]
    return int(stream["variableMonitoringId"])


def stream_values(count: int) -> Expect:
    return Expect("NotifyPeriodicEventStream", f"{count} values", lambda p: len(p["data"]) == count)


async def one_stream_listed(outcome: Outcome) -> None:
    [stream] = outcome.answer["constantStreamData"]
    assert stream["params"] == {"interval": 300, "values": 5}, stream


async def cache_kept(outcome: Outcome) -> None:
    assert await get_variable(outcome.csms, "AuthCacheCtrlr", "Storage") != "0"


async def delta_fires(outcome: Outcome) -> None:
    """The monitor saw nothing change until the value moves by more than its delta."""
    since = messages_now(outcome.csms)
    await set_variable(outcome.csms, "OCPPCommCtrlr", "HeartbeatInterval", "305")
    await trio.testing.wait_all_tasks_blocked()
    assert not [
        m
        for m in outcome.csms.station(STATION_ID).messages_since(since)
        if m.action == "NotifyEvent"
    ]
    await set_variable(outcome.csms, "OCPPCommCtrlr", "HeartbeatInterval", "60")
    expect = event("Delta", "HeartbeatInterval", actualValue="60")
    await arrives(outcome.csms, "NotifyEvent", expect.predicate, since=since)


async def all_base(csms: Csms) -> None:
    answer = await csms.call(STATION_ID, "SetMonitoringBase", {"monitoringBase": "All"})
    assert answer["status"] == "Accepted", answer


async def no_streams(outcome: Outcome) -> None:
    assert "constantStreamData" not in outcome.answer, outcome.answer


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
        reason="TxNotFound",
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
    # B: GetVariables (B06)
    Row(
        "GetVariables",
        "a value set",
        heartbeat_at("60"),
        None,
        answer={
            "getVariableResult": [
                {
                    **HEARTBEAT,
                    "attributeStatus": "Accepted",
                    "attributeValue": "60",
                }
            ]
        },
    ),
    Row(
        "GetVariables",
        "EVSE power while charging",
        with_transaction(lambda tx: variables(EVSE_1_POWER)),
        None,
        then=charging_power_read,
    ),
    Row(
        "GetVariables",
        "unknown component and variable",
        request(
            variables(named("NoSuchCtrlr", "Enabled"), named("OCPPCommCtrlr", "NoSuchVariable"))
        ),
        None,
        then=results("getVariableResult", "UnknownComponent", "UnknownVariable"),
    ),
    Row(
        "GetVariables",
        "attribute type not kept",
        request(variables(HEARTBEAT, attributeType="Target")),
        None,
        then=results("getVariableResult", "NotSupportedAttributeType"),
    ),
    # B: SetVariables (B05)
    Row(
        "SetVariables",
        "a writable value",
        request(setting(HEARTBEAT, "60")),
        None,
        then=both(results("setVariableResult", "Accepted"), reads(HEARTBEAT, "60")),
    ),
    Row(
        "SetVariables",
        "a value out of range",
        request(setting(HEARTBEAT, "-5")),
        None,
        then=both(results("setVariableResult", "Rejected"), reads(HEARTBEAT, "300")),
    ),
    Row(
        "SetVariables",
        "a read-only value",
        request(setting(named("MonitoringCtrlr", "ActiveMonitoringLevel"), "3")),
        None,
        then=both(
            results("setVariableResult", "Rejected"),
            reads(named("MonitoringCtrlr", "ActiveMonitoringLevel"), "9"),
        ),
    ),
    Row(
        "SetVariables",
        "unknown component and variable",
        request(
            {
                "setVariableData": [
                    {**named("NoSuchCtrlr", "Enabled"), "attributeValue": "true"},
                    {**named("OCPPCommCtrlr", "NoSuchVariable"), "attributeValue": "1"},
                ]
            }
        ),
        None,
        then=results("setVariableResult", "UnknownComponent", "UnknownVariable"),
    ),
    Row(
        "SetVariables",
        "network priority, the slot holds a profile",
        profile_in_slot_2,
        None,
        then=both(results("setVariableResult", "RebootRequired"), priority_unchanged),
    ),
    Row(
        "SetVariables",
        "network priority, the slot holds no profile",
        request(setting(PRIORITY, "2,1")),
        None,
        then=both(results("setVariableResult", "Rejected"), priority_unchanged),
    ),
    # J: clock-aligned data (J01) once SetVariables gives it an interval
    Row(
        "SetVariables",
        "aligned data interval, EVSEs idle",
        request(setting(ALIGNED_INTERVAL, "60")),
        None,
        follow_ups=(meter_values_of(1, "Sample.Clock"),),
        then=results("setVariableResult", "Accepted"),
    ),
    Row(
        "SetVariables",
        "aligned data interval, transaction running",
        with_transaction(lambda tx: setting(ALIGNED_INTERVAL, "60")),
        None,
        follow_ups=(tx_event("Updated", "MeterValueClock"),),
        then=both(results("setVariableResult", "Accepted"), no_meter_values_of_evse_1),
    ),
    # B: GetBaseReport (B07), GetReport (B08)
    Row(
        "GetBaseReport",
        "full inventory",
        request({"requestId": 3, "reportBase": "FullInventory"}),
        "Accepted",
        follow_ups=(report_done(3),),
        then=report_holds(lambda entries: len(entries) > 50),
    ),
    Row(
        "GetBaseReport",
        "configuration inventory",
        request({"requestId": 3, "reportBase": "ConfigurationInventory"}),
        "Accepted",
        follow_ups=(report_done(3),),
        then=report_holds(writable_only),
    ),
    Row(
        "GetBaseReport",
        "summary inventory",
        request({"requestId": 3, "reportBase": "SummaryInventory"}),
        "Accepted",
        follow_ups=(report_done(3),),
        then=report_holds(availability_only),
    ),
    Row(
        "GetReport",
        "a component",
        request({"requestId": 4, "componentVariable": [{"component": {"name": "EVSE"}}]}),
        "Accepted",
        follow_ups=(report_done(4),),
        then=report_holds(only_components("EVSE")),
    ),
    Row(
        "GetReport",
        "a variable of an available component",
        request(
            {
                "requestId": 4,
                "componentVariable": [named("MonitoringCtrlr", "Enabled")],
                "componentCriteria": ["Available"],
            }
        ),
        "Accepted",
        follow_ups=(report_done(4),),
        then=report_holds(lambda entries: [e["variable"]["name"] for e in entries] == ["Enabled"]),
    ),
    Row(
        "GetReport",
        "unknown component",
        request({"requestId": 4, "componentVariable": [{"component": {"name": "NoSuchCtrlr"}}]}),
        "EmptyResultSet",
    ),
    # B: SetNetworkProfile (B09)
    Row(
        "SetNetworkProfile",
        "a free slot",
        network_profile(2),
        "Accepted",
        then=slot_2_stored,
    ),
    Row(
        "SetNetworkProfile",
        "the slot in use",
        network_profile(1),
        "Rejected",
        reason="InvalidValue",
        then=priority_unchanged,
    ),
    Row(
        "SetNetworkProfile",
        "a slot the station lacks",
        network_profile(7),
        "Rejected",
        reason="InvalidValue",
    ),
    Row(
        "SetNetworkProfile",
        "a URL that is no websocket",
        network_profile(2, ocppCsmsUrl="https://csms.example.com/ocpp"),
        "Rejected",
        reason="InvalidValue",
    ),
    # B: Reset (B11, B12, B13)
    Row(
        "Reset",
        "idle, Immediate",
        request({"type": "Immediate"}),
        "Accepted",
        follow_ups=(booted("RemoteReset"), status_of(1, "Available")),
    ),
    Row(
        "Reset",
        "idle, OnIdle",
        request({"type": "OnIdle"}),
        "Accepted",
        follow_ups=(booted("RemoteReset"),),
    ),
    Row(
        "Reset",
        "transaction running, Immediate",
        with_transaction(lambda tx: {"type": "Immediate"}),
        "Accepted",
        follow_ups=(
            tx_event("Ended", "ResetCommand", stoppedReason="ImmediateReset"),
            booted("RemoteReset"),
        ),
    ),
    Row(
        "Reset",
        "transaction running, OnIdle",
        with_transaction(lambda tx: {"type": "OnIdle"}),
        "Scheduled",
        then=idle_after_stop,
    ),
    Row(
        "Reset",
        "transaction running, ImmediateAndResume",
        with_transaction(lambda tx: {"type": "ImmediateAndResume"}),
        "Accepted",
        follow_ups=(
            tx_event("Updated", "ResetCommand"),
            booted("RemoteReset"),
            tx_event("Updated", "TxResumed"),
        ),
        versions=ONLY_21,
    ),
    Row(
        "Reset",
        "transaction running, no resumption",
        after(no_resumption, {"type": "ImmediateAndResume"}),
        "Rejected",
        reason="NoResumption",
        versions=ONLY_21,
    ),
    Row(
        "Reset",
        "one EVSE",
        request({"type": "Immediate", "evseId": 1}),
        "Rejected",
        reason="UnsupportedRequest",
    ),
    # J: TriggerMessage MeterValues (F06 for J); L, N: the status triggers
    Row(
        "TriggerMessage",
        "meter values of a charging EVSE",
        with_transaction(lambda tx: {"requestedMessage": "MeterValues", "evse": {"id": 1}}),
        "Accepted",
        follow_ups=(meter_values_of(1, "Trigger"),),
    ),
    Row(
        "TriggerMessage",
        "no firmware update",
        request({"requestedMessage": "FirmwareStatusNotification"}),
        "Accepted",
        follow_ups=(
            Expect("FirmwareStatusNotification", "Idle", lambda p: p == {"status": "Idle"}),
        ),
    ),
    Row(
        "TriggerMessage",
        "firmware download scheduled",
        after(
            updating("DownloadScheduled", retrieveDateTime="2026-01-15T18:00:00Z"),
            {"requestedMessage": "FirmwareStatusNotification"},
        ),
        "Accepted",
        follow_ups=firmware(5, "DownloadScheduled"),
    ),
    Row(
        "TriggerMessage",
        "no log upload",
        request({"requestedMessage": "LogStatusNotification"}),
        "Accepted",
        follow_ups=(Expect("LogStatusNotification", "Idle", lambda p: p == {"status": "Idle"}),),
    ),
    Row(
        "TriggerMessage",
        "log uploading",
        after(uploading, {"requestedMessage": "LogStatusNotification"}),
        "Accepted",
        follow_ups=(log_status("Uploading"), log_status("Uploaded")),
    ),
    # L: UpdateFirmware (L01, L02)
    Row(
        "UpdateFirmware",
        "idle",
        request(update()),
        "Accepted",
        follow_ups=INSTALLED,
        within_s=600,
    ),
    Row(
        "UpdateFirmware",
        "idle, signed firmware",
        request(update(signature="c2lnbmF0dXJl", signingCertificate=PEM)),
        "Accepted",
        follow_ups=(
            *firmware(5, "Downloading", "Downloaded", "SignatureVerified", "Installing"),
            booted("FirmwareUpdate", firmwareVersion=NEW_FIRMWARE),
            *firmware(5, "Installed"),
        ),
        within_s=600,
    ),
    Row(
        "UpdateFirmware",
        "idle, download and install later",
        request(update(retrieveDateTime=IN_FIVE_MINUTES, installDateTime="2026-01-15T12:20:00Z")),
        "Accepted",
        follow_ups=(
            *firmware(5, "DownloadScheduled", "Downloading", "Downloaded", "InstallScheduled"),
            *firmware(5, "Installing", "InstallRebooting", "Installed"),
        ),
        within_s=1800,
    ),
    Row(
        "UpdateFirmware",
        "transaction running",
        with_transaction(lambda tx: update()),
        "Accepted",
        follow_ups=firmware(5, "Downloading", "Downloaded"),
        then=installs_once_idle,
    ),
    Row(
        "UpdateFirmware",
        "an update scheduled",
        after(updating("DownloadScheduled", retrieveDateTime="2026-01-15T18:00:00Z"), update(6)),
        "AcceptedCanceled",
        follow_ups=firmware(6, "Downloading", "Downloaded", "Installing", "Installed"),
        within_s=600,
    ),
    Row(
        "UpdateFirmware",
        "an update installing",
        after(updating("Installing"), update(6)),
        "Rejected",
        reason="InstallInProgress",
        follow_ups=(
            *firmware(5, "InstallRebooting"),
            booted("FirmwareUpdate", firmwareVersion=NEW_FIRMWARE),
            *firmware(5, "Installed"),
        ),
        within_s=600,
    ),
    Row(
        "UpdateFirmware",
        "a signing certificate that is none",
        request(update(signature="c2lnbmF0dXJl", signingCertificate="not a certificate")),
        "InvalidCertificate",
        reason="InvalidCertificate",
        follow_ups=(
            Expect(
                "SecurityEventNotification",
                "InvalidFirmwareSigningCertificate",
                lambda p: p["type"] == "InvalidFirmwareSigningCertificate",
            ),
        ),
        never=("FirmwareStatusNotification",),
    ),
    # L: PublishFirmware (L03), UnpublishFirmware (L04), on a Local Controller
    Row(
        "PublishFirmware",
        "local controller, nothing published",
        request(PUBLISH),
        "Accepted",
        follow_ups=publication("Downloading", "Downloaded", "ChecksumVerified", "Published"),
        scenario=LOCAL_CONTROLLER,
    ),
    Row(
        "PublishFirmware",
        "local controller, a publication downloading",
        after(publishing("Downloading"), {**PUBLISH, "requestId": 7}),
        "Rejected",
        reason="InProgress",
        follow_ups=publication("Downloaded", "Published"),
        scenario=LOCAL_CONTROLLER,
    ),
    Row(
        "PublishFirmware",
        "not a local controller",
        request(PUBLISH),
        "Rejected",
        reason="UnsupportedRequest",
    ),
    Row(
        "UnpublishFirmware",
        "published",
        after(publishing("Published"), {"checksum": PUBLISH["checksum"]}),
        "Unpublished",
        then=publication_idle,
        scenario=LOCAL_CONTROLLER,
    ),
    Row(
        "UnpublishFirmware",
        "downloading",
        after(publishing("Downloading"), {"checksum": PUBLISH["checksum"]}),
        "DownloadOngoing",
        follow_ups=publication("Published"),
        scenario=LOCAL_CONTROLLER,
    ),
    Row(
        "UnpublishFirmware",
        "another checksum published",
        after(publishing("Published"), {"checksum": "0" * 32}),
        "NoFirmware",
        scenario=LOCAL_CONTROLLER,
    ),
    Row(
        "UnpublishFirmware",
        "nothing published",
        request({"checksum": PUBLISH["checksum"]}),
        "NoFirmware",
    ),
    # N: GetLog (N01)
    Row(
        "GetLog",
        "no upload",
        request(get_log()),
        "Accepted",
        follow_ups=(log_status("Uploading"), log_status("Uploaded")),
        then=names_file("DiagnosticsLog"),
    ),
    Row(
        "GetLog",
        "security log",
        request(get_log(log_type="SecurityLog")),
        "Accepted",
        follow_ups=(log_status("Uploading"), log_status("Uploaded")),
        then=names_file("SecurityLog"),
    ),
    Row(
        "GetLog",
        "an upload running",
        after(uploading, get_log(6)),
        "AcceptedCanceled",
        follow_ups=(
            log_status("AcceptedCanceled"),
            log_status("Uploading", 6),
            log_status("Uploaded", 6),
        ),
    ),
    Row(
        "GetLog",
        "a span before the station started",
        request(get_log(oldestTimestamp=DAY_BEFORE[0], latestTimestamp=DAY_BEFORE[1])),
        "Accepted",
        then=no_file,
    ),
    Row(
        "GetLog",
        "oldest after latest",
        request(get_log(oldestTimestamp=DAY_BEFORE[1], latestTimestamp=DAY_BEFORE[0])),
        "Rejected",
        reason="InvalidValue",
    ),
    Row(
        "GetLog",
        "a location that is no URL",
        request(get_log(remoteLocation="logs on the server")),
        "Accepted",
        follow_ups=(log_status("BadMessage"),),
    ),
    Row(
        "GetLog",
        "a protocol the station lacks",
        request(get_log(remoteLocation="gopher://csms.example.com/logs")),
        "Accepted",
        follow_ups=(log_status("NotSupportedOperation"),),
    ),
    Row(
        "GetLog",
        "data collector log",
        request(get_log(log_type="DataCollectorLog")),
        "Rejected",
        reason="UnsupportedRequest",
        versions=ONLY_21,
    ),
    # N: CustomerInformation (N09, N10)
    Row(
        "CustomerInformation",
        "token cached, report",
        with_cached(customer()),
        "Accepted",
        follow_ups=(customer_data("authorization cache"),),
        then=cache_kept,
    ),
    Row(
        "CustomerInformation",
        "token cached, report and clear",
        with_cached(customer(clear=True)),
        "Accepted",
        follow_ups=(customer_data("authorization cache", "cleared"),),
        then=cache_emptied,
    ),
    Row(
        "CustomerInformation",
        "token cached, clear",
        with_cached(customer(report=False, clear=True)),
        "Accepted",
        then=cache_emptied,
    ),
    Row(
        "CustomerInformation",
        "token charging",
        with_transaction(lambda tx: customer()),
        "Accepted",
        follow_ups=(customer_data("transaction"),),
    ),
    Row(
        "CustomerInformation",
        "token unknown",
        request(customer()),
        "Accepted",
        follow_ups=(customer_data("no data held"),),
    ),
    Row(
        "CustomerInformation",
        "neither report nor clear",
        request(customer(report=False)),
        "Rejected",
        reason="InvalidValue",
    ),
    Row(
        "CustomerInformation",
        "no customer named",
        request({"requestId": 8, "report": True, "clear": False}),
        "Invalid",
        reason="MissingParam",
    ),
    # N: SetVariableMonitoring (N02), NotifyEvent (N07)
    Row(
        "SetVariableMonitoring",
        "threshold below the power drawn",
        with_transaction(lambda tx: monitors(monitor())),
        None,
        follow_ups=(event("Alerting", "Power", cleared=False),),
        then=results("setMonitoringResult", "Accepted", field_="status"),
    ),
    Row(
        "SetVariableMonitoring",
        "threshold, EVSE idle",
        request(monitors(monitor())),
        None,
        then=both(
            results("setMonitoringResult", "Accepted", field_="status"),
            monitors_listed(*HARD_WIRED, 100),
        ),
    ),
    Row(
        "SetVariableMonitoring",
        "periodic",
        request(monitors(monitor(type="Periodic", value=60))),
        None,
        follow_ups=(event("Periodic", "Power"), event("Periodic", "Power")),
        then=results("setMonitoringResult", "Accepted", field_="status"),
        within_s=150,
    ),
    Row(
        "SetVariableMonitoring",
        "delta on a stored value",
        request(monitors({**HEARTBEAT, "type": "Delta", "value": 10, "severity": 5})),
        None,
        then=delta_fires,
    ),
    Row(
        "SetVariableMonitoring",
        "unknown component and variable",
        request(
            monitors(
                monitor(named("NoSuchCtrlr", "Power")),
                monitor(named("OCPPCommCtrlr", "NoSuchVariable")),
            )
        ),
        None,
        then=results("setMonitoringResult", "UnknownComponent", "UnknownVariable", field_="status"),
    ),
    Row(
        "SetVariableMonitoring",
        "threshold on a text",
        request(
            monitors(
                monitor(
                    {
                        "component": {"name": "EVSE", "evse": {"id": 1}},
                        "variable": {"name": "AvailabilityState"},
                    }
                )
            )
        ),
        None,
        then=results("setMonitoringResult", "UnsupportedMonitorType", field_="status"),
    ),
    Row(
        "SetVariableMonitoring",
        "the same monitor twice",
        after(monitoring(monitor()), monitors(monitor())),
        None,
        then=both(
            results("setMonitoringResult", "Duplicate", field_="status"),
            monitors_listed(*HARD_WIRED, 100),
        ),
    ),
    Row(
        "SetVariableMonitoring",
        "periodic, no interval",
        request(monitors(monitor(type="Periodic", value=0))),
        None,
        then=results("setMonitoringResult", "Rejected", field_="status"),
    ),
    Row(
        "SetVariableMonitoring",
        "target delta, no target",
        request(monitors(monitor(HEARTBEAT, type="TargetDelta", value=5))),
        None,
        then=results("setMonitoringResult", "UnsupportedMonitorType", field_="status"),
        versions=ONLY_21,
    ),
    Row(
        "SetVariableMonitoring",
        "periodic, on a stream",
        request(monitors(STREAMED)),
        None,
        follow_ups=(
            Expect(
                "OpenPeriodicEventStream",
                "stream of monitor 100",
                lambda p: p["constantStreamData"]["variableMonitoringId"] == 100,
            ),
            stream_values(5),
        ),
        never=("NotifyEvent",),
        within_s=900,
        versions=ONLY_21,
    ),
    # N: ClearVariableMonitoring (N05)
    Row(
        "ClearVariableMonitoring",
        "a custom monitor",
        custom_then(lambda monitor_id: {"id": [monitor_id]}),
        None,
        then=both(results("clearMonitoringResult", "Accepted", field_="status"), custom_gone),
    ),
    Row(
        "ClearVariableMonitoring",
        "a monitor on a stream",
        streamed_monitor,
        None,
        follow_ups=(Expect("ClosePeriodicEventStream", "the stream", lambda p: p["id"] >= 0),),
        then=results("clearMonitoringResult", "Accepted", field_="status"),
        versions=ONLY_21,
    ),
    Row(
        "ClearVariableMonitoring",
        "unknown and hard-wired monitors",
        request({"id": [99, 1]}),
        None,
        then=both(
            results("clearMonitoringResult", "NotFound", "Rejected", field_="status"),
            monitors_listed(*HARD_WIRED),
        ),
    ),
    # N: SetMonitoringBase (N03), SetMonitoringLevel (N04)
    Row(
        "SetMonitoringBase",
        "factory default, All",
        request({"monitoringBase": "All"}),
        "Accepted",
        then=monitors_listed(1, 2, 3, 4, 5, 6),
    ),
    Row(
        "SetMonitoringBase",
        "a custom monitor, HardWiredOnly",
        after(monitoring(monitor()), {"monitoringBase": "HardWiredOnly"}),
        "Accepted",
        then=monitors_listed(*HARD_WIRED),
    ),
    Row(
        "SetMonitoringBase",
        "All, FactoryDefault",
        after(all_base, {"monitoringBase": "FactoryDefault"}),
        "Accepted",
        then=monitors_listed(*HARD_WIRED),
    ),
    Row(
        "SetMonitoringLevel",
        "a periodic monitor of severity 5, level 4",
        after(periodic_power_monitor, {"severity": 4}),
        "Accepted",
        then=level_is("4"),
    ),
    Row(
        "SetMonitoringLevel",
        "severity out of range",
        request({"severity": 10}),
        "Rejected",
        reason="InvalidValue",
        then=level_is("9"),
    ),
    # N: GetMonitoringReport (N02)
    Row(
        "GetMonitoringReport",
        "factory default",
        request({"requestId": 4}),
        "Accepted",
        follow_ups=(monitoring_report(4, *HARD_WIRED),),
    ),
    Row(
        "GetMonitoringReport",
        "a custom monitor, its variable asked for",
        after(
            monitoring(monitor(EVSE_1_POWER, type="Delta")),
            {
                "requestId": 4,
                "componentVariable": [EVSE_1_POWER],
                "monitoringCriteria": ["DeltaMonitoring"],
            },
        ),
        "Accepted",
        follow_ups=(monitoring_report(4, 100),),
    ),
    Row(
        "GetMonitoringReport",
        "no periodic monitor",
        request({"requestId": 4, "monitoringCriteria": ["PeriodicMonitoring"]}),
        "EmptyResultSet",
    ),
    # N (2.1): GetPeriodicEventStream (N13), AdjustPeriodicEventStream (N14)
    Row(
        "GetPeriodicEventStream",
        "no stream",
        request({}),
        None,
        then=no_streams,
        versions=ONLY_21,
    ),
    Row(
        "GetPeriodicEventStream",
        "a stream open",
        stream_then(lambda stream_id: {}),
        None,
        then=one_stream_listed,
        versions=ONLY_21,
    ),
    Row(
        "AdjustPeriodicEventStream",
        "a stream open",
        stream_then(lambda stream_id: {"id": stream_id, "params": {"interval": 0, "values": 2}}),
        "Accepted",
        follow_ups=(stream_values(2), stream_values(2)),
        within_s=300,
        versions=ONLY_21,
    ),
    Row(
        "AdjustPeriodicEventStream",
        "no such stream",
        request({"id": 42, "params": {"interval": 60}}),
        "Rejected",
        reason="UnknownStream",
        versions=ONLY_21,
    ),
]

#: The CSMS-initiated actions of the blocks this table covers; each must have rows.
#: Actions a block answers that no conformance row covers yet: DataTransfer (P) answers by
#: vendor, and block K's profile actions are covered by its own tests until its rows land.
NO_ROWS_YET = frozenset({"DataTransfer"})


def _all_rows() -> list[Row]:
    """The rows of this file and of every `test_conformance_<block>.py` beside it."""
    rows = list(ROWS)
    for path in sorted(Path(__file__).parent.glob("test_conformance_*.py")):
        module = importlib.import_module(f"tests.station.{path.stem}")
        rows += module.ROWS
    return rows


def test_every_action_a_block_answers_has_rows_and_every_state_is_named_once() -> None:
    rows = _all_rows()
    answered = set(default_registry().handlers)
    assert {row.action for row in rows} == answered - NO_ROWS_YET
    named = [(row.action, row.state) for row in rows]
    assert len(named) == len(set(named)), "two rows for the same action and state"


@pytest.mark.parametrize(("row", "version"), cases(ROWS))
async def test_action_in_state(autojump_clock: MockClock, row: Row, version: OcppVersion) -> None:
    await run_row(row, version)
