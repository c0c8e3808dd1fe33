"""Block I on the wire: default and driver tariffs, the running and final cost in the
TransactionEvents, and a maxCost limit (E16) reached at its cost.

The session: SetDefaultTariff, then a remote start at 12:00 UTC whose driver plugs in at
12:01 and whose EV draws 11 kW until the CSMS stops it at 13:01.  The expected costs are worked
out by hand in the comments.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.csms.processes import csms_config_for
from fleetsim.simulator.csms.tariffs import (
    DEFAULT_TARIFF_ID,
    agrees,
    default_tariff,
    tariff_reactions,
)
from fleetsim.simulator.ocpp import OcppVersion
from tests.helpers import STATION_ID, one_station_scenario, station_on_memory_link
from tests.station.conformance import STATION
from tests.station.steps import (
    arrives,
    messages_now,
    running_transaction,
    set_variable,
    stopped_transaction,
)

#: 0.30/kWh before 12:30, 0.40/kWh after; 0.02 per minute charging, 0.05 per minute idle.
HALF_PAST: dict[str, Any] = {
    "tariffId": "half-past",
    "currency": "EUR",
    "energy": {
        "prices": [
            {"priceKwh": 0.30, "conditions": {"startTimeOfDay": "12:00", "endTimeOfDay": "12:30"}},
            {"priceKwh": 0.40},
        ]
    },
    "chargingTime": {"prices": [{"priceMinute": 0.02}]},
    "idleTime": {"prices": [{"priceMinute": 0.05}]},
}
FLAT: dict[str, Any] = {
    "tariffId": "flat",
    "currency": "EUR",
    "energy": {"prices": [{"priceKwh": 0.40}]},
}
DRIVER: dict[str, Any] = {
    "tariffId": "driver",
    "currency": "EUR",
    "energy": {"prices": [{"priceKwh": 0.10}]},
}


def _events(csms: Csms, transaction_id: str) -> list[dict[str, Any]]:
    return [
        dict(m.payload)
        for m in csms.station(STATION_ID).messages_since(0)
        if m.action == "TransactionEvent"
        and m.payload["transactionInfo"]["transactionId"] == transaction_id
    ]


async def _set_default(csms: Csms, tariff: Mapping[str, Any], evse_id: int = 0) -> None:
    answer = await csms.call(STATION_ID, "SetDefaultTariff", {"evseId": evse_id, "tariff": tariff})
    assert answer["status"] == "Accepted", answer


async def test_the_running_and_final_cost_follow_the_tariff(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(scenario=STATION) as (_, csms):
        with trio.fail_after(3 * 3600):
            await _set_default(csms, HALF_PAST)
            transaction_id = await running_transaction(csms, charging=True)
            await trio.sleep(3600)
            ended = await stopped_transaction(csms, transaction_id)
        events = _events(csms, transaction_id)
    assert "costDetails" not in events[0]  # Started: nothing used yet
    # 12:00-12:30: 1 min idle, 29 min at 11 kW = 5316.667 Wh; 12:30-13:01: 31 min = 5683.333 Wh
    periods = ended["costDetails"]["chargingPeriods"]
    assert [p["startPeriod"] for p in periods] == [
        "2026-01-15T12:00:00.000Z",
        "2026-01-15T12:30:00.000Z",
    ]
    assert periods[0]["dimensions"] == [
        {"type": "Energy", "volume": 5316.667},
        {"type": "ChargingTime", "volume": 1740.0},
        {"type": "IdleTIme", "volume": 60.0},
    ]
    cost = ended["costDetails"]["totalCost"]
    # energy 5.316667 x 0.30 + 5.683333 x 0.40 = 1.595 + 2.273333 = 3.868333 -> 3.87;
    # 60 min charging x 0.02 = 1.20; 1 min idle x 0.05 = 0.05; total 5.12
    assert cost["energy"]["exclTax"] == 3.87
    assert cost["chargingTime"]["exclTax"] == 1.20
    assert cost["idleTime"]["exclTax"] == 0.05
    assert cost["total"] == {"exclTax": 5.12, "inclTax": 5.12}
    assert ended["transactionInfo"]["tariffId"] == "half-past"
    # The running cost at 12:31 (an Updated event with meter values): 5.316667 x 0.30 +
    # 0.183333 x 0.40 = 1.668333 -> 1.67; 30 min x 0.02 = 0.60; idle 0.05: 2.32
    at_1231 = next(e for e in events if e["timestamp"] == "2026-01-15T12:31:00.000Z")
    assert at_1231["costDetails"]["totalCost"]["total"]["exclTax"] == 2.32


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
async def test_no_event_carries_cost_details_without_a_tariff(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=STATION, ocpp_version=version) as (_, csms):
        with trio.fail_after(3 * 3600):
            transaction_id = await running_transaction(csms, charging=True)
            await trio.sleep(600)
            await stopped_transaction(csms, transaction_id)
        events = _events(csms, transaction_id)
    assert len(events) > 3
    assert all("costDetails" not in e for e in events)


def _cost_limit(max_cost: float) -> CsmsConfig:
    """A CSMS that sets maxCost in its answers to Updated events."""

    def answer(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        if payload["eventType"] != "Updated":
            return {}
        return {"transactionLimit": {"maxCost": max_cost}}

    return CsmsConfig(response_overrides={"TransactionEvent": answer})


async def test_max_cost_ends_the_transaction_at_the_energy_that_costs_that_much(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(csms_config=_cost_limit(2.0), scenario=STATION) as (
        station,
        csms,
    ):
        with trio.fail_after(3 * 3600):
            await set_variable(csms, "TxCtrlr", "TxStopPoint", "EnergyTransfer")
            await _set_default(csms, FLAT)
            since = messages_now(csms)
            transaction_id = await running_transaction(csms)
            ended = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended", since=since
            )
        events = _events(csms, transaction_id)
    assert any(e["triggerReason"] == "LimitSet" for e in events)
    assert ended["triggerReason"] == "CostLimitReached"
    assert ended["transactionInfo"]["stoppedReason"] == "LocalOutOfCredit"
    # 2.00 at 0.40/kWh is 5 kWh
    assert ended["costDetails"]["totalUsage"]["energy"] == pytest.approx(5000.0, abs=0.01)
    assert ended["costDetails"]["totalCost"]["total"]["exclTax"] == 2.00
    # The run counts the limit reached once, and the transaction it ended.
    assert station.stats.cost_limits_reached == 1
    assert station.stats.transactions_ended_by_reason == {"LocalOutOfCredit": 1}


async def test_a_driver_tariff_changes_the_rate_from_then_on(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(scenario=STATION) as (_, csms):
        with trio.fail_after(3 * 3600):
            await _set_default(csms, FLAT)
            transaction_id = await running_transaction(csms, charging=True)
            await trio.sleep(1800)  # 12:31
            since = messages_now(csms)
            answer = await csms.call(
                STATION_ID,
                "ChangeTransactionTariff",
                {"transactionId": transaction_id, "tariff": DRIVER},
            )
            assert answer["status"] == "Accepted", answer
            changed = await arrives(
                csms,
                "TransactionEvent",
                lambda p: p["triggerReason"] == "TariffChanged",
                since=since,
            )
            assignments = await csms.call(STATION_ID, "GetTariffs", {"evseId": 1})
            await trio.sleep(1800 - 1)
            ended = await stopped_transaction(csms, transaction_id)
    assert changed["transactionInfo"]["tariffId"] == "driver"
    assert {"tariffId": "driver", "tariffKind": "DriverTariff", "evseIds": [1]} in [
        {k: v for k, v in a.items() if k != "idTokens"} for a in assignments["tariffAssignments"]
    ]
    # 12:01-12:31: 5.5 kWh x 0.40 = 2.20; 12:31-13:01: 5.5 kWh x 0.10 = 0.55
    assert ended["costDetails"]["totalCost"]["total"]["exclTax"] == 2.75


async def test_get_and_clear_tariffs_follow_what_was_set(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(scenario=STATION) as (_, csms):
        with trio.fail_after(600):
            assert (await csms.call(STATION_ID, "GetTariffs", {"evseId": 0}))["status"] == (
                "NoTariff"
            )
            await _set_default(csms, FLAT)
            await _set_default(csms, HALF_PAST, evse_id=2)
            on_1 = await csms.call(STATION_ID, "GetTariffs", {"evseId": 1})
            on_2 = await csms.call(STATION_ID, "GetTariffs", {"evseId": 2})
            cleared = await csms.call(STATION_ID, "ClearTariffs", {"evseId": 2})
            after = await csms.call(STATION_ID, "GetTariffs", {"evseId": 0})
            duplicate = await csms.call(
                STATION_ID, "SetDefaultTariff", {"evseId": 1, "tariff": FLAT}
            )
    assert [a["tariffId"] for a in on_1["tariffAssignments"]] == ["flat"]
    assert [a["tariffId"] for a in on_2["tariffAssignments"]] == ["flat", "half-past"]
    assert cleared["clearTariffsResult"] == [{"tariffId": "half-past", "status": "Accepted"}]
    assert after["tariffAssignments"] == [
        {"tariffId": "flat", "tariffKind": "DefaultTariff", "evseIds": [0]}
    ]
    assert duplicate["status"] == "DuplicateTariffId"


# -- the embedded CSMS: a default tariff for every station, and its own price of each cost ------


async def test_the_embedded_csms_sets_its_tariff_and_agrees_with_the_final_cost(
    autojump_clock: MockClock,
) -> None:
    scenario = one_station_scenario(
        {"embedded_csms": {"default_tariff": {"price_kwh": 0.39, "idle_price_minute": 0.1}}}
    )
    config = csms_config_for(scenario)
    config = dataclasses.replace(config, record_messages=True)
    async with station_on_memory_link(csms_config=config, scenario=STATION) as (_, csms):
        with trio.fail_after(3 * 3600):
            await csms.wait_for_message(STATION_ID, "StatusNotification")
            await trio.testing.wait_all_tasks_blocked()
            transaction_id = await running_transaction(csms, charging=True)
            await trio.sleep(1800)
            ended = await stopped_transaction(csms, transaction_id)
            await trio.testing.wait_all_tasks_blocked()
        pushes = csms.statistics().pushes
    assert pushes.get("default_tariff_set") == 1
    assert pushes.get("cost_agreed") == 1
    assert "cost_disagreed" not in pushes
    # 1 min idle x 0.10 = 0.10; 30 min at 11 kW = 5.5 kWh x 0.39 = 2.145 -> 2.15
    assert ended["costDetails"]["totalCost"]["total"]["exclTax"] == 2.25


def test_a_final_cost_that_does_not_add_up_is_a_disagreement() -> None:
    tariff = default_tariff(
        currency="EUR", price_kwh=0.40, price_minute=0.0, idle_price_minute=0.0, fixed=0.0
    )
    details: dict[str, Any] = {
        "chargingPeriods": [
            {
                "startPeriod": "2026-01-15T12:00:00.000Z",
                "tariffId": DEFAULT_TARIFF_ID,
                "dimensions": [{"type": "Energy", "volume": 10000.0}],
            }
        ],
        "totalCost": {"currency": "EUR", "typeOfCost": "NormalCost", "total": {"exclTax": 4.00}},
        "totalUsage": {"energy": 10000.0, "chargingTime": 3600, "idleTime": 0},
    }
    known = {DEFAULT_TARIFF_ID: tariff}
    assert agrees(known, details) is True  # 10 kWh x 0.40
    details["totalCost"]["total"]["exclTax"] = 3.50
    assert agrees(known, details) is False
    assert agrees({}, details) is None


async def _set_instance(
    csms: Csms, component: str, variable: str, instance: str | None, value: str
) -> None:
    named: dict[str, str] = {"name": variable}
    if instance is not None:
        named["instance"] = instance
    answer = await csms.call(
        STATION_ID,
        "SetVariables",
        {
            "setVariableData": [
                {
                    "component": {"name": component},
                    "variable": named,
                    "attributeValue": value,
                }
            ]
        },
    )
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted", answer


async def test_the_tariff_cost_controller_variables_act(autojump_clock: MockClock) -> None:
    """TariffCostCtrlr.Currency refuses tariffs in another currency, Enabled[Tariff] false
    refuses tariffs, Enabled[Cost] false meters nothing, and Interval[Cost] paces RunningCost
    events."""
    async with station_on_memory_link(scenario=STATION) as (_, csms):
        with trio.fail_after(3 * 3600):
            await _set_instance(csms, "TariffCostCtrlr", "Currency", None, "USD")
            in_euros = await csms.call(
                STATION_ID, "SetDefaultTariff", {"evseId": 0, "tariff": FLAT}
            )
            await _set_instance(csms, "TariffCostCtrlr", "Currency", None, "EUR")
            await _set_instance(csms, "TariffCostCtrlr", "Enabled", "Tariff", "false")
            disabled = await csms.call(
                STATION_ID, "SetDefaultTariff", {"evseId": 0, "tariff": FLAT}
            )
            await _set_instance(csms, "TariffCostCtrlr", "Enabled", "Tariff", "true")
            await _set_default(csms, FLAT)
            await _set_instance(csms, "TariffCostCtrlr", "Enabled", "Cost", "false")
            unmetered = await running_transaction(csms, charging=True)
            await trio.sleep(300)
            await stopped_transaction(csms, unmetered)
            await _set_instance(csms, "TariffCostCtrlr", "Enabled", "Cost", "true")
            await _set_instance(csms, "TariffCostCtrlr", "Interval", "Cost", "600")
            metered = await running_transaction(csms, charging=True, remote_start_id=42)
            await trio.sleep(1900)
            await stopped_transaction(csms, metered)
        unmetered_events = _events(csms, unmetered)
        running = [e for e in _events(csms, metered) if e["triggerReason"] == "RunningCost"]
    assert in_euros["statusInfo"]["reasonCode"] == "InvalidValue"
    assert disabled["statusInfo"]["reasonCode"] == "NotEnabled"
    assert all("costDetails" not in e for e in unmetered_events)
    assert len(running) == 3  # every 600 s of a transaction of about 1960 s
    assert all("costDetails" in e for e in running)


# -- the station's wall clock ---------------------------------------------------------------

#: 0.50/kWh from 18:00 to midnight local time, 0.20/kWh otherwise.
EVENING: dict[str, Any] = {
    "tariffId": "evening",
    "currency": "EUR",
    "energy": {
        "prices": [
            {"priceKwh": 0.50, "conditions": {"startTimeOfDay": "18:00", "endTimeOfDay": "00:00"}},
            {"priceKwh": 0.20},
        ]
    },
}


async def test_an_evening_price_starts_at_18_on_the_stations_wall_clock(
    autojump_clock: MockClock,
) -> None:
    """A station in Berlin (UTC+1 in January): the evening price starts at 17:00 UTC, and the
    embedded CSMS, reading the tariff on the same clock, agrees with the final cost."""
    in_berlin = {**STATION, "stations": {**STATION["stations"], "time_zone": "Europe/Berlin"}}
    csms_config = CsmsConfig(reactions=tariff_reactions(EVENING, time_zone="Europe/Berlin"))
    async with station_on_memory_link(csms_config=csms_config, scenario=in_berlin) as (
        station,
        csms,
    ):
        with trio.fail_after(8 * 3600):
            await csms.wait_for_message(STATION_ID, "StatusNotification")
            await trio.testing.wait_all_tasks_blocked()  # the tariff is set after the boot
            half_past_four = dt.datetime(2026, 1, 15, 16, 30, tzinfo=dt.UTC).timestamp()
            await trio.sleep(half_past_four - station.clock.epoch_s())
            transaction_id = await running_transaction(csms, charging=True)
            await trio.sleep(3600)
            ended = await stopped_transaction(csms, transaction_id)
            await trio.testing.wait_all_tasks_blocked()
        pushes = csms.statistics().pushes
    periods = ended["costDetails"]["chargingPeriods"]
    assert [p["startPeriod"] for p in periods][-1] == "2026-01-15T17:00:00.000Z"
    day, evening = periods
    day_wh = day["dimensions"][0]["volume"]
    evening_wh = evening["dimensions"][0]["volume"]
    assert day_wh > 0 and evening_wh > 0
    # Each part at its own price, rounded to cents as a whole.
    expected = round(day_wh / 1000 * 0.20 + evening_wh / 1000 * 0.50 + 1e-9, 2)
    assert ended["costDetails"]["totalCost"]["energy"]["exclTax"] == expected
    assert pushes.get("cost_agreed") == 1
    assert "cost_disagreed" not in pushes
