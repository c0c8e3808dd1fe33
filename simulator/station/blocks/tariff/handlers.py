"""Block I's answers to the CSMS, its cost meters, and the hooks that report their cost."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from functools import partial
from typing import Any

from ....clock import format_timestamp
from ....link import Answer
from ....tariffs import CostMeter, station_zone, tariff_refusal
from ...config import StationConfig
from ...core import CostToShow, StationCore, TransactionEnded, TransactionStarted, refused
from ...device_model import VariableSpec
from ...evse import Evse, Transaction
from ...transaction import update_transaction
from .store import Metered, Tariffs, peek_tariffs, tariffs_of, valid_from_s

__all__ = [
    "change_transaction_tariff",
    "clear_tariffs",
    "cost_details",
    "cost_reached_s",
    "cost_updated",
    "get_tariffs",
    "meter_ended",
    "meter_started",
    "set_default_tariff",
    "transaction_cost",
    "variables",
]

#: Refusals carry reasonCodes of the OCPP 2.1 list (Appendices, "Reason codes"): NotEnabled,
#: InvalidValue (a currency other than the station's, a tariffId in use), TooManyElements,
#: UnsupportedParam (a condition the station does not evaluate), UnknownEvse, TxNotFound.
_CTRLR = "TariffCostCtrlr"
#: Price elements per list a station takes (TariffCostCtrlr.MaxElements[Tariff]).
MAX_ELEMENTS = 10
#: A timer this close to a boundary counts as at it (trio and simulated time convert through
#: floating point).
_EPS_S = 1e-3
#: A running cost this close to a maxCost limit counts as reached (as the EV driver counts it).
_EPS_COST = 1e-6


def variables(config: StationConfig) -> Iterator[VariableSpec]:
    for instance in ("Tariff", "Cost"):
        yield VariableSpec(
            _CTRLR, "Available", "boolean", "true", "ReadOnly", variable_instance=instance
        )
    # Enabled[Tariff]: whether SetDefaultTariff and ChangeTransactionTariff are taken;
    # Enabled[Cost]: whether a transaction that starts is metered under its tariff.
    yield VariableSpec(_CTRLR, "Enabled", "boolean", "true", variable_instance="Tariff")
    yield VariableSpec(_CTRLR, "Enabled", "boolean", "true", variable_instance="Cost")
    # A tariff in another currency is refused.
    yield VariableSpec(_CTRLR, "Currency", "string", "EUR")
    # Seconds between RunningCost events of a metered transaction; 0: none (the running cost
    # then rides on the meter values' Updated events only).
    yield VariableSpec(
        _CTRLR, "Interval", "integer", "0", unit="s", min_limit=0, variable_instance="Cost"
    )
    yield VariableSpec(
        _CTRLR, "MaxElements", "integer", str(MAX_ELEMENTS), "ReadOnly", variable_instance="Tariff"
    )
    yield VariableSpec(
        _CTRLR, "ConditionsSupported", "boolean", "true", "ReadOnly", variable_instance="Tariff"
    )
    # The station shows no text of its own to the driver: the fallback messages are facts.
    yield VariableSpec(_CTRLR, "TariffFallbackMessage", "string", "", "ReadOnly")
    yield VariableSpec(_CTRLR, "TotalCostFallbackMessage", "string", "", "ReadOnly")


def _enabled(station: StationCore, instance: str) -> bool:
    return station.device_model.boolean("TariffCostCtrlr", "Enabled", instance)


def _refusal(station: StationCore, tariff: Mapping[str, Any]) -> Answer | None:
    """Why the station will not take `tariff` whatever it is for, or None."""
    if not _enabled(station, "Tariff"):
        return refused("NotEnabled", "TariffCostCtrlr.Enabled[Tariff] is false")
    currency = station.device_model.get("TariffCostCtrlr", "Currency")
    if tariff["currency"] != currency:
        return refused(
            "InvalidValue", f"tariff in {tariff['currency']}; this station charges in {currency}"
        )
    found = tariff_refusal(tariff, MAX_ELEMENTS)
    if found is not None:
        status, why = found
        reason = "TooManyElements" if status == "TooManyElements" else "UnsupportedParam"
        return refused(reason, why, status)
    return None


# -- I07, I08, I09: default tariffs -------------------------------------------------------------


def set_default_tariff(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    evse_id = payload["evseId"]
    tariff = payload["tariff"]
    if evse_id != 0 and station.evse(evse_id) is None:
        return refused("UnknownEvse", f"this station has EVSEs 1..{len(station.evses)}")
    refusal = _refusal(station, tariff)
    if refusal is not None:
        return refusal
    store = tariffs_of(station)
    tariff_id = tariff["tariffId"]
    target = store.target_of(tariff_id)
    in_use = any(
        m.meter.tariffs.get(tariff_id) not in (None, tariff) for m in store.metered.values()
    )
    if in_use or (
        target is not None and (target != evse_id or tariff not in store.defaults[target])
    ):
        return refused(
            "InvalidValue",
            f"tariffId {tariff_id} is already used for another tariff; give this one a new id",
            "DuplicateTariffId",
        )
    installed = store.defaults.setdefault(evse_id, [])
    starts_s = valid_from_s(tariff)
    installed[:] = [t for t in installed if valid_from_s(t) != starts_s]
    installed.append(dict(tariff))
    installed.sort(key=valid_from_s)
    return Answer({"status": "Accepted"})


def _assignments(store: Tariffs | None, evse_id: int) -> list[dict[str, Any]]:
    if store is None:
        return []
    found: list[dict[str, Any]] = []
    for target, tariffs in sorted(store.defaults.items()):
        if evse_id not in (0, target) and target != 0:
            continue
        for tariff in tariffs:
            entry: dict[str, Any] = {
                "tariffId": tariff["tariffId"],
                "tariffKind": "DefaultTariff",
                "evseIds": [target],
            }
            if "validFrom" in tariff:
                entry["validFrom"] = tariff["validFrom"]
            found.append(entry)
    for metered in store.metered.values():
        if not metered.driver_tariff or evse_id not in (0, metered.evse.id):
            continue
        entry = {
            "tariffId": metered.meter.tariff["tariffId"],
            "tariffKind": "DriverTariff",
            "evseIds": [metered.evse.id],
        }
        token = metered.transaction.id_token
        if token is not None:
            entry["idTokens"] = [token["idToken"]]
        found.append(entry)
    return found


def get_tariffs(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    evse_id = payload["evseId"]
    if evse_id != 0 and station.evse(evse_id) is None:
        return refused("UnknownEvse", f"this station has EVSEs 1..{len(station.evses)}")
    found = _assignments(peek_tariffs(station), evse_id)
    if not found:
        return Answer({"status": "NoTariff"})
    return Answer({"status": "Accepted", "tariffAssignments": found})


def clear_tariffs(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    """Remove default tariffs, by id and/or by the EVSE they were set for (I09).  A running
    transaction keeps the tariff it started with; a driver tariff is not cleared here."""
    wanted = payload.get("tariffIds")
    evse_id = payload.get("evseId")
    store = peek_tariffs(station)
    removed: list[str] = []
    if store is not None:
        for target in list(store.defaults):
            if evse_id is not None and target != evse_id:
                continue
            kept = []
            for tariff in store.defaults[target]:
                if wanted is None or tariff["tariffId"] in wanted:
                    removed.append(tariff["tariffId"])
                else:
                    kept.append(tariff)
            if kept:
                store.defaults[target] = kept
            else:
                del store.defaults[target]
    results: list[dict[str, Any]] = [{"tariffId": i, "status": "Accepted"} for i in removed]
    for tariff_id in wanted or ():
        if tariff_id not in removed:
            results.append({"tariffId": tariff_id, "status": "NoTariff"})
    if not results:
        results.append({"status": "NoTariff"})
    return Answer({"clearTariffsResult": results})


# -- I11: a driver tariff for a running transaction ---------------------------------------------


def _running(station: StationCore, transaction_id: str) -> Evse | None:
    for evse in station.evses:
        if evse.transaction is not None and evse.transaction.id == transaction_id:
            return evse
    return None


def change_transaction_tariff(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    transaction_id = payload["transactionId"]
    tariff = payload["tariff"]
    evse = _running(station, transaction_id)
    if evse is None or evse.transaction is None:
        return refused("TxNotFound", f"no transaction {transaction_id} runs here", "TxNotFound")
    store = tariffs_of(station)
    metered = store.metered.get(transaction_id)
    if metered is not None and metered.meter.tariff["currency"] != tariff["currency"]:
        return refused(
            "InvalidValue",
            f"the transaction is charged in {metered.meter.tariff['currency']}",
            "NoCurrencyChange",
        )
    refusal = _refusal(station, tariff)
    if refusal is not None:
        return refusal
    if not _enabled(station, "Cost"):
        return refused("NotEnabled", "TariffCostCtrlr.Enabled[Cost] is false: no local cost")
    transaction = evse.transaction
    if metered is None:
        metered = _meter(station, evse, transaction, tariff, from_now=True)
    else:
        _advance(station, metered)
        metered.meter.change_tariff(dict(tariff))
    metered.driver_tariff = True
    _rearm(station, metered)
    evse.wake()  # a cost limit is reached at another moment now

    async def confirm() -> None:
        await update_transaction(station, evse, "TariffChanged")

    return Answer({"status": "Accepted"}, then=confirm)


# -- I04: the total the CSMS computed ------------------------------------------------------------


def cost_updated(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    """Show the driver of a transaction that runs here the totalCost the CSMS sent, in the
    transaction's tariff's currency (else TariffCostCtrlr.Currency): the display (block O)
    hears of it as a `CostToShow`.  One for a transaction that does not run here is answered
    and forgotten."""
    transaction_id = payload["transactionId"]
    evse = _running(station, transaction_id)
    if evse is not None:
        store = peek_tariffs(station)
        metered = None if store is None else store.metered.get(transaction_id)
        currency = (
            str(metered.meter.tariff["currency"])
            if metered is not None
            else station.device_model.get("TariffCostCtrlr", "Currency")
        )
        station.post(CostToShow(evse, transaction_id, float(payload["totalCost"]), currency))
    return Answer({})


# -- meters -----------------------------------------------------------------------------------


def _meter(
    station: StationCore,
    evse: Evse,
    transaction: Transaction,
    tariff: Mapping[str, Any],
    *,
    from_now: bool = False,
) -> Metered:
    clock = station.clock
    started_s = clock.epoch_s(transaction.started_s)
    meter = CostMeter(
        dict(tariff),
        started_s,
        transaction.start_register_wh,
        evse_kind="DC" if evse.supply == "DC" else "AC",
        charging=False,
        zone=station_zone(station.config.time_zone),
    )
    if from_now:  # a tariff given mid-transaction prices what follows only
        meter.mark_s = clock.epoch_s()
        meter.mark_wh = evse.register_wh(clock.sim_now())
    metered = Metered(evse, transaction, meter)
    tariffs_of(station).metered[transaction.id] = metered
    _advance(station, metered)
    interval_s = station.device_model.integer("TariffCostCtrlr", "Interval", "Cost")
    if interval_s > 0:
        metered.report_s = clock.epoch_s() + interval_s
    station.spawn(partial(_run, station, metered))
    return metered


def _advance(station: StationCore, metered: Metered, at_s: float | None = None) -> None:
    """Bring the meter to now (or to the epoch second `at_s`, a boundary the timer met a hair
    early) and note when the price may next change."""
    clock = station.clock
    evse = metered.evse
    sim_now_s = clock.sim_now()  # read once: the mark and the register are of one instant
    now_s = clock.epoch_s(sim_now_s) if at_s is None else at_s
    power_w = evse.power_w
    meter = metered.meter
    meter.advance(now_s, evse.register_wh(sim_now_s), power_w != 0)
    boundary_s = meter.next_change_s(power_w)
    if boundary_s < metered.boundary_s:
        metered.alarm.wake()
    metered.boundary_s = boundary_s


def _rearm(station: StationCore, metered: Metered) -> None:
    metered.alarm.wake()


async def _run(station: StationCore, metered: Metered) -> None:
    """Advance the meter at each time-bound boundary and send the RunningCost events, until
    the transaction ends: one sleep per boundary, never a poll."""
    clock = station.clock
    origin_s = clock.epoch_s(0.0)
    evse = metered.evse
    while not metered.ended and evse.transaction is metered.transaction:
        wake_s = min(metered.boundary_s, metered.report_s)
        deadline = math.inf if math.isinf(wake_s) else clock.trio_deadline(wake_s - origin_s)
        await metered.alarm.sleep_until(deadline)
        if metered.ended or evse.transaction is not metered.transaction:
            return
        now_s = clock.epoch_s()
        if now_s >= metered.boundary_s - _EPS_S:
            boundary_s = metered.boundary_s
            metered.boundary_s = math.inf
            _advance(station, metered, max(now_s, boundary_s))
            evse.wake()  # the price changed: a cost limit is reached at another moment
        if now_s >= metered.report_s - _EPS_S:
            interval_s = station.device_model.integer("TariffCostCtrlr", "Interval", "Cost")
            metered.report_s = now_s + interval_s if interval_s > 0 else math.inf
            await update_transaction(station, evse, "RunningCost")


def _default_tariff(station: StationCore, evse: Evse) -> Mapping[str, Any] | None:
    """The default tariff a transaction that starts on `evse` now is metered under, or None."""
    store = peek_tariffs(station)
    if store is None or not store.defaults or station.config.ocpp_version != "2.1":
        return None
    if not (_enabled(station, "Cost") and _enabled(station, "Tariff")):
        return None
    return store.default_for(evse.id, station.clock.epoch_s())


def meter_started(station: StationCore, event: TransactionStarted) -> None:
    """A transaction that starts under a default tariff is metered (local cost, I07)."""
    tariff = _default_tariff(station, event.evse)
    if tariff is not None and event.transaction.id not in tariffs_of(station).metered:
        _meter(station, event.evse, event.transaction, tariff)


def meter_ended(station: StationCore, event: TransactionEnded) -> None:
    """The meter stops at the end; its final cost (a number, not the meter) stays readable
    through `transaction_cost` until the next metered transaction of the EVSE ends, for whoever
    settles it after the end (C20: the payment terminal settles the final cost)."""
    store = peek_tariffs(station)
    if store is None:
        return
    metered = store.metered.pop(event.transaction.id, None)
    if metered is not None:
        if not metered.ended:
            _advance(station, metered)
        metered.ended = True
        metered.alarm.wake()
        store.final_costs[event.evse.id] = (event.transaction.id, metered.meter.running_total())


# -- hooks ------------------------------------------------------------------------------------


def _metered(station: StationCore, transaction: Transaction) -> Metered | None:
    """The meter of a running `transaction`, brought to now; None without one."""
    store = peek_tariffs(station)
    metered = None if store is None else store.metered.get(transaction.id)
    if metered is not None and not metered.ended:
        _advance(station, metered)
    return metered


def transaction_cost(station: StationCore, evse: Evse, transaction: Transaction) -> float | None:
    """The running cost including tax, unrounded; None without a tariff.  A transaction about
    to start (the payment terminal asks before it takes a card, C17) costs 0.0 when a default
    tariff would meter it.  The first look that finds the cost at the transaction's maxCost
    (E16) counts the limit as reached, once per limit: whoever enforces the limit asks here at
    the moment `cost_reached_s` named."""
    metered = _metered(station, transaction)
    if metered is None:
        store = peek_tariffs(station)
        final = None if store is None else store.final_costs.get(evse.id)
        if final is not None and final[0] == transaction.id:
            return final[1]  # ended: its final cost
        if (
            transaction is not evse.transaction
            and transaction.started_s >= station.clock.sim_now() - _EPS_S
            and _default_tariff(station, evse) is not None
        ):
            return 0.0  # one about to start would be metered: nothing used yet
        return None
    total = metered.meter.running_total()
    limits = transaction.limit
    if limits is not None:
        max_cost = limits.get("maxCost")
        if (
            max_cost is not None
            and total >= max_cost - _EPS_COST
            and metered.limit_counted != max_cost
        ):
            metered.limit_counted = max_cost
            station.stats.cost_limit_reached()
    return total


def cost_details(
    station: StationCore, evse: Evse, transaction: Transaction
) -> dict[str, Any] | None:
    """costDetails for a TransactionEvent of `transaction`; None without a tariff."""
    metered = _metered(station, transaction)
    if metered is None:
        return None
    return metered.meter.cost_details(format_timestamp)


def cost_reached_s(
    station: StationCore, evse: Evse, transaction: Transaction, max_cost: float
) -> float:
    """The simulated second at which the running cost reaches `max_cost` at the present power
    and prices (no later than the next price change, where the visit task asks again); inf
    without a tariff."""
    metered = _metered(station, transaction)
    if metered is None:
        return math.inf
    clock = station.clock
    now_s = clock.sim_now()
    missing = max_cost - metered.meter.running_total()
    if missing <= 0:
        return now_s
    rate = metered.meter.rate_per_s(evse.power_w)
    reached_s = now_s + missing / rate if rate > 0 else math.inf
    change_s = metered.boundary_s - clock.epoch_s(0.0)
    return min(reached_s, change_s)
