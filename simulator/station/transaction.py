"""A transaction's life on the station: its TransactionEvents and their delivery (E, J).

A transaction starts when the first of TxStartPoint's conditions becomes true and ends when the
first of TxStopPoint's stops being true (E01, E06: `ev_driver` plays the conditions), when the
CSMS stops it, or when a reset ends it.  When its authorization ends (`authorization_ended`:
deauthorized by the CSMS, stopped with an IdToken, the cable pulled from the EV) TxStopPoint
decides between ending it and letting it go on without energy.  Each TransactionEvent carries
a seqNo that runs from 0 without
gaps over the transaction, so the CSMS can tell a lost message from a late one, and the
measurands that SampledDataCtrlr names for the Started, Updated and Ended events.

This is the station's own machinery, used by the EV driver and by the blocks (remote control
stops a transaction, a reset ends them); what other blocks do when a transaction ends (a
scheduled availability change, a TxProfile's removal, an OnIdle reset) they do in their
reaction to `TransactionEnded`.  The event in which a transaction gains its IdToken (Started,
or the Updated that authorizes a cable-first start) carries the `reservationId` that
`StationCore.use_reservation` names, when the driver's reservation ends in this transaction.

Delivery (E13): a TransactionEvent answered with a CALLERROR or not answered at all is sent
again, up to MessageAttempts times, MessageAttemptInterval times the attempt number apart; one
that never gets through is dropped and counted.  A lost connection is not a failed attempt:
the event waits in the queue for the next connection.

The answer counts: one that carries idTokenInfo -- the CSMS's word on the IdToken the event
carried -- or (2.1) an updatedPersonalMessage is posted to the blocks as
`TransactionEventAnswered`, on which the authorization block keeps its cache and deauthorizes a
transaction whose token is not Accepted (C10, E05) and the display shows the driver's personal
message (O).  One that carries only a chargingPriority for the transaction is posted as
`ChargingPriorityAnswered`.  An answer with a transactionLimit (E16, OCPP 2.1) sets the limits
the EVSE's visit task enforces, confirmed with an Updated event, triggerReason LimitSet.  An
empty answer, the common one, costs the delivery one truth test; any other at most four
dictionary lookups.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import trio

from ..link import Link
from ..ocpp import CallErrorReceived, CallTimeout, LinkClosed
from .core import (
    ChargingPriorityAnswered,
    CostToShow,
    StationCore,
    TransactionEnded,
    TransactionEventAnswered,
    TransactionStarted,
)
from .evse import EndedMeterValues, Evse, Transaction
from .measurands import sampled_values

__all__ = [
    "LIMIT_STOPPED_REASONS",
    "SUPPORTED_LIMITS",
    "authorization_ended",
    "deliver_transaction_event",
    "end_transaction",
    "meter_value",
    "record_ended_sample",
    "sampled_ended_interval_s",
    "send_clock_aligned",
    "start_transaction",
    "update_transaction",
]

#: The fields of a TransactionLimitType (E16) the station enforces, each reached at an exact
#: deadline of the EVSE's visit task.  maxCost counts only for a transaction with a running
#: cost (a tariff, block I); without one the station neither records nor confirms it (the
#: CSMS learns which limits hold from the LimitSet event that echoes them).
SUPPORTED_LIMITS = ("maxEnergy", "maxTime", "maxSoC", "maxCost")
#: The stoppedReason of a transaction ended by reaching a limit, by its triggerReason.  A cost
#: limit is a credit limit the station enforces itself: LocalOutOfCredit.
LIMIT_STOPPED_REASONS = {
    "EnergyLimitReached": "EnergyLimitReached",
    "TimeLimitReached": "TimeLimitReached",
    "SoCLimitReached": "SOCLimitReached",
    "CostLimitReached": "LocalOutOfCredit",
}


def meter_value(
    station: StationCore,
    evse: Evse,
    measurands: tuple[str, ...],
    context: str,
    *,
    at_s: float | None = None,
) -> dict[str, Any]:
    """One MeterValueType of `evse` with the measurands asked for, read now and stamped now
    or, with `at_s`, stamped at simulated second `at_s` (a clock-aligned boundary the station
    latched this very instant: its readings are taken now, never from the past, which the
    piecewise-linear session cannot replay once it has moved on)."""
    clock = station.clock
    now_s = clock.sim_now()
    stamp_s = now_s if at_s is None else at_s
    sampled = sampled_values(station, evse, measurands, context, max(now_s, stamp_s))
    return {"timestamp": clock.timestamp(stamp_s), "sampledValue": sampled}


def _sampled(station: StationCore, event_type: str) -> tuple[str, ...]:
    """The measurands SampledDataCtrlr names for a Started, Updated or Ended event; none while
    SampledDataCtrlr.Enabled is false."""
    model = station.device_model
    if not model.boolean("SampledDataCtrlr", "Enabled"):
        return ()
    if event_type == "Updated":
        return model.members("SampledDataCtrlr", "TxUpdatedMeasurands")
    if event_type == "Started":
        return model.members("SampledDataCtrlr", "TxStartedMeasurands")
    return model.members("SampledDataCtrlr", "TxEndedMeasurands")


def _event(
    station: StationCore,
    evse: Evse,
    transaction: Transaction,
    event_type: str,
    trigger_reason: str,
    *,
    measurands: tuple[str, ...],
    context: str,
    stopped_reason: str | None = None,
    include_token: bool = False,
    reservation_id: int | None = None,
    id_token: dict[str, str] | None = None,
    transaction_limit: dict[str, float] | None = None,
    at_s: float | None = None,
    meter_values: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One TransactionEvent; it carries `id_token` when given (a driver ending their
    authorization, E07, C09, C16), else the transaction's own IdToken with `include_token`.
    Its meterValue holds `meter_values` (taken earlier) followed by a sample of `measurands`
    now; it is stamped now, or at simulated second `at_s`."""
    info: dict[str, Any] = {"transactionId": transaction.id}
    if transaction.charging_state is not None:
        info["chargingState"] = transaction.charging_state
    if stopped_reason is not None:
        info["stoppedReason"] = stopped_reason
    if transaction_limit is not None:
        info["transactionLimit"] = transaction_limit
    if transaction.operation_mode is not None:  # set on 2.1 stations only
        info["operationMode"] = transaction.operation_mode
    if transaction.remote_start_id is not None and event_type == "Started":
        info["remoteStartId"] = transaction.remote_start_id
    payload: dict[str, Any] = {
        "eventType": event_type,
        "timestamp": station.clock.timestamp(at_s),
        "triggerReason": trigger_reason,
        "seqNo": transaction.next_seq_no(),
        "transactionInfo": info,
        "evse": {"id": evse.id, "connectorId": transaction.connector_id},
    }
    if id_token is not None:
        payload["idToken"] = id_token
    elif include_token and transaction.id_token is not None:
        payload["idToken"] = transaction.id_token
    if reservation_id is not None:
        payload["reservationId"] = reservation_id
    values = [value for value in meter_values if value["sampledValue"]] if meter_values else []
    if measurands:
        sample = meter_value(station, evse, measurands, context, at_s=at_s)
        if sample["sampledValue"]:
            values.append(sample)
    if values:
        payload["meterValue"] = values
    if event_type != "Started" and station.config.ocpp_version == "2.1":
        # The running cost (I12), and in the Ended event the final one, of a transaction
        # under a tariff; a station without tariffs pays one hook call per event.
        details = station.cost_details(evse, transaction)
        if details is not None:
            payload["costDetails"] = details
            info["tariffId"] = details["chargingPeriods"][-1]["tariffId"]
    return payload


def sampled_ended_interval_s(station: StationCore) -> int:
    """SampledDataCtrlr.TxEndedInterval when the Ended event is to carry samples at it: the
    sampled data are enabled and name measurands for it; else 0."""
    model = station.device_model
    interval_s = model.integer("SampledDataCtrlr", "TxEndedInterval")
    if (
        interval_s <= 0
        or not model.boolean("SampledDataCtrlr", "Enabled")
        or not model.members("SampledDataCtrlr", "TxEndedMeasurands")
    ):
        return 0
    return interval_s


def record_ended_sample(
    station: StationCore,
    evse: Evse,
    transaction: Transaction,
    context: str,
    *,
    number: int | None = None,
    at_s: float | None = None,
) -> None:
    """Keep a sample for `transaction`'s Ended event (J02): sample `number` of the
    SampledDataCtrlr.TxEndedInterval series, of SampledDataCtrlr.TxEndedMeasurands, or without
    a number the next clock-aligned one, of AlignedDataCtrlr.TxEndedMeasurands; stamped at
    `at_s` (default: now).  At most `EndedMeterValues.LIMIT` are kept."""
    component = "SampledDataCtrlr" if number is not None else "AlignedDataCtrlr"
    measurands = station.device_model.members(component, "TxEndedMeasurands")
    if not measurands:
        return
    kept = transaction.ended_meter_values
    if kept is None:
        kept = transaction.ended_meter_values = EndedMeterValues()
    kept.add(meter_value(station, evse, measurands, context, at_s=at_s), number)


async def send_clock_aligned(
    station: StationCore, evse: Evse, sample: dict[str, Any], at_s: float
) -> None:
    """A clock-aligned sample of an EVSE with a transaction goes out as an Updated event,
    triggerReason MeterValueClock, stamped at the boundary `at_s` (J01)."""
    transaction = evse.transaction
    if transaction is None:
        return
    station.stats.energy_delivered(evse.unaccounted_wh(station.clock.sim_now()))
    payload = _event(
        station,
        evse,
        transaction,
        "Updated",
        "MeterValueClock",
        measurands=(),
        context="Sample.Clock",
        at_s=at_s,
        meter_values=[sample],
    )
    await station.send_transaction_event(payload)


async def start_transaction(
    station: StationCore,
    evse: Evse,
    trigger_reason: str,
    *,
    id_token: dict[str, str] | None = None,
    remote_start_id: int | None = None,
    charging_state: str | None = None,
) -> Transaction:
    """Start a transaction on `evse` (the first of TxStartPoint's conditions became true, E01);
    its chargingState is `charging_state`, else EVConnected with an EV plugged in."""
    now_s = station.clock.sim_now()
    if charging_state is None and evse.plugged_connector is not None:
        charging_state = "EVConnected"
    transaction = Transaction(
        station.next_transaction_id(),
        now_s,
        charging_state=charging_state,
        id_token=id_token,
        remote_start_id=remote_start_id,
        connector_id=evse.plugged_connector or 1,
        start_register_wh=evse.register_wh(now_s),
    )
    evse.transaction = transaction
    if sampled_ended_interval_s(station) > 0:
        # The Ended event's series of samples begins with the start (J02, TxEndedInterval).
        record_ended_sample(station, evse, transaction, "Transaction.Begin", number=0)
    payload = _event(
        station,
        evse,
        transaction,
        "Started",
        trigger_reason,
        measurands=_sampled(station, "Started"),
        context="Transaction.Begin",
        include_token=id_token is not None,
        reservation_id=None if id_token is None else station.use_reservation(evse, id_token),
    )
    station.stats.transaction_started()
    await station.send_transaction_event(payload)
    await station.emit(TransactionStarted(evse, transaction))
    return transaction


async def update_transaction(
    station: StationCore,
    evse: Evse,
    trigger_reason: str,
    *,
    charging_state: str | None = None,
    include_token: bool = False,
    with_meter: bool = False,
    id_token: dict[str, str] | None = None,
    transaction_limit: dict[str, float] | None = None,
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
        measurands=_sampled(station, "Updated") if with_meter else (),
        context="Sample.Periodic" if trigger_reason == "MeterValuePeriodic" else "Trigger",
        include_token=include_token,
        # A token new to the transaction (cable first, then the driver) may claim a reservation.
        reservation_id=station.use_reservation(evse, transaction.id_token)
        if include_token and transaction.id_token is not None
        else None,
        id_token=id_token,
        transaction_limit=transaction_limit,
    )
    await station.send_transaction_event(payload)


async def end_transaction(
    station: StationCore,
    evse: Evse,
    trigger_reason: str,
    stopped_reason: str,
    *,
    id_token: dict[str, str] | None = None,
) -> None:
    """End `evse`'s transaction; the EVSE stops delivering power at once.  `id_token` is the
    IdToken that ended it, when a driver presented one (StopAuthorized)."""
    transaction = evse.transaction
    if transaction is None:
        return
    evse.transaction = None
    now_s = station.clock.sim_now()
    if evse.session is not None:
        evse.session.set_enabled(False, now_s)
    station.stats.energy_delivered(evse.unaccounted_wh(now_s))
    # Idle: no EV is connected any more (the EV side was unplugged, or never plugged in).
    transaction.charging_state = "EVConnected" if evse.plugged_connector is not None else "Idle"
    kept = transaction.ended_meter_values
    transaction.ended_meter_values = None
    payload = _event(
        station,
        evse,
        transaction,
        "Ended",
        trigger_reason,
        measurands=_sampled(station, "Ended"),
        context="Transaction.End",
        stopped_reason=stopped_reason,
        id_token=id_token,
        meter_values=None if kept is None else kept.meter_values(),
    )
    station.stats.transaction_ended(stopped_reason)
    evse.wake()
    await station.send_transaction_event(payload)
    await station.emit(TransactionEnded(evse, transaction, stopped_reason))


async def authorization_ended(
    station: StationCore,
    evse: Evse,
    trigger_reason: str,
    stopped_reason: str,
    *,
    id_token: dict[str, str] | None = None,
) -> None:
    """The authorization of `evse`'s transaction ended: the CSMS deauthorized it (E05), the
    driver stopped it with an IdToken (E07, C09, C16), or the cable left the EV with
    TxCtrlr.StopTxOnEVSideDisconnect true (E10).  The EVSE opens the power path at once.

    TxStopPoint decides what becomes of the transaction (E06): Authorized or PowerPathClosed
    among the stop points end it with `trigger_reason` and `stopped_reason`, and so does
    EnergyTransfer while energy was flowing; otherwise it goes on without energy (chargingState
    EVConnected) until one of its other stop points ends it.  The event carries `id_token`, the
    token a driver presented to end the authorization, when given.
    """
    transaction = evse.transaction
    if transaction is None or transaction.authorization_ended:
        return
    stop_points = station.device_model.members("TxCtrlr", "TxStopPoint")
    flowing = transaction.charging_state == "Charging"
    if (
        "Authorized" in stop_points
        or "PowerPathClosed" in stop_points
        or ("EnergyTransfer" in stop_points and flowing)
    ):
        await end_transaction(station, evse, trigger_reason, stopped_reason, id_token=id_token)
        return
    transaction.authorization_ended = True
    session = evse.session
    if session is not None:
        now_s = station.clock.sim_now()
        session.set_enabled(False, now_s)
        station.stats.energy_delivered(evse.unaccounted_wh(now_s))
        site = station.site
        if site is not None:
            site.power_changed(station, evse, now_s)
    await update_transaction(
        station,
        evse,
        trigger_reason,
        charging_state="EVConnected" if evse.plugged_connector is not None else "Idle",
        id_token=id_token,
    )
    evse.wake()


async def _limit_set(
    station: StationCore, payload: Mapping[str, Any], limit: Mapping[str, Any]
) -> None:
    """A TransactionEventResponse set a transactionLimit (E16, OCPP 2.1): the fields the
    station enforces replace those in force (a limit is raised or lowered, never removed), and
    a changed limit is confirmed with an Updated event, triggerReason LimitSet.  The EVSE's
    visit task takes the new deadlines at once."""
    evse = station.evse(payload["evse"]["id"])
    if evse is None:
        return
    transaction = evse.transaction
    if transaction is None or transaction.id != payload["transactionInfo"]["transactionId"]:
        return  # it ended meanwhile
    merged = dict(transaction.limit or {})
    for name in SUPPORTED_LIMITS:
        value = limit.get(name)
        if value is None:
            continue
        if name == "maxCost" and station.transaction_cost(evse, transaction) is None:
            continue  # no tariff, no running cost to hold against it
        merged[name] = value
    if merged == (transaction.limit or {}):
        return
    transaction.limit = merged
    await update_transaction(station, evse, "LimitSet", transaction_limit=dict(merged))
    evse.wake()


async def deliver_transaction_event(
    station: StationCore, link: Link, payload: dict[str, Any]
) -> bool:
    """Send one queued TransactionEvent (E13); False when the connection went first.

    The retry settings are read when an attempt fails, not before each event: almost every
    event goes through at the first attempt."""
    attempt = 0
    while True:
        attempt += 1
        try:
            response = await link.call("TransactionEvent", payload)
        except LinkClosed:
            return False
        except (CallErrorReceived, CallTimeout):
            model = station.device_model
            attempts = model.integer("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent")
            if attempt >= max(1, attempts):
                station.stats.transaction_event_dropped()
                return True
            interval_s = model.integer(
                "OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent"
            )
            await trio.sleep(station.clock.trio_duration(interval_s * attempt))
            continue
        station.stats.transaction_event_acknowledged(payload["eventType"])
        if response:
            if ("idTokenInfo" in response and "idToken" in payload) or (
                "updatedPersonalMessage" in response
            ):
                _answered(station, payload, response)
            elif "chargingPriority" in response:
                _prioritized(station, payload, response["chargingPriority"])
            if "transactionLimit" in response and station.config.ocpp_version == "2.1":
                await _limit_set(station, payload, response["transactionLimit"])
            if "totalCost" in response:
                _total_cost_answered(station, payload, response["totalCost"])
        return True


def _answered(station: StationCore, payload: dict[str, Any], response: Mapping[str, Any]) -> None:
    """Hand the CSMS's word on the IdToken an event carried to the blocks (the cache learns
    from it; a status other than Accepted deauthorizes the transaction, E05; a personal
    message goes to the display), after the delivery: a reaction that ends the transaction
    queues its Ended event behind this one.  idTokenInfo in the answer to an event without an
    IdToken is about nothing the station sent, and is not passed on."""
    evse = station.evse(payload["evse"]["id"])
    if evse is not None:
        station.post(
            TransactionEventAnswered(
                evse,
                payload["transactionInfo"]["transactionId"],
                payload.get("idToken"),
                response,
            )
        )


def _total_cost_answered(station: StationCore, payload: dict[str, Any], total_cost: Any) -> None:
    """The cost the CSMS computed for a running transaction (a TransactionEvent answer's
    totalCost, I02/I03), to the display (block O) as a `CostToShow`: in the currency of the
    tariff the station meters the transaction under, else TariffCostCtrlr.Currency.  The
    answer to an Ended event is about a transaction that no longer runs, and shows nowhere."""
    evse = station.evse(payload["evse"]["id"]) if "evse" in payload else None
    transaction = None if evse is None else evse.transaction
    if (
        evse is None
        or transaction is None
        or transaction.id != payload["transactionInfo"]["transactionId"]
    ):
        return
    details = station.cost_details(evse, transaction)
    currency = (
        str(details["totalCost"]["currency"])
        if details is not None
        else str(station.device_model.get("TariffCostCtrlr", "Currency"))
    )
    station.post(CostToShow(evse, transaction.id, float(total_cost), currency))


def _prioritized(station: StationCore, payload: dict[str, Any], charging_priority: Any) -> None:
    """A chargingPriority for the transaction in an answer without idTokenInfo, to the blocks."""
    evse = station.evse(payload["evse"]["id"])
    if evse is not None:
        station.post(
            ChargingPriorityAnswered(
                evse, payload["transactionInfo"]["transactionId"], int(charging_priority)
            )
        )
