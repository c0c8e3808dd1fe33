"""Blocks E and J as the CSMS sees them: the transaction and metering settings, triggers, and
the station's metering clock.

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

Clock-aligned data (J01): every AlignedDataCtrlr.Interval seconds of the simulated wall clock,
counted from midnight UTC of each simulated day (the last interval of a day ends at midnight
when Interval does not divide a day), each EVSE samples AlignedDataCtrlr.Measurands, context
Sample.Clock, stamped on the boundary: an EVSE with a transaction sends them in an Updated
TransactionEvent, triggerReason MeterValueClock (queued offline like any transaction event), one
without sends a MeterValues (only while online: a clock-aligned MeterValues is not a
transaction message and is not queued).  The station has no main meter of its own, so it sends
no evseId 0 values.  The Ended event (J02) carries, before its Transaction.End sample, the
samples taken every SampledDataCtrlr.TxEndedInterval from the start (the first is the start,
Transaction.Begin) and at every AlignedDataCtrlr.TxEndedInterval boundary (Sample.Clock), of
the respective TxEndedMeasurands; a TxEndedInterval of 0 sends the end value alone (the start
value went out in the Started event).  Each controller's Enabled false stops its samples.

These boundaries are one timer per station, the metering clock: a task that sleeps on one
`Alarm` until the earliest boundary due and ends when none is (Interval 0 and no TxEnded
series: the default), so a fleet that asks for no clock-aligned data holds no task and no state
for it.  A changed Interval, TxEndedInterval or Enabled wakes it, and it sleeps again until
the next boundary under the new values: a new Interval takes effect at its next boundary.
Stations that share a boundary (a whole fleet at :00, :15, ...) are woken together by the
shared timer heap of `simulator.clock`, so the boundary costs one trio wake-up and each
station's messages.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ...clock import Alarm, SimClock
from ...link import Answer
from ..config import StationConfig
from ..core import (
    Block,
    Booted,
    StationCore,
    TransactionStarted,
    TriggerTarget,
    VariableChanged,
    refused,
)
from ..device_model import VariableSpec
from ..evse import Evse, is_socket_outlet
from ..measurands import MEASURANDS
from ..transaction import (
    meter_value,
    record_ended_sample,
    sampled_ended_interval_s,
    send_clock_aligned,
    update_transaction,
)

__all__ = ["BLOCK", "aligned_boundary_s"]

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


async def _variable_changed(station: StationCore, event: VariableChanged) -> None:
    key = event.key
    if key == _TX_UPDATED_INTERVAL:
        for evse in station.evses:
            if evse.transaction is not None:
                evse.wake()
    elif key in _METER_CLOCK_KEYS:
        _arm(station)


# -- J01, J02: the metering clock ----------------------------------------------------------------

_DAY_S = 86_400
#: Boundaries this close (simulated seconds) are one instant: the timestamps' resolution.
_SAME_S = 1e-3
#: The variables the metering clock's boundaries follow.
_METER_CLOCK_KEYS = frozenset(
    (component, None, None, None, variable, None)
    for component, variable in (
        ("AlignedDataCtrlr", "Enabled"),
        ("AlignedDataCtrlr", "Interval"),
        ("AlignedDataCtrlr", "TxEndedInterval"),
        ("AlignedDataCtrlr", "TxEndedMeasurands"),
        ("SampledDataCtrlr", "Enabled"),
        ("SampledDataCtrlr", "TxEndedInterval"),
        ("SampledDataCtrlr", "TxEndedMeasurands"),
    )
)
#: What falls due at a boundary: clock-aligned values to send, a clock-aligned sample for the
#: Ended events, a transaction's sample every SampledDataCtrlr.TxEndedInterval.
_ALIGNED, _ALIGNED_ENDED, _SAMPLED_ENDED = "aligned", "aligned-ended", "sampled-ended"
#: (simulated second, what, the EVSE of a transaction's sample, the sample's number).
_Due = tuple[float, str, Evse | None, int]


@dataclass(slots=True)
class _MeterClock:
    """A station's metering clock, made the first time something is to be timed."""

    alarm: Alarm = field(default_factory=Alarm)
    #: Whether its task runs (sleeping or sending).
    running: bool = False
    #: The last boundary handled (simulated seconds), never handled twice.
    done_s: float = -math.inf


def aligned_boundary_s(clock: SimClock, interval_s: int, after_s: float) -> float:
    """The first boundary of `interval_s` clock-aligned intervals after simulated second
    `after_s`: intervals are evenly spaced per day from midnight (UTC) of the simulated wall
    clock, and a day's last interval ends at the next midnight."""
    origin_s = clock.epoch_s(0.0)
    epoch_s = origin_s + after_s
    day_s = math.floor(epoch_s / _DAY_S) * _DAY_S
    count = math.floor((epoch_s - day_s) / interval_s) + 1
    return min(day_s + count * interval_s, day_s + _DAY_S) - origin_s


def _schedule(station: StationCore, after_s: float) -> list[_Due]:
    """The next boundary of each series the station keeps now, after simulated second
    `after_s`; empty when there is nothing to time."""
    model = station.device_model
    clock = station.clock
    due: list[_Due] = []
    if model.boolean("AlignedDataCtrlr", "Enabled"):
        interval_s = model.integer("AlignedDataCtrlr", "Interval")
        if interval_s > 0:
            due.append((aligned_boundary_s(clock, interval_s, after_s), _ALIGNED, None, 0))
        ended_s = model.integer("AlignedDataCtrlr", "TxEndedInterval")
        if (
            ended_s > 0
            and model.members("AlignedDataCtrlr", "TxEndedMeasurands")
            and any(evse.transaction is not None for evse in station.evses)
        ):
            due.append((aligned_boundary_s(clock, ended_s, after_s), _ALIGNED_ENDED, None, 0))
    sampled_s = sampled_ended_interval_s(station)
    if sampled_s > 0:
        for evse in station.evses:
            transaction = evse.transaction
            if transaction is not None:
                # Sample 0 is the start itself, which start_transaction took.
                number = max(1, math.floor((after_s - transaction.started_s) / sampled_s) + 1)
                due_s = transaction.started_s + number * sampled_s
                due.append((due_s, _SAMPLED_ENDED, evse, number))
    return due


def _arm(station: StationCore) -> None:
    """Make the metering clock follow the station's settings and transactions: wake it, or
    start it when something is to be timed."""
    state = station.peek_block_state(BLOCK)
    if state is not None and state.running:
        state.alarm.wake()
        return
    # A clock that starts now takes its first boundary after now.
    after_s = station.clock.sim_now()
    if state is not None:
        after_s = max(after_s, state.done_s)
    if not _schedule(station, after_s):
        return
    state = station.block_state(BLOCK)
    state.done_s = after_s
    state.running = station.spawn(partial(_run_meter_clock, station, state))


async def _run_meter_clock(station: StationCore, state: _MeterClock) -> None:
    """Sleep until the next boundary, handle what falls due there, repeat; end when nothing is
    to be timed.  A boundary missed (the settings changed, the station was busy) is not
    replayed: the clock goes on from now."""
    clock = station.clock
    try:
        while True:
            now_s = clock.sim_now()
            due = _schedule(station, max(state.done_s, now_s - _SAME_S))
            if not due:
                return
            due_s = min(item[0] for item in due)
            if due_s > now_s + _SAME_S:
                await state.alarm.sleep_until(clock.trio_deadline(due_s))
                continue  # the boundary came, or something changed: look again
            state.done_s = due_s
            await _meter_at(station, due_s, [item for item in due if item[0] <= due_s + _SAME_S])
    finally:
        state.running = False


async def _meter_at(station: StationCore, boundary_s: float, due: list[_Due]) -> None:
    """Take every sample due at `boundary_s` at once, then send those that go out."""
    model = station.device_model
    outgoing: list[tuple[Evse, Any, dict[str, Any]]] = []
    for _, what, evse, number in due:
        if what == _ALIGNED:
            measurands = model.members("AlignedDataCtrlr", "Measurands")
            for each in station.evses:
                sample = meter_value(station, each, measurands, "Sample.Clock", at_s=boundary_s)
                if sample["sampledValue"]:
                    outgoing.append((each, each.transaction, sample))
        elif what == _ALIGNED_ENDED:
            for each in station.evses:
                if each.transaction is not None:
                    record_ended_sample(
                        station, each, each.transaction, "Sample.Clock", at_s=boundary_s
                    )
        elif evse is not None and evse.transaction is not None:
            record_ended_sample(
                station,
                evse,
                evse.transaction,
                "Sample.Periodic",
                number=number,
                at_s=boundary_s,
            )
    for evse, transaction, sample in outgoing:
        if transaction is None:
            if station.online:
                await station.call("MeterValues", {"evseId": evse.id, "meterValue": [sample]})
        elif evse.transaction is transaction:
            await send_clock_aligned(station, evse, sample, boundary_s)


async def _booted(station: StationCore, event: Booted) -> None:
    _arm(station)


def _transaction_started(station: StationCore, event: TransactionStarted) -> None:
    _arm(station)


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
    # 0: the Ended event carries the end value alone (the metering clock takes the others).
    yield VariableSpec(
        sampled, "TxEndedInterval", "integer", "0", unit="s", min_limit=0, max_limit=_DAY_S
    )

    aligned = "AlignedDataCtrlr"
    # Interval 0: no clock-aligned values until the CSMS (or the scenario) asks for them; the
    # aligned measurands are also what a triggered MeterValues samples.
    yield VariableSpec(aligned, "Enabled", "boolean", "true")
    yield VariableSpec(aligned, "Interval", "integer", "0", unit="s", min_limit=0, max_limit=_DAY_S)
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
        "Energy.Active.Import.Register",
        values_list=measurands,
    )
    yield VariableSpec(
        aligned, "TxEndedInterval", "integer", "0", unit="s", min_limit=0, max_limit=_DAY_S
    )


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


BLOCK: Block[_MeterClock] = Block(
    letter="E",
    name="transactions",
    handlers={"GetTransactionStatus": get_transaction_status},
    triggers={"TransactionEvent": _trigger_transaction_event, "MeterValues": _trigger_meter_values},
    variables=_variables,
    reactions={
        VariableChanged: _variable_changed,
        Booted: _booted,
        TransactionStarted: _transaction_started,
    },
    new_state=_MeterClock,
)
