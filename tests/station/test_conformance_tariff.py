"""Conformance rows of block I (tariff and cost): SetDefaultTariff, GetTariffs, ClearTariffs and
ChangeTransactionTariff (OCPP 2.1 only) and CostUpdated (2.0.1 too) in the states that change
their answer, with the state read back over OCPP where the protocol can tell."""

from __future__ import annotations

from typing import Any

import pytest
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import Station
from tests.helpers import STATION_ID
from tests.station.conformance import (
    ONLY_21,
    Outcome,
    Row,
    after,
    cases,
    request,
    run_row,
    tx_event,
    with_transaction,
)
from tests.station.steps import get_variable

FLAT: dict[str, Any] = {
    "tariffId": "flat",
    "currency": "EUR",
    "energy": {"prices": [{"priceKwh": 0.40}]},
}
DRIVER = {**FLAT, "tariffId": "driver", "energy": {"prices": [{"priceKwh": 0.10}]}}
IN_DOLLARS = {**FLAT, "tariffId": "dollars", "currency": "USD"}
BY_CURRENT = {
    **FLAT,
    "tariffId": "amps",
    "energy": {"prices": [{"priceKwh": 0.3, "conditions": {"minCurrent": 16}}]},
}
TOO_MANY = {**FLAT, "tariffId": "many", "energy": {"prices": [{"priceKwh": 0.3}] * 11}}


async def flat_default(csms: Csms) -> None:
    answer = await csms.call(STATION_ID, "SetDefaultTariff", {"evseId": 0, "tariff": FLAT})
    assert answer["status"] == "Accepted", answer


async def _assigned(outcome: Outcome) -> list[str]:
    answer = await outcome.csms.call(STATION_ID, "GetTariffs", {"evseId": 0})
    return [a["tariffId"] for a in answer.get("tariffAssignments", ())]


async def flat_is_assigned(outcome: Outcome) -> None:
    assert await _assigned(outcome) == ["flat"]


async def nothing_is_assigned(outcome: Outcome) -> None:
    assert await _assigned(outcome) == []


async def driver_tariff_in_force(outcome: Outcome) -> None:
    answer = await outcome.csms.call(STATION_ID, "GetTariffs", {"evseId": 1})
    kinds = {a["tariffId"]: a["tariffKind"] for a in answer["tariffAssignments"]}
    assert kinds.get("driver") == "DriverTariff", answer


async def total_is_on_the_display(outcome: Outcome) -> None:
    """The EVSE's display shows the total with the currency (Display.DataText)."""
    shown = await get_variable(outcome.csms, "Display", "DataText", {"id": 1})
    assert shown == "Total cost: 4.85 EUR"


def _change(tariff: dict[str, Any]) -> Any:
    return lambda transaction_id: {"transactionId": transaction_id, "tariff": tariff}


async def _dollars_for_a_transaction_in_euros(station: Station, csms: Csms) -> dict[str, Any]:
    await flat_default(csms)
    return dict(await with_transaction(_change(IN_DOLLARS))(station, csms))


ROWS: list[Row] = [
    Row(
        "SetDefaultTariff",
        "no tariff",
        request({"evseId": 0, "tariff": FLAT}),
        "Accepted",
        then=flat_is_assigned,
        versions=ONLY_21,
    ),
    Row(
        "SetDefaultTariff",
        "the id in use for another tariff",
        after(flat_default, {"evseId": 0, "tariff": {**DRIVER, "tariffId": "flat"}}),
        "DuplicateTariffId",
        reason="InvalidValue",
        then=flat_is_assigned,
        versions=ONLY_21,
    ),
    Row(
        "SetDefaultTariff",
        "another currency",
        request({"evseId": 0, "tariff": IN_DOLLARS}),
        "Rejected",
        reason="InvalidValue",
        then=nothing_is_assigned,
        versions=ONLY_21,
    ),
    Row(
        "SetDefaultTariff",
        "a condition on current",
        request({"evseId": 0, "tariff": BY_CURRENT}),
        "ConditionNotSupported",
        reason="UnsupportedParam",
        then=nothing_is_assigned,
        versions=ONLY_21,
    ),
    Row(
        "SetDefaultTariff",
        "more prices than MaxElements",
        request({"evseId": 0, "tariff": TOO_MANY}),
        "TooManyElements",
        reason="TooManyElements",
        then=nothing_is_assigned,
        versions=ONLY_21,
    ),
    Row(
        "SetDefaultTariff",
        "unknown EVSE",
        request({"evseId": 9, "tariff": FLAT}),
        "Rejected",
        reason="UnknownEvse",
        then=nothing_is_assigned,
        versions=ONLY_21,
    ),
    Row(
        "GetTariffs",
        "no tariff",
        request({"evseId": 0}),
        "NoTariff",
        versions=ONLY_21,
    ),
    Row(
        "GetTariffs",
        "a default tariff",
        after(flat_default, {"evseId": 1}),
        "Accepted",
        answer={
            "tariffAssignments": [
                {"tariffId": "flat", "tariffKind": "DefaultTariff", "evseIds": [0]}
            ]
        },
        versions=ONLY_21,
    ),
    Row(
        "GetTariffs",
        "unknown EVSE",
        request({"evseId": 9}),
        "Rejected",
        reason="UnknownEvse",
        versions=ONLY_21,
    ),
    Row(
        "ClearTariffs",
        "a default tariff",
        after(flat_default, {"tariffIds": ["flat"]}),
        None,
        answer={"clearTariffsResult": [{"tariffId": "flat", "status": "Accepted"}]},
        then=nothing_is_assigned,
        versions=ONLY_21,
    ),
    Row(
        "ClearTariffs",
        "no such tariff",
        after(flat_default, {"tariffIds": ["other"]}),
        None,
        answer={"clearTariffsResult": [{"tariffId": "other", "status": "NoTariff"}]},
        then=flat_is_assigned,
        versions=ONLY_21,
    ),
    Row(
        "ChangeTransactionTariff",
        "a running transaction",
        with_transaction(_change(DRIVER)),
        "Accepted",
        follow_ups=(tx_event("Updated", "TariffChanged", tariffId="driver"),),
        then=driver_tariff_in_force,
        versions=ONLY_21,
    ),
    Row(
        "ChangeTransactionTariff",
        "no such transaction",
        request({"transactionId": "no-such-transaction", "tariff": DRIVER}),
        "TxNotFound",
        reason="TxNotFound",
        versions=ONLY_21,
    ),
    Row(
        "ChangeTransactionTariff",
        "a transaction under a tariff in another currency",
        _dollars_for_a_transaction_in_euros,
        "NoCurrencyChange",
        reason="InvalidValue",
        versions=ONLY_21,
    ),
    Row(
        "CostUpdated",
        "a running transaction",
        with_transaction(
            lambda transaction_id: {"transactionId": transaction_id, "totalCost": 4.85}
        ),
        None,
        then=total_is_on_the_display,
    ),
]


@pytest.mark.parametrize(("row", "version"), cases(ROWS))
async def test_action_in_state(autojump_clock: MockClock, row: Row, version: OcppVersion) -> None:
    await run_row(row, version)
