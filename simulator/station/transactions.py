"""Blocks E and J: transactions and their meter values.

A transaction starts when the first of TxStartPoint's conditions becomes true (the EV plugged
in, the driver authorized, or both for PowerPathClosed) and ends when the EV leaves, the CSMS
stops it, or a reset ends it.  Each TransactionEvent carries a seqNo that runs from 0 without
gaps over the transaction, so the CSMS can tell a lost message from a late one, and the
measurands that SampledDataCtrlr names for the Started, Updated and Ended events.

Delivery (E13): a TransactionEvent answered with a CALLERROR or not answered at all is sent
again, up to MessageAttempts times, MessageAttemptInterval times the attempt number apart; one
that never gets through is dropped and counted.  A lost connection is not a failed attempt:
the event waits in the queue for the next connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from ..link import Link
from ..ocpp import CallErrorReceived, CallTimeout, LinkClosed

if TYPE_CHECKING:
    from .evse import Evse
    from .station import Station

__all__ = [
    "Transaction",
    "deliver_transaction_event",
    "end_transaction",
    "meter_value",
    "start_transaction",
    "update_transaction",
]

_UNITS = {
    "Energy.Active.Import.Register": "Wh",
    "Energy.Active.Export.Register": "Wh",
    "Power.Active.Export": "W",
    "Power.Active.Import": "W",
    "Power.Offered": "W",
    "SoC": "Percent",
    "Current.Import": "A",
    "Current.Offered": "A",
    "Voltage": "V",
}
#: Phase-to-neutral voltage of the simulated grid, for current and voltage measurands.
NOMINAL_VOLTAGE_V = 230.0


@dataclass(slots=True)
class Transaction:
    id: str
    started_s: float
    seq_no: int = 0
    charging_state: str | None = None
    id_token: dict[str, str] | None = None
    remote_start_id: int | None = None
    #: The connector the transaction's EV used (1 until an EV plugs in).
    connector_id: int = 1

    def next_seq_no(self) -> int:
        seq_no = self.seq_no
        self.seq_no += 1
        return seq_no


def meter_value(
    station: Station, evse: Evse, measurands: tuple[str, ...], context: str
) -> dict[str, Any]:
    """One MeterValueType of `evse` now, with the measurands asked for."""
    now_s = station.clock.sim_now()
    power_w = evse.power_w
    sampled = []
    for measurand in measurands:
        value: float
        location = None
        if measurand == "Energy.Active.Import.Register":
            value = round(evse.register_wh(now_s), 1)
        elif measurand == "Energy.Active.Export.Register":
            value = round(evse.export_register_wh(now_s), 1)
        elif measurand == "Power.Active.Import":
            value = round(max(power_w, 0.0), 1)
        elif measurand == "Power.Active.Export":
            value = round(max(-power_w, 0.0), 1)
        elif measurand == "SoC":
            if evse.session is None:
                continue
            value = round(evse.session.soc_at(now_s) * 100, 1)
            location = "EV"
        elif measurand == "Current.Import":
            value = round(max(power_w, 0.0) / (NOMINAL_VOLTAGE_V * evse.phases), 2)
        elif measurand == "Current.Offered":
            value = round(evse.max_power_w / (NOMINAL_VOLTAGE_V * evse.phases), 2)
        elif measurand == "Power.Offered":
            value = evse.max_power_w
        elif measurand == "Voltage":
            value = NOMINAL_VOLTAGE_V
        else:
            continue
        sample: dict[str, Any] = {
            "value": value,
            "context": context,
            "measurand": measurand,
            "unitOfMeasure": {"unit": _UNITS[measurand]},
        }
        if location is not None:
            sample["location"] = location
        sampled.append(sample)
    return {"timestamp": station.clock.timestamp(), "sampledValue": sampled}


def _event(
    station: Station,
    evse: Evse,
    transaction: Transaction,
    event_type: str,
    trigger_reason: str,
    *,
    measurands_variable: str | None,
    context: str,
    stopped_reason: str | None = None,
    include_token: bool = False,
) -> dict[str, Any]:
    info: dict[str, Any] = {"transactionId": transaction.id}
    if transaction.charging_state is not None:
        info["chargingState"] = transaction.charging_state
    if stopped_reason is not None:
        info["stoppedReason"] = stopped_reason
    if transaction.remote_start_id is not None and event_type == "Started":
        info["remoteStartId"] = transaction.remote_start_id
    payload: dict[str, Any] = {
        "eventType": event_type,
        "timestamp": station.clock.timestamp(),
        "triggerReason": trigger_reason,
        "seqNo": transaction.next_seq_no(),
        "transactionInfo": info,
        "evse": {"id": evse.id, "connectorId": transaction.connector_id},
    }
    if include_token and transaction.id_token is not None:
        payload["idToken"] = transaction.id_token
    if measurands_variable is not None:
        measurands = station.device_model.members("SampledDataCtrlr", measurands_variable)
        if measurands:
            sample = meter_value(station, evse, measurands, context)
            if sample["sampledValue"]:
                payload["meterValue"] = [sample]
    return payload


async def start_transaction(
    station: Station,
    evse: Evse,
    trigger_reason: str,
    *,
    id_token: dict[str, str] | None = None,
    remote_start_id: int | None = None,
) -> Transaction:
    transaction = Transaction(
        station.next_transaction_id(),
        station.clock.sim_now(),
        charging_state="EVConnected" if evse.plugged_connector is not None else None,
        id_token=id_token,
        remote_start_id=remote_start_id,
        connector_id=evse.plugged_connector or 1,
    )
    evse.transaction = transaction
    payload = _event(
        station,
        evse,
        transaction,
        "Started",
        trigger_reason,
        measurands_variable="TxStartedMeasurands",
        context="Transaction.Begin",
        include_token=id_token is not None,
    )
    station.stats.transaction_started()
    await station.send_transaction_event(payload)
    return transaction


async def update_transaction(
    station: Station,
    evse: Evse,
    trigger_reason: str,
    *,
    charging_state: str | None = None,
    include_token: bool = False,
    with_meter: bool = False,
) -> None:
    transaction = evse.transaction
    if transaction is None:
        return
    if charging_state is not None:
        transaction.charging_state = charging_state
    if evse.plugged_connector is not None:
        transaction.connector_id = evse.plugged_connector
    if with_meter:
        station.stats.energy_delivered(evse.unaccounted_wh(station.clock.sim_now()))
    payload = _event(
        station,
        evse,
        transaction,
        "Updated",
        trigger_reason,
        measurands_variable="TxUpdatedMeasurands" if with_meter else None,
        context="Sample.Periodic" if trigger_reason == "MeterValuePeriodic" else "Trigger",
        include_token=include_token,
    )
    await station.send_transaction_event(payload)


async def end_transaction(
    station: Station, evse: Evse, trigger_reason: str, stopped_reason: str
) -> None:
    """End `evse`'s transaction; the EVSE stops delivering power at once."""
    from .availability import apply_scheduled_availability, report_status_changes

    transaction = evse.transaction
    if transaction is None:
        return
    evse.transaction = None
    if station.profiles is not None:
        station.profiles.clear_transaction(transaction.id)
    now_s = station.clock.sim_now()
    if evse.session is not None:
        evse.session.set_enabled(False, now_s)
    station.stats.energy_delivered(evse.unaccounted_wh(now_s))
    if evse.plugged_connector is not None:
        transaction.charging_state = "EVConnected"
    else:
        transaction.charging_state = None
    payload = _event(
        station,
        evse,
        transaction,
        "Ended",
        trigger_reason,
        measurands_variable="TxEndedMeasurands",
        context="Transaction.End",
        stopped_reason=stopped_reason,
    )
    station.stats.transaction_ended(stopped_reason)
    evse.wake()
    await station.send_transaction_event(payload)
    apply_scheduled_availability(station, evse)
    await report_status_changes(station)
    if station.reset_scheduled and not station.transactions():
        station.reboot("RemoteReset")


async def deliver_transaction_event(station: Station, link: Link, payload: dict[str, Any]) -> bool:
    """Send one queued TransactionEvent (E13); False when the connection went first."""
    model = station.device_model
    attempts = max(1, model.integer("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent"))
    interval_s = model.integer("OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent")
    for attempt in range(1, attempts + 1):
        try:
            await link.call("TransactionEvent", payload)
            return True
        except LinkClosed:
            return False
        except (CallErrorReceived, CallTimeout):
            if attempt < attempts:
                await trio.sleep(station.clock.trio_duration(interval_s * attempt))
    station.stats.transaction_event_dropped()
    return True
