"""chargingPriority as the CSMS sees it: two EVs share a site's connection, and the one the
CSMS ranks higher charges at the power it wants while the other gets what is left, in the
power the TransactionEvents' meter values report."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.ev_models import EvArrival, load_catalogue
from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import Station
from fleetsim.simulator.station.ev_driver import ev_arrives
from tests.helpers import STATION_ID, TEST_EV, station_on_memory_link

VERSIONS = pytest.mark.parametrize("version", ["2.1", "2.0.1"])
TEST_MODEL = load_catalogue({"test-ev": TEST_EV})["test-ev"]
#: Two 22 kW EVSEs behind a 12 kW connection; each 11 kW EV alone would take 11 kW.
CONSTRAINED_SITE: dict[str, Any] = {
    "stations": {"count": 1, "evses": [{}, {}], "meter_interval_s": 60},
    "sites": [{"name": "test", "capacity_kw": 12, "arrivals_per_evse_per_day": 0}],
}
EV_W = 11_000.0
SITE_W = 12_000.0
#: Long enough for every wait below: a few meter intervals and a balancing cycle.
WITHIN_S = 900


def arrive(station: Station, evse_id: int, id_token: str) -> None:
    """An 11 kW EV plugs in at `evse_id` (cable first) and stays two hours."""
    now_s = station.clock.sim_now()
    arrival = EvArrival(
        arrival_s=now_s,
        model=TEST_MODEL,
        soc_start=0.2,
        target_soc=0.9,
        min_soc=0.1,
        departure_s=now_s + 7200,
        id_token=id_token,
        id_token_type="ISO14443",
        id_token_first=False,
        uses_iso15118_20=False,
    )
    ev_arrives(station, station.evses[evse_id - 1], arrival)


def power_w(payload: Mapping[str, Any]) -> float:
    """Power.Active.Import of a TransactionEvent's meter value."""
    for meter_value in payload["meterValue"]:
        for sample in meter_value["sampledValue"]:
            if sample.get("measurand") == "Power.Active.Import":
                return float(sample["value"])
    raise AssertionError(f"no Power.Active.Import in {payload}")


def periodic(evse_id: int) -> Callable[[Mapping[str, Any]], bool]:
    return lambda p: p["evse"]["id"] == evse_id and p["triggerReason"] == "MeterValuePeriodic"


def messages_now(csms: Csms) -> int:
    return csms.station(STATION_ID).messages_received


async def next_power_w(csms: Csms, evse_id: int) -> float:
    """The power in `evse_id`'s next periodic meter value."""
    payload = await csms.wait_for_message(
        STATION_ID, "TransactionEvent", periodic(evse_id), since=messages_now(csms)
    )
    return power_w(payload)


class PriorityCsms:
    """Answers TransactionEvent as the embedded CSMS does, plus the priorities a test sets:
    `token_priority` in the idTokenInfo of the tokens named, `override` at the top level for
    the transactions named."""

    def __init__(self) -> None:
        self.token_priority: dict[str, int] = {}
        self.override: dict[str, int] = {}

    def answer(self, station_id: str, request: Mapping[str, Any]) -> Mapping[str, Any]:
        response: dict[str, Any] = {}
        token = request.get("idToken")
        if token is not None:
            info: dict[str, Any] = {"status": "Accepted"}
            if token["idToken"] in self.token_priority:
                info["chargingPriority"] = self.token_priority[token["idToken"]]
            response["idTokenInfo"] = info
        transaction_id = request["transactionInfo"]["transactionId"]
        if transaction_id in self.override:
            response["chargingPriority"] = self.override[transaction_id]
        return response

    def config(self) -> CsmsConfig:
        return CsmsConfig(response_overrides={"TransactionEvent": self.answer})


async def both_charging(station: Station, csms: Csms, *, first: str, second: str) -> None:
    """EVs with tokens `first` (EVSE 1) and `second` (EVSE 2) plug in and start charging."""
    since = messages_now(csms)
    arrive(station, 1, first)
    arrive(station, 2, second)
    for evse_id in (1, 2):
        await csms.wait_for_message(
            STATION_ID,
            "TransactionEvent",
            lambda p, e=evse_id: p["evse"]["id"] == e and p["triggerReason"] == "Authorized",
            since=since,
        )


@VERSIONS
async def test_the_transaction_the_csms_ranks_higher_takes_the_power_it_wants(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    csms_side = PriorityCsms()
    async with station_on_memory_link(
        csms_config=csms_side.config(), scenario=CONSTRAINED_SITE, ocpp_version=version
    ) as (station, csms):
        with trio.fail_after(WITHIN_S):
            await both_charging(station, csms, first="DRIVER-A", second="DRIVER-B")
            # Equal ranks share the connection equally.
            assert await next_power_w(csms, 1) == pytest.approx(SITE_W / 2)
            assert await next_power_w(csms, 2) == pytest.approx(SITE_W / 2)

            transaction = station.evses[0].transaction
            assert transaction is not None
            csms_side.override[transaction.id] = 5
            await next_power_w(csms, 1)  # its answer carries the priority

            # The next meter values show the new shares: EV A its 11 kW, EV B the rest.
            assert await next_power_w(csms, 1) == pytest.approx(EV_W)
            assert transaction.charging_priority == 5
            assert await next_power_w(csms, 2) == pytest.approx(SITE_W - EV_W)
            assert station.evses[1].power_w == pytest.approx(SITE_W - EV_W)


@VERSIONS
async def test_a_tokens_priority_counts_from_its_first_answer_and_the_transactions_overrules_it(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    csms_side = PriorityCsms()
    csms_side.token_priority["DRIVER-A"] = 5
    async with station_on_memory_link(
        csms_config=csms_side.config(), scenario=CONSTRAINED_SITE, ocpp_version=version
    ) as (station, csms):
        with trio.fail_after(WITHIN_S):
            await both_charging(station, csms, first="DRIVER-A", second="DRIVER-B")
            first, second = (evse.transaction for evse in station.evses)
            assert first is not None and second is not None
            assert await next_power_w(csms, 1) == pytest.approx(EV_W)
            assert await next_power_w(csms, 2) == pytest.approx(SITE_W - EV_W)
            assert (first.charging_priority, second.charging_priority) == (5, 0)

            # For this transaction alone, the CSMS ranks EV A below the default.
            csms_side.override[first.id] = -3
            await next_power_w(csms, 1)
            assert await next_power_w(csms, 1) == pytest.approx(SITE_W - EV_W)
            assert (first.token_priority, first.charging_priority) == (5, -3)
            assert await next_power_w(csms, 2) == pytest.approx(EV_W)


async def test_a_priority_beyond_the_range_counts_as_its_bound(autojump_clock: MockClock) -> None:
    csms_side = PriorityCsms()
    csms_side.token_priority.update({"DRIVER-A": 42, "DRIVER-B": -42})
    async with station_on_memory_link(
        csms_config=csms_side.config(), scenario=CONSTRAINED_SITE
    ) as (station, csms):
        with trio.fail_after(WITHIN_S):
            await both_charging(station, csms, first="DRIVER-A", second="DRIVER-B")
            await next_power_w(csms, 1)  # after the answers
        first, second = (evse.transaction for evse in station.evses)
        assert first is not None and second is not None
        assert (first.charging_priority, second.charging_priority) == (9, -9)


def ranked(token: str, share: float) -> bool:
    """Whether the embedded CSMS with `priority_share` = `share` ranks `token`."""
    return zlib.crc32(token.casefold().encode()) < round(share * 2**32)


@VERSIONS
async def test_the_embedded_csms_ranks_its_priority_share_of_drivers(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    tokens = [f"DRIVER-{number}" for number in range(1, 50)]
    vip = next(token for token in tokens if ranked(token, 0.5))
    other = next(token for token in tokens if not ranked(token, 0.5))
    config = CsmsConfig(priority_share=0.5, charging_priority=7)
    async with station_on_memory_link(
        csms_config=config, scenario=CONSTRAINED_SITE, ocpp_version=version
    ) as (station, csms):
        with trio.fail_after(WITHIN_S):
            # The VIP's EV comes second, and still takes the power it wants.
            await both_charging(station, csms, first=other, second=vip)
            assert await next_power_w(csms, 2) == pytest.approx(EV_W)
            assert await next_power_w(csms, 1) == pytest.approx(SITE_W - EV_W)
        vip_transaction = station.evses[1].transaction
        assert vip_transaction is not None and vip_transaction.token_priority == 7
