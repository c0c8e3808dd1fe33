"""Ad hoc payment (C17-C25) as the CSMS sees it: a driver pays by card at the station's
terminal (Authorize with a DirectPayment IdToken, the transaction, NotifySettlement with its
cost), a prepaid card's balance stops the energy, a company VAT number is validated first, and a
web payment announced by NotifyWebPaymentStarted leads to a remote start or times out.

The tariff block is not needed here: a test-only block provides the `transaction_cost` hook,
a price per kWh of the energy the transaction delivered."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry
from trio.testing import MockClock

import fleetsim.simulator.station.station as station_module
from fleetsim.ev_models import EvArrival, load_catalogue
from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.metrics import RunStatsCollector
from fleetsim.simulator.ocpp import CallErrorReceived, OcppVersion
from fleetsim.simulator.report import build_summary
from fleetsim.simulator.report.summary import outcome_lines
from fleetsim.simulator.run import station_config
from fleetsim.simulator.station import Station
from fleetsim.simulator.station.blocks import BLOCKS
from fleetsim.simulator.station.config import PaymentConfig, StationConfig
from fleetsim.simulator.station.core import Block, StationCore
from fleetsim.simulator.station.device_model import DeviceModelSpec
from fleetsim.simulator.station.ev_driver import ev_arrives
from fleetsim.simulator.station.evse import Evse, Transaction
from fleetsim.simulator.station.registry import Registry, StationSpec, station_spec
from fleetsim.simulator.station.transaction import end_transaction
from tests.helpers import STATION_ID, TEST_EV, one_station_scenario, station_on_memory_link
from tests.station.steps import REMOTE_DRIVERS, arrives, get_variable, messages_now, set_variable

TEST_MODEL = load_catalogue({"test-ev": TEST_EV})["test-ev"]
PRICE_PER_KWH = 0.30
WITHIN_S = 4 * 3600


class CostBook:
    """The test's tariff: PRICE_PER_KWH for the energy since the transaction started, and
    the last cost it gave for each transaction."""

    def __init__(self) -> None:
        self.costs: dict[str, float] = {}

    def cost(self, station: StationCore, evse: Evse, transaction: Transaction) -> float:
        energy_wh = evse.register_wh(station.clock.sim_now()) - transaction.start_register_wh
        cost = PRICE_PER_KWH * energy_wh / 1000
        self.costs[transaction.id] = cost
        return cost


@asynccontextmanager
async def payment_station(
    payment: PaymentConfig | None,
    *,
    priced: bool = True,
    version: OcppVersion = "2.1",
    csms_config: CsmsConfig | None = None,
) -> AsyncIterator[tuple[Station, Csms, CostBook]]:
    """A station with a payment terminal (`payment`) and, when `priced`, a tariff."""
    book = CostBook()
    scenario = one_station_scenario(REMOTE_DRIVERS, ocpp_version=version)
    config = dataclasses.replace(station_config(scenario), payment=payment)
    # The test's own cost book stands in for block I, whose tariffs are tested on their own.
    blocks = [block for block in BLOCKS if block.transaction_cost is None]
    if priced:
        blocks.append(Block(letter="I", name="test-tariff", transaction_cost=book.cost))
    registry = Registry.merge(blocks)
    spec = StationSpec(config, registry, DeviceModelSpec(registry.variables(config)))
    original = station_module.station_spec

    def spec_of(wanted: StationConfig) -> StationSpec:
        return spec if wanted is config else original(wanted)

    station_module.station_spec = spec_of  # type: ignore[assignment]
    try:
        async with station_on_memory_link(
            config, csms_config=csms_config, scenario=REMOTE_DRIVERS, ocpp_version=version
        ) as (station, csms):
            yield station, csms, book
    finally:
        station_module.station_spec = original  # type: ignore[assignment]


def arrive(station: Station, *, id_token: str = "04A2B3C4D5E6F7", stay_s: float = 1800) -> None:
    """An 11 kW EV plugs in at EVSE 1 (cable first) and stays `stay_s`."""
    now_s = station.clock.sim_now()
    arrival = EvArrival(
        arrival_s=now_s,
        model=TEST_MODEL,
        soc_start=0.2,
        target_soc=1.0,
        min_soc=0.1,
        departure_s=now_s + stay_s,
        id_token=id_token,
        id_token_type="ISO14443",
        id_token_first=False,
        uses_iso15118_20=False,
    )
    ev_arrives(station, station.evses[0], arrival)


def card_payer(**fields: Any) -> PaymentConfig:
    return PaymentConfig(card_share=1.0, **fields)


def is_direct_payment(payload: Mapping[str, Any]) -> bool:
    return payload.get("idToken", {}).get("type") == "DirectPayment"


async def test_card_payment_is_authorized_charged_and_settled_at_its_cost(
    autojump_clock: MockClock,
) -> None:
    async with payment_station(card_payer()) as (station, csms, book):
        since = messages_now(csms)
        arrive(station)
        authorize = await arrives(csms, "Authorize", since=since)
        assert authorize["idToken"]["type"] == "DirectPayment"
        psp_ref = authorize["idToken"]["idToken"]
        authorized = await arrives(csms, "TransactionEvent", is_direct_payment, since=since)
        assert authorized["idToken"]["idToken"] == psp_ref
        transaction_id = authorized["transactionInfo"]["transactionId"]
        with trio.fail_after(WITHIN_S):
            ended = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended", since=since
            )
            settlement = await csms.wait_for_message(STATION_ID, "NotifySettlement", since=since)
        assert ended["transactionInfo"]["transactionId"] == transaction_id
        # 11 kW for half an hour at 0.30 a kWh, well under the 50 held on the card.
        assert book.costs[transaction_id] == pytest.approx(5.5 * PRICE_PER_KWH, rel=1e-3)
        assert settlement["status"] == "Settled"
        assert settlement["pspRef"] == psp_ref
        assert settlement["transactionId"] == transaction_id
        assert settlement["settlementAmount"] == round(book.costs[transaction_id], 2)
        assert "vatNumber" not in settlement
        assert station.stats.payments_by_outcome == {"settled": 1}


async def test_prepaid_balance_stops_the_energy_and_ends_the_transaction(
    autojump_clock: MockClock,
) -> None:
    payment = card_payer(prepaid_share=1.0, prepaid_balance=1.0)
    async with payment_station(payment) as (station, csms, book):
        await set_variable(csms, "TxCtrlr", "TxStopPoint", "EnergyTransfer")
        since = messages_now(csms)
        arrive(station, stay_s=7200)
        with trio.fail_after(WITHIN_S):
            ended = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended", since=since
            )
            settlement = await csms.wait_for_message(STATION_ID, "NotifySettlement", since=since)
        transaction_id = ended["transactionInfo"]["transactionId"]
        # 1.00 buys 3.33 kWh: about 18 minutes at 11 kW, long before the EV leaves.
        # The balance is the transaction's maxCost (E16): reaching it ends the energy.
        assert ended["triggerReason"] == "CostLimitReached"
        assert station.clock.timestamp() < "2026-01-15T14:00:00Z"
        assert book.costs[transaction_id] == pytest.approx(1.0, abs=0.005)
        assert settlement["status"] == "Settled"
        assert settlement["settlementAmount"] == pytest.approx(1.0, abs=0.005)
        assert station.stats.payments_by_outcome == {"prepaid_exhausted": 1, "settled": 1}


async def test_without_a_tariff_the_terminal_refuses_the_card(autojump_clock: MockClock) -> None:
    async with payment_station(card_payer(), priced=False) as (station, csms, _):
        since = messages_now(csms)
        arrive(station)
        authorize = await arrives(csms, "Authorize", since=since)
        assert authorize["idToken"] == {"idToken": "04A2B3C4D5E6F7", "type": "ISO14443"}
        assert station.stats.payments_by_outcome == {"no_tariff": 1}


async def test_a_declined_card_charges_nothing(autojump_clock: MockClock) -> None:
    async with payment_station(card_payer(decline_share=1.0)) as (station, csms, _):
        since = messages_now(csms)
        arrive(station, stay_s=600)
        with trio.fail_after(WITHIN_S):
            await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended", since=since
            )
        sent = {m.action for m in csms.station(STATION_ID).messages_since(since)}
        assert "Authorize" not in sent and "NotifySettlement" not in sent
        assert station.stats.payments_by_outcome == {"declined": 1}


async def test_a_company_vat_number_is_validated_and_settled_with(
    autojump_clock: MockClock,
) -> None:
    async with payment_station(card_payer(vat_number_share=1.0)) as (station, csms, _):
        since = messages_now(csms)
        arrive(station, stay_s=600)
        validation = await arrives(csms, "VatNumberValidation", since=since)
        assert validation["evseId"] == 1
        with trio.fail_after(WITHIN_S):
            settlement = await csms.wait_for_message(STATION_ID, "NotifySettlement", since=since)
        assert settlement["vatNumber"] == validation["vatNumber"]
        assert settlement["vatCompany"]["name"] == f"Company {validation['vatNumber']}"


async def test_settlement_by_the_csms_sends_no_settlement(autojump_clock: MockClock) -> None:
    async with payment_station(card_payer()) as (station, csms, _):
        await set_variable(csms, "PaymentCtrlr", "SettlementByCSMS", "true")
        since = messages_now(csms)
        arrive(station, stay_s=600)
        with trio.fail_after(WITHIN_S):
            await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended", since=since
            )
        await trio.sleep(60)
        sent = {m.action for m in csms.station(STATION_ID).messages_since(since)}
        assert "NotifySettlement" not in sent
        assert station.stats.payments_by_outcome == {"settled": 1}


async def test_a_receipt_url_comes_from_the_receipt_server(autojump_clock: MockClock) -> None:
    async with payment_station(card_payer()) as (station, csms, _):
        await set_variable(csms, "PaymentCtrlr", "ReceiptServerUrl", "https://receipts.example")
        since = messages_now(csms)
        arrive(station, stay_s=600)
        with trio.fail_after(WITHIN_S):
            settlement = await csms.wait_for_message(STATION_ID, "NotifySettlement", since=since)
        assert settlement["receiptUrl"] == f"https://receipts.example/{settlement['pspRef']}"


async def test_without_authorize_direct_payment_the_card_authorizes_alone(
    autojump_clock: MockClock,
) -> None:
    async with payment_station(card_payer()) as (station, csms, _):
        await set_variable(csms, "PaymentCtrlr", "AuthorizeDirectPayment", "false")
        since = messages_now(csms)
        arrive(station, stay_s=600)
        await arrives(csms, "TransactionEvent", is_direct_payment, since=since)
        sent = {m.action for m in csms.station(STATION_ID).messages_since(since)}
        assert "Authorize" not in sent


async def test_a_201_station_never_takes_cards(autojump_clock: MockClock) -> None:
    async with payment_station(card_payer(vat_number_share=1.0), version="2.0.1") as (
        station,
        csms,
        _,
    ):
        since = messages_now(csms)
        arrive(station, stay_s=600)
        with trio.fail_after(WITHIN_S):
            await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended", since=since
            )
        await trio.sleep(60)
        sent = csms.station(STATION_ID).messages_since(since)
        assert not {m.action for m in sent} & {"NotifySettlement", "VatNumberValidation"}
        assert not any(is_direct_payment(m.payload) for m in sent)
        assert station.stats.payments_by_outcome == {}


# -- web payment (C25) ------------------------------------------------------------------------


async def web_payment_active(csms: Csms, evse_id: int = 1) -> str:
    return await get_variable(csms, "WebPaymentsCtrlr", "Active", {"id": evse_id})


async def test_a_web_payment_leads_to_a_running_transaction(autojump_clock: MockClock) -> None:
    async with payment_station(None) as (station, csms, _):
        assert await web_payment_active(csms) == "false"
        answer = await csms.call(
            STATION_ID, "NotifyWebPaymentStarted", {"evseId": 1, "timeout": 300}
        )
        assert answer == {}
        assert await web_payment_active(csms) == "true"
        since = messages_now(csms)
        token = {"idToken": "PSP-WEB-000001", "type": "DirectPayment"}
        start = await csms.call(
            STATION_ID,
            "RequestStartTransaction",
            {"remoteStartId": 5, "idToken": token, "evseId": 1},
        )
        assert start["status"] == "Accepted"
        started = await arrives(
            csms, "TransactionEvent", lambda p: p["eventType"] == "Started", since=since
        )
        assert started["idToken"] == token
        await trio.testing.wait_all_tasks_blocked()
        assert await web_payment_active(csms) == "false"
        assert station.stats.payments_by_outcome == {"web_started": 1}


async def test_a_web_payment_without_a_start_times_out(autojump_clock: MockClock) -> None:
    async with payment_station(None) as (station, csms, _):
        since = messages_now(csms)
        await csms.call(STATION_ID, "NotifyWebPaymentStarted", {"evseId": 1, "timeout": 30})
        assert await web_payment_active(csms) == "true"
        await trio.sleep(31)
        assert await web_payment_active(csms) == "false"
        sent = [m.action for m in csms.station(STATION_ID).messages_since(since)]
        assert "TransactionEvent" not in sent
        assert station.stats.payments_by_outcome == {"web_timeout": 1}


async def test_a_web_payment_for_an_evse_the_station_lacks_is_an_error(
    autojump_clock: MockClock,
) -> None:
    async with payment_station(None) as (_, csms, _):
        with pytest.raises(CallErrorReceived, match="no EVSE 9"):
            await csms.call(STATION_ID, "NotifyWebPaymentStarted", {"evseId": 9, "timeout": 30})


def test_payment_variables_exist_only_on_21_stations_with_a_terminal() -> None:
    def components(config: StationConfig) -> set[str]:
        return {spec.component for spec in station_spec(config).device_model.variables}

    assert "PaymentCtrlr" in components(StationConfig(payment=PaymentConfig()))
    assert "PaymentCtrlr" not in components(StationConfig())
    assert "WebPaymentsCtrlr" in components(StationConfig())
    old = StationConfig(ocpp_version="2.0.1", payment=PaymentConfig())
    assert not components(old) & {"PaymentCtrlr", "WebPaymentsCtrlr"}


async def test_the_embedded_csms_rejects_what_is_no_vat_number(autojump_clock: MockClock) -> None:
    async with station_on_memory_link() as (station, _csms):
        answer = await station.call("VatNumberValidation", {"vatNumber": "12-34"})
        assert answer is not None
        assert answer["status"] == "Rejected"
        assert answer["statusInfo"]["reasonCode"] == "InvalidValue"
        answer = await station.call("VatNumberValidation", {"vatNumber": "DE123456789"})
        assert answer is not None and answer["status"] == "Accepted"
        assert answer["company"]["name"] == "Company DE123456789"


async def test_an_ended_card_transaction_with_no_energy_is_canceled(
    autojump_clock: MockClock,
) -> None:
    async with payment_station(card_payer()) as (station, csms, _):
        since = messages_now(csms)
        arrive(station, stay_s=3600)
        await arrives(csms, "TransactionEvent", is_direct_payment, since=since)
        # Ended by the station at once, before a watt-hour flowed (C20).
        await end_transaction(station, station.evses[0], "StopAuthorized", "Local")
        settlement = await arrives(csms, "NotifySettlement", since=since)
        assert settlement["status"] == "Canceled"
        assert settlement["settlementAmount"] == 0.0


# -- with block I's tariffs, and what the run counts ---------------------------------------------

#: A station with a payment terminal whose drivers all pay with a prepaid card holding 1.00.
PREPAID_DRIVERS: dict[str, Any] = {
    **REMOTE_DRIVERS,
    "stations": {"count": 1, "payment_terminal": {}},
    "ev_fleet": {
        **REMOTE_DRIVERS["ev_fleet"],
        "payment": {"card_share": 1.0, "prepaid_share": 1.0, "prepaid_balance": 1.0},
    },
}
#: 0.30 per kWh, nothing else.
PER_KWH: dict[str, Any] = {
    "tariffId": "per-kwh",
    "currency": "EUR",
    "energy": {"prices": [{"priceKwh": PRICE_PER_KWH}]},
}


async def test_under_a_default_tariff_a_prepaid_card_runs_out_and_the_run_counts_it(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=PREPAID_DRIVERS) as (station, csms):
        await set_variable(csms, "TxCtrlr", "TxStopPoint", "EnergyTransfer")
        answer = await csms.call(STATION_ID, "SetDefaultTariff", {"evseId": 0, "tariff": PER_KWH})
        assert answer["status"] == "Accepted"
        since = messages_now(csms)
        arrive(station, stay_s=7200)
        with trio.fail_after(WITHIN_S):
            ended = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended", since=since
            )
            settlement = await csms.wait_for_message(STATION_ID, "NotifySettlement", since=since)
        stats = station.stats
    # 1.00 at 0.30 a kWh buys 3.33 kWh: the balance is the transaction's maxCost.
    assert ended["triggerReason"] == "CostLimitReached"
    assert ended["transactionInfo"]["stoppedReason"] == "LocalOutOfCredit"
    assert ended["costDetails"]["totalCost"]["total"]["inclTax"] == pytest.approx(1.0, abs=0.01)
    # The final cost is settled after the end, from the tariff's meter.
    assert settlement["status"] == "Settled"
    assert settlement["settlementAmount"] == pytest.approx(1.0, abs=0.01)
    assert stats.payments_by_outcome == {"prepaid_exhausted": 1, "settled": 1}
    assert stats.cost_limits_reached == 1
    summary = build_summary(
        stats,
        scenario_name="prepaid",
        stations_total=1,
        wall_seconds=1.0,
        simulated_seconds=3600.0,
        csms_url="memory:",
        ocpp_version="2.1",
        errors=[],
    )
    assert summary["payments"] == {"prepaid_exhausted": 1, "settled": 1}
    assert summary["cost_limits"] == {"reached": 1, "ended_local_out_of_credit": 1}
    assert "battery_swaps" not in summary
    assert outcome_lines(summary) == [
        "payments: 1 settled, 1 prepaid balances spent",
        "cost limits (maxCost): 1 reached, 1 transactions ended LocalOutOfCredit",
    ]
    registry = CollectorRegistry()
    registry.register(RunStatsCollector(lambda: [stats]))
    value = registry.get_sample_value
    assert value("fleetsim_payments_total", {"outcome": "prepaid_exhausted"}) == 1
    assert value("fleetsim_payments_total", {"outcome": "settled"}) == 1
    assert value("fleetsim_payments_total", {"outcome": "declined"}) == 0
    assert value("fleetsim_cost_limits_reached_total") == 1
    assert value("fleetsim_transactions_ended_total", {"reason": "LocalOutOfCredit"}) == 1
