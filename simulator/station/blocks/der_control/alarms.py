"""What a station says when its grid connection leaves normal limits (R05).

The world tells a station that a DER event began or ended (`GridEvent`); an online OCPP 2.1
station reports it with NotifyDERAlarm (R05), the start and, with `alarmEnded`, the end.  An
OCPP 2.0.1 station has no DER messages and reports a monitored grid value crossing its limit
instead: a NotifyEvent from a hard-wired monitor on ElectricalFeed (the standardized physical
component of the grid connection, present in 2.0.1), variable Frequency or ACVoltage, trigger
Alerting, `cleared` at the end.  A station that is offline when the event begins or ends does
not report it later: the alarm described a moment that has passed.
"""

from __future__ import annotations

from typing import Any

from fleetsim.grid_models import DerEvent

from ...core import GridEvent, StationCore

__all__ = ["der_alarm_payload", "der_event_data", "report_grid_event"]

#: The device-model variable whose monitor sees each kind of excursion.
_VARIABLE = {"Frequency": "Frequency", "Voltage": "ACVoltage"}


def der_alarm_payload(event: DerEvent, timestamp: str, *, ended: bool) -> dict[str, Any]:
    """The NotifyDERAlarm request (OCPP 2.1) for the start or, with `ended`, the end of `event`."""
    return {
        "controlType": event.control,
        "gridEventFault": event.kind,
        "alarmEnded": ended,
        "timestamp": timestamp,
        "extraInfo": event.describe(),
    }


def der_event_data(
    event: DerEvent,
    event_id: int,
    timestamp: str,
    *,
    ended: bool,
    actual_value: float | None = None,
    component: str = "ElectricalFeed",
) -> dict[str, Any]:
    """One NotifyEvent `eventData` entry reporting `event`, valid in OCPP 2.0.1 and 2.1.

    `actualValue` is `actual_value` when given, else the event's value; on the clearing entry,
    pass the measurement after recovery if the caller knows it.
    """
    if isinstance(event_id, bool) or not isinstance(event_id, int) or event_id < 0:
        raise ValueError(f"event_id must be a non-negative integer, got {event_id!r}")
    value = event.value if actual_value is None else actual_value
    variable = _VARIABLE["Frequency" if event.is_frequency else "Voltage"]
    return {
        "eventId": event_id,
        "timestamp": timestamp,
        "trigger": "Alerting",
        "actualValue": f"{value:g}",
        "cleared": ended,
        "techCode": event.kind,
        "techInfo": event.describe(),
        "eventNotificationType": "HardWiredMonitor",
        "component": {"name": component},
        "variable": {"name": variable},
    }


async def report_grid_event(station: StationCore, grid_event: GridEvent) -> None:
    """NotifyDERAlarm (2.1) or a NotifyEvent (2.0.1) for the start or the end of an event."""
    if not station.online:
        return
    timestamp = station.clock.timestamp()
    event, ended = grid_event.event, grid_event.ended
    if station.config.ocpp_version == "2.1":
        await station.call("NotifyDERAlarm", der_alarm_payload(event, timestamp, ended=ended))
        return
    entry = der_event_data(event, station.next_event_id(), timestamp, ended=ended)
    await station.call("NotifyEvent", {"generatedAt": timestamp, "seqNo": 0, "eventData": [entry]})
