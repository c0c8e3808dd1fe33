"""Block G, availability: connector status and ChangeAvailability.

G01      StatusNotification (or NotifyEvent on the Connector's AvailabilityState, as OCPP 2.1
         prefers; the scenario chooses either or both) whenever a connector's status changes.
         The station remembers what the CSMS last heard, so after a plain reconnect it reports
         only the connectors whose status changed meanwhile; after every BootNotification
         (power-up, reboot) it reports them all, since a CSMS starts afresh on a boot.
G03-G04  ChangeAvailability of the station, an EVSE or a connector.  An EVSE or connector
         whose EVSE has a transaction answers Scheduled to Inoperative and changes when the
         transaction ends (the connector asked for, not its EVSE); the whole station answers
         Scheduled while any transaction runs, takes its idle EVSEs out of service at once and
         the busy ones as their transactions end.  A newer request for the same station, EVSE
         or connector replaces a scheduled one.  The three levels are independent (Operative
         on the station brings back each EVSE's and connector's own state) and, like a
         scheduled change, outlive reboots: a station keeps them across a Reset.

The block reacts to `Booted` and `ConnectorStatusChanged` by reporting what changed, and to
`TransactionEnded` by applying a ChangeAvailability that waited for the transaction.
TriggerMessage StatusNotification reports the connectors asked for, changed or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...link import Answer, FollowUp
from ..core import (
    Block,
    Booted,
    ConnectorStatusChanged,
    StationCore,
    TransactionEnded,
    TriggerTarget,
)
from ..evse import Connector, Evse

__all__ = ["BLOCK"]


def status_notification(
    station: StationCore, evse_id: int, connector_id: int, status: str, timestamp: str | None = None
) -> dict[str, Any]:
    """The StatusNotificationRequest for one connector now (stamped `timestamp` when the
    caller has stamped the change already)."""
    return {
        "timestamp": station.clock.timestamp() if timestamp is None else timestamp,
        "connectorStatus": status,
        "evseId": evse_id,
        "connectorId": connector_id,
    }


async def report_status_changes(station: StationCore) -> None:
    """Tell the CSMS about every connector whose status differs from what it last heard.

    A status counts as heard once its report is on the way, so a report started meanwhile (by
    another change) sends only what is newer, after it; a report that the connection's loss
    stops counts as unheard, and goes out after the next boot.
    """
    if not station.synced:
        return
    how = station.config.connector_status_report
    for evse in station.evses:
        for connector in evse.connectors:
            status = station.connector_status(evse.id, connector.id)
            if status == connector.reported_status:
                continue
            connector.reported_status = status
            timestamp = station.clock.timestamp()
            if how != "notify_event":
                await station.call(
                    "StatusNotification",
                    status_notification(station, evse.id, connector.id, status, timestamp),
                )
            if how != "status_notification":
                await station.call(
                    "NotifyEvent",
                    {
                        "generatedAt": timestamp,
                        "seqNo": 0,
                        "eventData": [
                            {
                                "eventId": station.next_event_id(),
                                "timestamp": timestamp,
                                "trigger": "Delta",
                                "actualValue": status,
                                "component": {
                                    "name": "Connector",
                                    "evse": {"id": evse.id, "connectorId": connector.id},
                                },
                                "variable": {"name": "AvailabilityState"},
                                "eventNotificationType": "HardWiredNotification",
                            }
                        ],
                    },
                )
            if not station.synced:
                # The connection dropped midway: report this one and the rest after the boot.
                connector.reported_status = None
                return


def change_availability(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    operative = payload["operationalStatus"] == "Operative"
    target = payload.get("evse")
    evse_id = target["id"] if target else 0
    connector_id = target.get("connectorId") if target else None
    if evse_id == 0:
        busy = any(evse.transaction is not None for evse in station.evses)
        scheduled = busy and station.operative and not operative
        # Out of service at once: no new transaction starts anywhere, the idle EVSEs report
        # Unavailable now and the busy ones when their transactions end (G04).
        station.operative = operative
        return Answer(
            {"status": "Scheduled" if scheduled else "Accepted"}, then=_report_after(station)
        )
    evse = station.evse(evse_id)
    if evse is None or (connector_id is not None and evse.connector(connector_id) is None):
        return Answer(
            {
                "status": "Rejected",
                "statusInfo": {
                    "reasonCode": "UnknownEvse" if evse is None else "UnknownConnectorId",
                    "additionalInfo": (
                        f"this station has EVSEs 1..{len(station.evses)}"
                        if evse is None
                        else f"EVSE {evse.id} has connectors 1..{len(evse.connectors)}"
                    ),
                },
            }
        )
    unit: Evse | Connector | None = evse if connector_id is None else evse.connector(connector_id)
    assert unit is not None
    if evse.transaction is not None and unit.operative and not operative:
        # A transaction on this EVSE, at this connector or another: the change waits for it.
        unit.scheduled_operative = False
        return Answer({"status": "Scheduled"})
    unit.scheduled_operative = None
    unit.operative = operative
    return Answer({"status": "Accepted"}, then=_report_after(station))


def _report_after(station: StationCore) -> FollowUp:
    """After the answer: announce the change to every block (this one reports it), since
    others keep state that depends on availability."""

    async def report() -> None:
        await station.emit(ConnectorStatusChanged())

    return report


async def _apply_scheduled(station: StationCore, event: TransactionEnded) -> None:
    """Apply the ChangeAvailability requests that waited for this EVSE's transaction, on the
    EVSE and on each of its connectors (G03), then report whatever the end of the transaction
    changed."""
    evse = event.evse
    units: list[Evse | Connector] = [evse, *evse.connectors]
    for unit in units:
        if unit.scheduled_operative is not None:
            unit.operative = unit.scheduled_operative
            unit.scheduled_operative = None
    await report_status_changes(station)


async def _booted(station: StationCore, event: Booted) -> None:
    """Report the connectors: all of them after a BootNotification, since the CSMS then
    forgets what it heard; after a plain reconnect only those that changed meanwhile."""
    if event.registered:
        for evse in station.evses:
            for connector in evse.connectors:
                connector.reported_status = None
    await report_status_changes(station)


async def _report(station: StationCore, event: object) -> None:
    await report_status_changes(station)


def _trigger_status(station: StationCore, target: TriggerTarget) -> Answer:
    async def send() -> None:
        for evse in target.evses:
            for connector in evse.connectors:
                if target.connector_id is not None and connector.id != target.connector_id:
                    continue
                status = station.connector_status(evse.id, connector.id)
                response = await station.call(
                    "StatusNotification",
                    status_notification(station, evse.id, connector.id, status),
                    before_sync=True,
                )
                if response is not None:
                    connector.reported_status = status
        await report_status_changes(station)

    return Answer({"status": "Accepted"}, then=send)


BLOCK: Block[None] = Block(
    letter="G",
    name="availability",
    handlers={"ChangeAvailability": change_availability},
    follow_ups={"ChangeAvailability": ("StatusNotification",)},
    triggers={"StatusNotification": _trigger_status},
    reactions={
        Booted: _booted,
        ConnectorStatusChanged: _report,
        TransactionEnded: _apply_scheduled,
    },
)
