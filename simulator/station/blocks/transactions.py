"""Blocks E and J as the CSMS sees them: the transaction and metering settings, and triggers.

The transaction machinery itself (events, seqNo, delivery) is the station's own
(`station/transaction.py`), since the EV driver and other blocks start, update and end
transactions; this block owns the variables that steer it -- TxCtrlr, SampledDataCtrlr,
AlignedDataCtrlr and the TransactionEvent retry settings -- makes a triggered
TransactionEvent or MeterValues, and answers GetTransactionStatus (E14) from the running
transactions and the offline queue.

A new TxUpdatedInterval wakes every EVSE with a transaction, so the next sample comes at the
new interval after the last one (at once if that moment has passed), not at the old deadline.

TxStartPoint and TxStopPoint are writable and read at each condition (E01, E06), so a new
value applies from the next condition that changes; their valuesList names the points the
station supports: every one but DataSigned, since its meter signs no readings.
StopTxOnEVSideDisconnect (E10) is read when a cable leaves an EV, and UnlockOnEVSideDisconnect
is writable only on a station with a socket outlet: with cables fixed to the station there is
no cable of the driver's to lock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ...link import Answer
from ..config import StationConfig
from ..core import Block, StationCore, TriggerTarget, VariableChanged, refused
from ..device_model import VariableSpec
from ..evse import is_socket_outlet
from ..measurands import MEASURANDS
from ..transaction import meter_value, update_transaction

__all__ = ["BLOCK"]

_TX_UPDATED_INTERVAL = ("SampledDataCtrlr", None, None, None, "TxUpdatedInterval", None)
#: The points the station starts and stops transactions on (TxStartPoint, TxStopPoint): all
#: that OCPP names but DataSigned, a signed meter reading, which this station's meter never
#: makes (`ev_driver` plays each of the others).
_TX_POINTS = (
    "ParkingBayOccupancy",
    "EVConnected",
    "Authorized",
    "PowerPathClosed",
    "EnergyTransfer",
)


def _trigger_transaction_event(station: StationCore, target: TriggerTarget) -> Answer:
    busy = [evse for evse in target.evses if evse.transaction is not None]
    if not busy:
        return refused("TxNotFound", "no transaction is running")

    async def send() -> None:
        for evse in busy:
            transaction = evse.transaction
            if transaction is None:
                continue  # it ended meanwhile
            # F06.FR.07: the event carries a chargingState, Idle while no EV is connected.
            await update_transaction(
                station,
                evse,
                "Trigger",
                charging_state=transaction.charging_state or "Idle",
                with_meter=True,
            )

    return Answer({"status": "Accepted"}, then=send)


def _trigger_meter_values(station: StationCore, target: TriggerTarget) -> Answer:
    async def send() -> None:
        measurands = station.device_model.members("AlignedDataCtrlr", "Measurands")
        for evse in target.evses:
            await station.call(
                "MeterValues",
                {
                    "evseId": evse.id,
                    "meterValue": [meter_value(station, evse, measurands, "Trigger")],
                },
                before_sync=True,
            )

    return Answer({"status": "Accepted"}, then=send)


async def _interval_changed(station: StationCore, event: VariableChanged) -> None:
    if event.key == _TX_UPDATED_INTERVAL:
        for evse in station.evses:
            if evse.transaction is not None:
                evse.wake()


def _variables(config: StationConfig) -> Iterator[VariableSpec]:
    measurands = tuple(MEASURANDS)
    comm = "OCPPCommCtrlr"
    yield VariableSpec(
        comm,
        "MessageAttempts",
        "integer",
        "3",
        variable_instance="TransactionEvent",
        min_limit=0,
        max_limit=10,
    )
    yield VariableSpec(
        comm,
        "MessageAttemptInterval",
        "integer",
        "60",
        variable_instance="TransactionEvent",
        unit="s",
        min_limit=0,
        max_limit=3600,
    )
    # Only a socket outlet has a cable of the driver's to keep locked (ev_driver, E10).
    sockets = any(is_socket_outlet(kind) for evse in config.evses for kind in evse.connector_types)
    yield VariableSpec(
        comm,
        "UnlockOnEVSideDisconnect",
        "boolean",
        "true",
        "ReadWrite" if sockets else "ReadOnly",
    )

    tx = "TxCtrlr"
    yield VariableSpec(
        tx,
        "EVConnectionTimeOut",
        "integer",
        str(config.ev_connection_timeout_s),
        unit="s",
        min_limit=1,
    )
    yield VariableSpec(tx, "StopTxOnEVSideDisconnect", "boolean", "true")
    # What a TransactionEvent answer that deauthorizes the IdToken does (E05): the
    # authorization block acts on both.
    yield VariableSpec(tx, "StopTxOnInvalidId", "boolean", "true")
    yield VariableSpec(tx, "MaxEnergyOnInvalidId", "integer", "0", unit="Wh", min_limit=0)
    yield VariableSpec(tx, "TxBeforeAcceptedEnabled", "boolean", "false", "ReadOnly")
    yield VariableSpec(
        tx,
        "TxStartPoint",
        "MemberList",
        ",".join(config.tx_start_points),
        values_list=_TX_POINTS,
    )
    yield VariableSpec(
        tx, "TxStopPoint", "MemberList", "EVConnected,Authorized", values_list=_TX_POINTS
    )

    sampled = "SampledDataCtrlr"
    yield VariableSpec(sampled, "Enabled", "boolean", "true")
    yield VariableSpec(
        sampled,
        "TxUpdatedInterval",
        "integer",
        str(config.meter_interval_s),
        unit="s",
        min_limit=0,
    )
    yield VariableSpec(
        sampled,
        "TxUpdatedMeasurands",
        "MemberList",
        # A bidirectional station meters what flows back too (Q, J: export measurands).
        "Energy.Active.Import.Register,Power.Active.Import,SoC"
        + (
            ",Energy.Active.Export.Register,Power.Active.Export"
            if any(evse.bidirectional for evse in config.evses)
            else ""
        ),
        values_list=measurands,
    )
    yield VariableSpec(
        sampled,
        "TxStartedMeasurands",
        "MemberList",
        "Energy.Active.Import.Register",
        values_list=measurands,
    )
    yield VariableSpec(
        sampled,
        "TxEndedMeasurands",
        "MemberList",
        "Energy.Active.Import.Register",
        values_list=measurands,
    )
    # The Ended event carries one sample at the end, no intervals: TxEndedInterval 0.
    yield VariableSpec(sampled, "TxEndedInterval", "integer", "0", "ReadOnly", unit="s")

    aligned = "AlignedDataCtrlr"
    # No clock-aligned meter values are sent (Interval 0); the aligned measurands are what a
    # triggered MeterValues samples.
    yield VariableSpec(aligned, "Enabled", "boolean", "true", "ReadOnly")
    yield VariableSpec(aligned, "Interval", "integer", "0", "ReadOnly", unit="s")
    yield VariableSpec(
        aligned,
        "Measurands",
        "MemberList",
        "Energy.Active.Import.Register,Power.Active.Import",
        values_list=measurands,
    )
    yield VariableSpec(
        aligned,
        "TxEndedMeasurands",
        "MemberList",
        "",
        "ReadOnly",
        values_list=measurands,
    )
    yield VariableSpec(aligned, "TxEndedInterval", "integer", "0", "ReadOnly", unit="s")


# -- E14: GetTransactionStatus -------------------------------------------------------------------


def get_transaction_status(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    """Whether a transaction still runs here and whether its TransactionEvents still wait in
    the offline queue (any transaction's, when the request names none), so a CSMS that sees a
    gap in the seqNos knows whether to wait for the rest (E14).  A transaction this station
    does not know is neither ongoing nor queued."""
    queue = station.tx_queue
    transaction_id = payload.get("transactionId")
    if transaction_id is None:
        return Answer({"messagesInQueue": bool(queue)})
    ongoing = any(
        evse.transaction is not None and evse.transaction.id == transaction_id
        for evse in station.evses
    )
    queued = any(event["transactionInfo"]["transactionId"] == transaction_id for event in queue)
    return Answer({"ongoingIndicator": ongoing, "messagesInQueue": queued})


BLOCK: Block[None] = Block(
    letter="E",
    name="transactions",
    handlers={"GetTransactionStatus": get_transaction_status},
    triggers={"TransactionEvent": _trigger_transaction_event, "MeterValues": _trigger_meter_values},
    variables=_variables,
    reactions={VariableChanged: _interval_changed},
)
