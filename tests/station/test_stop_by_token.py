"""A driver ends a transaction by presenting an IdToken at the EVSE's reader (E07, C09, C16).

The transactions are remote starts for a known token (the CSMS's TransactionEvent answer tells
the station its group); the card is held to the reader through `id_reader.present_id_token`,
the station's reader, and everything else is checked where the CSMS sees it: the Authorize the
station sends to learn a token's group, and the TransactionEvent that ends the transaction --
or the absence of one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import Station, StationConfig
from fleetsim.simulator.station.id_reader import present_id_token
from tests.helpers import STATION_ID, TEST_EV, busy_site, station_on_memory_link
from tests.station.steps import set_variables

VERSIONS: tuple[OcppVersion, ...] = ("2.1", "2.0.1")
CARD_A = {"idToken": "04A1A1A1A1A1A1", "type": "ISO14443"}
#: Of CARD_A's group (a second card of the same household).
CARD_B = {"idToken": "04B2B2B2B2B2B2", "type": "ISO14443"}
#: Of CARD_A's group, but blocked.
BLOCKED_B = {"idToken": "04B3B3B3B3B3B3", "type": "ISO14443"}
#: Of another group.
CARD_C = {"idToken": "04C3C3C3C3C3C3", "type": "ISO14443"}
#: Of no group the CSMS names.
CARD_D = {"idToken": "04D4D4D4D4D4D4", "type": "ISO14443"}
MASTER = {"idToken": "04FFFFFFFFFFFF", "type": "ISO14443"}
GROUPS = {
    CARD_A["idToken"]: "FAMILY-7",
    CARD_B["idToken"]: "FAMILY-7",
    BLOCKED_B["idToken"]: "FAMILY-7",
    CARD_C["idToken"]: "NEIGHBOURS-2",
    MASTER["idToken"]: "TECHNICIANS",
}
#: Remote-start drivers plug in a minute after the request and stay four hours.
REMOTE_DRIVERS: dict[str, Any] = {
    "sites": [
        {"name": "test", "arrivals_per_evse_per_day": 0, "dwell_s": {"min": 14400, "max": 14400}}
    ],
    "ev_fleet": {
        "models": {"test-ev": 1.0},
        "extra_models": {"test-ev": TEST_EV},
        "remote_start_plugin_delay_s": 60,
    },
}
TWO_EVSES: dict[str, Any] = {"stations": {"count": 1, "evses": [{}, {}]}}


def id_token_info(id_token: Mapping[str, Any]) -> dict[str, Any]:
    """What this CSMS says of a token: Accepted (Blocked for BLOCKED_B), with its group."""
    status = "Blocked" if id_token["idToken"] == BLOCKED_B["idToken"] else "Accepted"
    info: dict[str, Any] = {"status": status}
    group = GROUPS.get(id_token["idToken"])
    if group is not None:
        info["groupIdToken"] = {"idToken": group, "type": "Central"}
    return info


def answer_authorize(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    return {"idTokenInfo": id_token_info(payload["idToken"])}


def answer_transaction_event(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    if "idToken" not in payload:
        return {}
    return {"idTokenInfo": id_token_info(payload["idToken"])}


GROUP_CSMS = CsmsConfig(
    response_overrides={
        "Authorize": answer_authorize,
        "TransactionEvent": answer_transaction_event,
    }
)


def config(version: OcppVersion, evses: int = 1, **overrides: Any) -> StationConfig:
    from fleetsim.simulator.station import EvseConfig

    return StationConfig(ocpp_version=version, evses=(EvseConfig(),) * evses, **overrides)


def authorized_tokens(csms: Csms) -> list[str]:
    return [
        message.payload["idToken"]["idToken"]
        for message in csms.station(STATION_ID).messages
        if message.action == "Authorize"
    ]


def events_of(csms: Csms, transaction_id: str) -> list[Mapping[str, Any]]:
    return [
        message.payload
        for message in csms.station(STATION_ID).messages
        if message.action == "TransactionEvent"
        and message.payload["transactionInfo"]["transactionId"] == transaction_id
    ]


async def charging_for(csms: Csms, token: Mapping[str, str], evse_id: int, start_id: int) -> str:
    """A remote start for `token` on `evse_id`, once its EV charges: the transaction id."""
    answer = await csms.call(
        STATION_ID,
        "RequestStartTransaction",
        {"idToken": token, "remoteStartId": start_id, "evseId": evse_id},
    )
    assert answer["status"] == "Accepted", answer
    with trio.fail_after(600):
        started = await csms.wait_for_message(
            STATION_ID,
            "TransactionEvent",
            lambda p: p["transactionInfo"].get("remoteStartId") == start_id,
        )
        transaction_id = str(started["transactionInfo"]["transactionId"])
        await csms.wait_for_message(
            STATION_ID,
            "TransactionEvent",
            lambda p: (
                p["transactionInfo"]["transactionId"] == transaction_id
                and p["transactionInfo"].get("chargingState") == "Charging"
            ),
        )
    return transaction_id


async def ended(csms: Csms, transaction_id: str, within_s: float = 60) -> Mapping[str, Any]:
    with trio.fail_after(within_s):
        return await csms.wait_for_message(
            STATION_ID,
            "TransactionEvent",
            lambda p: (
                p["eventType"] == "Ended"
                and p["transactionInfo"]["transactionId"] == transaction_id
            ),
        )


def ended_by(event: Mapping[str, Any]) -> tuple[str, str, str]:
    return (
        event["triggerReason"],
        event["transactionInfo"]["stoppedReason"],
        event["idToken"]["idToken"],
    )


async def still_running(csms: Csms, station: Station, transaction_id: str) -> None:
    """The transaction goes on: its next periodic meter value arrives, and no Ended before."""
    seen = len(events_of(csms, transaction_id))
    with trio.fail_after(120):
        await csms.wait_for_message(
            STATION_ID,
            "TransactionEvent",
            lambda p: (
                p["transactionInfo"]["transactionId"] == transaction_id
                and p["triggerReason"] == "MeterValuePeriodic"
                and p["seqNo"] >= seen
            ),
        )
    assert all(e["eventType"] != "Ended" for e in events_of(csms, transaction_id))


# -- E07: the token that started it --------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_drivers_own_token_ends_the_transaction_without_an_authorize(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(
        config(version), GROUP_CSMS, REMOTE_DRIVERS, ocpp_version=version
    ) as (station, csms):
        transaction_id = await charging_for(csms, CARD_A, 1, 1)
        # The card's value in other letters is the same card: idTokens are case insensitive.
        same_card = {"idToken": CARD_A["idToken"].lower(), "type": "ISO14443"}
        assert await present_id_token(station, station.evses[0], same_card) == "Local"
        event = await ended(csms, transaction_id)
    assert ended_by(event) == ("StopAuthorized", "Local", same_card["idToken"])
    assert event["transactionInfo"]["chargingState"] == "EVConnected"
    assert authorized_tokens(csms) == []
    assert [e["seqNo"] for e in events_of(csms, transaction_id)] == list(
        range(len(events_of(csms, transaction_id)))
    )


# -- C09: a token of the same group ----------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_token_of_the_same_group_ends_it_once_the_csms_names_its_group(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(
        config(version), GROUP_CSMS, REMOTE_DRIVERS, ocpp_version=version
    ) as (station, csms):
        transaction_id = await charging_for(csms, CARD_A, 1, 1)
        assert await present_id_token(station, station.evses[0], CARD_B) == "Local"
        event = await ended(csms, transaction_id)
    assert ended_by(event) == ("StopAuthorized", "Local", CARD_B["idToken"])
    # The station asked about the new card to learn its group (C09), before ending.
    assert authorized_tokens(csms) == [CARD_B["idToken"]]


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_token_of_another_group_is_refused_and_the_transaction_goes_on(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(
        config(version), GROUP_CSMS, REMOTE_DRIVERS, ocpp_version=version
    ) as (station, csms):
        transaction_id = await charging_for(csms, CARD_A, 1, 1)
        assert await present_id_token(station, station.evses[0], CARD_C) is None
        assert await present_id_token(station, station.evses[0], CARD_D) is None
        assert await present_id_token(station, station.evses[0], BLOCKED_B) is None
        await still_running(csms, station, transaction_id)
    assert authorized_tokens(csms) == [
        CARD_C["idToken"],
        CARD_D["idToken"],
        BLOCKED_B["idToken"],
    ]
    assert all(e["triggerReason"] != "StopAuthorized" for e in events_of(csms, transaction_id))


async def test_offline_the_group_comes_from_the_cache_and_an_unknown_token_is_refused(
    autojump_clock: MockClock,
) -> None:
    """Offline the station cannot ask: the cache knows CARD_B's group (and the CSMS's answer
    about the transaction gave CARD_A's); CARD_C, never answered about, is refused."""
    offline_for_an_hour = config(
        "2.1", retry_backoff_wait_minimum_s=3600.0, retry_backoff_random_range_s=0.0
    )
    async with station_on_memory_link(offline_for_an_hour, GROUP_CSMS, REMOTE_DRIVERS) as (
        station,
        csms,
    ):
        await set_variables(csms, {("AuthCacheCtrlr", "Enabled"): "true"})
        transaction_id = await charging_for(csms, CARD_A, 1, 1)
        assert await station.authorize(CARD_B) is True  # the answer is cached, with its group
        await csms.disconnect(STATION_ID)
        with trio.fail_after(10):
            while station.online:
                await trio.sleep(0.01)
        assert await present_id_token(station, station.evses[0], CARD_C) is None
        assert await present_id_token(station, station.evses[0], CARD_B) == "Local"
        # Delivered, marked offline, after the station reconnects (an hour's back-off).
        event = await ended(csms, transaction_id, within_s=2 * 3600)
    assert ended_by(event) == ("StopAuthorized", "Local", CARD_B["idToken"])
    assert event["offline"] is True
    assert authorized_tokens(csms) == [CARD_B["idToken"]]


# -- C16: the master pass ----------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_master_pass_ends_every_transaction_and_starts_none(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(
        config(version, evses=2), GROUP_CSMS, REMOTE_DRIVERS | TWO_EVSES, ocpp_version=version
    ) as (station, csms):
        first = await charging_for(csms, CARD_A, 1, 1)
        second = await charging_for(csms, CARD_C, 2, 2)
        # Before the station knows the master pass group, the card is one of another group.
        assert await present_id_token(station, station.evses[0], MASTER) is None
        await set_variables(csms, {("AuthCtrlr", "MasterPassGroupId"): "technicians"})
        assert await present_id_token(station, station.evses[0], MASTER) == "MasterPass"
        events = [await ended(csms, first), await ended(csms, second)]
        # A master pass is for stopping: it never starts a transaction.
        assert await station.authorize(MASTER) is False
        assert await station.authorize(CARD_A) is True
    for event in events:
        assert ended_by(event) == ("StopAuthorized", "MasterPass", MASTER["idToken"])


async def test_a_master_pass_at_an_idle_evse_still_ends_the_others(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(
        config("2.1", evses=2), GROUP_CSMS, REMOTE_DRIVERS | TWO_EVSES
    ) as (station, csms):
        await set_variables(csms, {("AuthCtrlr", "MasterPassGroupId"): "TECHNICIANS"})
        transaction_id = await charging_for(csms, CARD_A, 2, 1)
        assert await present_id_token(station, station.evses[0], CARD_A) is None
        assert await present_id_token(station, station.evses[0], MASTER) == "MasterPass"
        event = await ended(csms, transaction_id)
    assert ended_by(event) == ("StopAuthorized", "MasterPass", MASTER["idToken"])


# -- the simulated drivers ---------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_drivers_who_stop_with_their_token_end_with_stop_authorized(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    scenario = busy_site(dwell_s=1800, soc_start=0.2, target_soc=0.3)
    scenario["ev_fleet"]["stop_with_id_token_share"] = 1.0
    async with station_on_memory_link(config(version), scenario=scenario, ocpp_version=version) as (
        _station,
        csms,
    ):
        with trio.fail_after(4 * 3600):
            event = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended"
            )
        transaction_id = event["transactionInfo"]["transactionId"]
        events = events_of(csms, transaction_id)
    [authorized] = [e for e in events[:-1] if "idToken" in e]
    assert ended_by(event) == ("StopAuthorized", "Local", authorized["idToken"]["idToken"])
    # The driver presents the card, then unplugs: the EV was still connected at the end.
    assert event["transactionInfo"]["chargingState"] == "EVConnected"


async def test_when_the_ev_leaving_ends_transactions_the_token_only_ends_the_energy(
    autojump_clock: MockClock,
) -> None:
    """With TxStopPoint EVConnected alone the end of the authorization is an Updated event
    (StopAuthorized, the token in it, the power path open: EVConnected), the EVSE delivers no
    more energy, and the transaction ends when the EV leaves (E06)."""
    async with station_on_memory_link(config("2.1"), GROUP_CSMS, REMOTE_DRIVERS) as (
        station,
        csms,
    ):
        await set_variables(csms, {("TxCtrlr", "TxStopPoint"): "EVConnected"})
        transaction_id = await charging_for(csms, CARD_A, 1, 1)
        assert await present_id_token(station, station.evses[0], CARD_B) == "Local"
        stopped_wh = station.evses[0].register_wh(station.clock.sim_now())
        event = await ended(csms, transaction_id, within_s=5 * 3600)
        ended_wh = station.evses[0].register_wh(station.clock.sim_now())
        events = events_of(csms, transaction_id)
    [stop] = [e for e in events if e["triggerReason"] == "StopAuthorized"]
    assert (stop["eventType"], stop["idToken"]) == ("Updated", CARD_B)
    assert stop["transactionInfo"]["chargingState"] == "EVConnected"
    assert ended_wh == pytest.approx(stopped_wh)
    assert (event["triggerReason"], event["transactionInfo"]["stoppedReason"]) == (
        "EVCommunicationLost",
        "EVDisconnected",
    )
