"""Block F, remote control: remote start and stop (F01-F04) and TriggerMessage (F06).

A remote start only claims an EVSE and records the request; the EVSE's session task does the
rest -- starting the transaction, waiting for the EV to plug in -- because that task alone
drives the EVSE, so two sources can never start two sessions on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..link import Answer
from .availability import report_status_changes
from .ev_driver import remote_visit
from .evse import RemoteStart
from .transactions import end_transaction, meter_value, update_transaction

if TYPE_CHECKING:
    from .evse import Evse
    from .station import Station

__all__ = ["HANDLERS"]


def _rejected(reason_code: str, info: str) -> Answer:
    return Answer(
        {"status": "Rejected", "statusInfo": {"reasonCode": reason_code, "additionalInfo": info}}
    )


def _free_for_remote_start(station: Station, evse: Evse) -> bool:
    return (
        station.operative
        and evse.operative
        and evse.remote_start is None
        and (evse.transaction is None or evse.transaction.id_token is None)
    )


def request_start_transaction(station: Station, payload: Mapping[str, Any]) -> Answer:
    evse_id = payload.get("evseId")
    if evse_id is not None:
        evse = station.evse(evse_id)
        if evse is None:
            return _rejected("UnknownEvse", f"this station has EVSEs 1..{len(station.evses)}")
        if not _free_for_remote_start(station, evse):
            return _rejected(
                "TxInProgress" if evse.transaction else "NotAvailable",
                f"EVSE {evse_id} cannot start a transaction now",
            )
    else:
        free = [
            evse
            for evse in station.evses
            if _free_for_remote_start(station, evse) and evse.visit is None
        ]
        if not free:
            return _rejected("NotAvailable", "no EVSE of this station is free")
        evse = free[0]
    token = payload["idToken"]
    evse.remote_start = RemoteStart(token["idToken"], token["type"], payload["remoteStartId"])
    response: dict[str, Any] = {"status": "Accepted"}
    if evse.transaction is not None:
        response["transactionId"] = evse.transaction.id
    if evse.visit is not None:
        evse.wake()  # the EV is here: its visit task picks the remote start up
        return Answer(response)

    async def driver_comes(evse: Evse = evse) -> None:
        await remote_visit(station, evse)

    return Answer(response, then=driver_comes)


def request_stop_transaction(station: Station, payload: Mapping[str, Any]) -> Answer:
    transaction_id = payload["transactionId"]
    for evse in station.evses:
        if evse.transaction is not None and evse.transaction.id == transaction_id:

            async def stop(evse: Evse = evse) -> None:
                await end_transaction(station, evse, "RemoteStop", "Remote")

            return Answer({"status": "Accepted"}, then=stop)
    return _rejected("TxNotFound", f"no transaction {transaction_id} on this station")


_TRIGGERABLE = (
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "MeterValues",
    "TransactionEvent",
    "FirmwareStatusNotification",
    "LogStatusNotification",
)


def trigger_message(station: Station, payload: Mapping[str, Any]) -> Answer:
    requested = payload["requestedMessage"]
    if requested not in _TRIGGERABLE:
        return Answer({"status": "NotImplemented"})
    target = payload.get("evse")
    evses = station.evses
    if target is not None and target.get("id", 0) != 0:
        evse = station.evse(target["id"])
        if evse is None:
            return _rejected("UnknownEvse", f"this station has EVSEs 1..{len(station.evses)}")
        evses = [evse]
    connector_id = target.get("connectorId") if target else None

    if requested == "BootNotification":
        if station.registration == "Accepted":
            return _rejected("NotEnabled", "the station is already accepted")
        station.wake_boot()
        return Answer({"status": "Accepted"})
    if requested == "TransactionEvent":
        busy = [evse for evse in evses if evse.transaction is not None]
        if not busy:
            return _rejected("TxNotFound", "no transaction is running")

        async def send_transaction_events() -> None:
            for evse in busy:
                await update_transaction(station, evse, "Trigger", with_meter=True)

        return Answer({"status": "Accepted"}, then=send_transaction_events)

    async def send() -> None:
        if requested == "Heartbeat":
            await station.call("Heartbeat", {}, before_sync=True)
        elif requested == "StatusNotification":
            for evse in evses:
                for connector in evse.connectors:
                    if connector_id is not None and connector.id != connector_id:
                        continue
                    status = station.connector_status(evse.id, connector.id)
                    response = await station.call(
                        "StatusNotification",
                        {
                            "timestamp": station.clock.timestamp(),
                            "connectorStatus": status,
                            "evseId": evse.id,
                            "connectorId": connector.id,
                        },
                        before_sync=True,
                    )
                    if response is not None:
                        connector.reported_status = status
            await report_status_changes(station)
        elif requested == "MeterValues":
            measurands = station.device_model.members("AlignedDataCtrlr", "Measurands")
            for evse in evses:
                await station.call(
                    "MeterValues",
                    {
                        "evseId": evse.id,
                        "meterValue": [meter_value(station, evse, measurands, "Trigger")],
                    },
                    before_sync=True,
                )
        elif requested in ("FirmwareStatusNotification", "LogStatusNotification"):
            await station.call(requested, {"status": "Idle"}, before_sync=True)

    return Answer({"status": "Accepted"}, then=send)


HANDLERS = {
    "RequestStartTransaction": request_start_transaction,
    "RequestStopTransaction": request_stop_transaction,
    "TriggerMessage": trigger_message,
}
