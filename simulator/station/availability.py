"""Block G, availability: connector status and ChangeAvailability.

G01      StatusNotification (or NotifyEvent on the Connector's AvailabilityState, as OCPP 2.1
         prefers; the scenario chooses either or both) whenever a connector's status changes.
         The station remembers what the CSMS last heard, so after a reconnect it reports only
         the connectors whose status changed meanwhile.
G03-G04  ChangeAvailability of the station, an EVSE or a connector; Scheduled when a
         transaction runs there, applied when it ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..link import Answer, FollowUp

if TYPE_CHECKING:
    from .evse import Evse
    from .station import Station

__all__ = ["HANDLERS", "apply_scheduled_availability", "report_status_changes"]


async def report_status_changes(station: Station) -> None:
    """Tell the CSMS about every connector whose status differs from what it last heard."""
    if not station.synced:
        return
    how = station.config.connector_status_report
    for evse in station.evses:
        for connector in evse.connectors:
            status = station.connector_status(evse.id, connector.id)
            if status == connector.reported_status:
                continue
            timestamp = station.clock.timestamp()
            if how != "notify_event":
                await station.call(
                    "StatusNotification",
                    {
                        "timestamp": timestamp,
                        "connectorStatus": status,
                        "evseId": evse.id,
                        "connectorId": connector.id,
                    },
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
                # The connection dropped midway: report the rest after the next boot.
                return
            connector.reported_status = status


def change_availability(station: Station, payload: Mapping[str, Any]) -> Answer:
    operative = payload["operationalStatus"] == "Operative"
    target = payload.get("evse")
    evse_id = target["id"] if target else 0
    connector_id = target.get("connectorId") if target else None
    if evse_id == 0:
        busy = [evse for evse in station.evses if evse.transaction is not None]
        if busy and not operative:
            # The idle EVSEs go out of service now, the busy ones when their transaction ends.
            for each in station.evses:
                if each.transaction is None:
                    each.operative = False
                else:
                    each.scheduled_operative = False
            return Answer({"status": "Scheduled"}, then=_report(station))
        station.operative = operative
        return Answer({"status": "Accepted"}, then=_report(station))
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
    if evse.transaction is not None and not operative:
        evse.scheduled_operative = False
        return Answer({"status": "Scheduled"})
    if connector_id is None:
        evse.operative = operative
    else:
        connector = evse.connector(connector_id)
        assert connector is not None
        connector.operative = operative
    return Answer({"status": "Accepted"}, then=_report(station))


def _report(station: Station) -> FollowUp:
    async def report() -> None:
        await report_status_changes(station)

    return report


def apply_scheduled_availability(station: Station, evse: Evse) -> None:
    """Apply a ChangeAvailability that waited for `evse`'s transaction to end (G03.FR.05)."""
    if evse.scheduled_operative is not None:
        evse.operative = evse.scheduled_operative
        evse.scheduled_operative = None


HANDLERS = {"ChangeAvailability": change_availability}
