"""Authorization as the CSMS sees it: the answers that count, and the cache (C, E05).

A driver presents an IdToken through `Station.authorize` (what the EV driver does); whether an
Authorize goes out, and what the station decides, are checked at the CSMS.  The cache is off by
default and switched on here with SetVariables, as a CSMS would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import Station, StationConfig
from fleetsim.simulator.station.blocks import authorization
from tests.helpers import STATION_ID, T0, busy_site, station_on_memory_link
from tests.station.steps import get_variable, set_variables

VERSIONS: tuple[OcppVersion, ...] = ("2.1", "2.0.1")
CARD = {"idToken": "CARD0001", "type": "ISO14443"}
OTHER_CARD = {"idToken": "CARD0002", "type": "ISO14443"}
# Cable-first EVs that each want 4 kWh (20 % to 30 % of 40 kWh at 11 kW) and stay 30 minutes.
CABLE_FIRST = busy_site(dwell_s=1800, soc_start=0.2, target_soc=0.3)
TOKEN_FIRST = busy_site(dwell_s=1800, soc_start=0.2, target_soc=0.3, id_token_first_share=1.0)


def long_backoff_config(version: OcppVersion, **overrides: Any) -> StationConfig:
    """A station that stays offline for ten simulated hours once its connection drops."""
    settings: dict[str, Any] = {
        "ocpp_version": version,
        "meter_interval_s": 60,
        "retry_backoff_wait_minimum_s": 36_000.0,
        "retry_backoff_random_range_s": 0.0,
    }
    return StationConfig(**(settings | overrides))


async def go_offline(station: Station, csms: Csms) -> None:
    """Drop the connection from the CSMS side; the station stays offline (long back-off)."""
    await csms.disconnect(STATION_ID)
    with trio.fail_after(10):
        await csms.wait_disconnected(STATION_ID)
        while station.online:
            await trio.sleep(0.01)


def authorizes(csms: Csms) -> int:
    return csms.station(STATION_ID).actions().count("Authorize")


OFFLINE_FROM_CACHE = {
    ("AuthCacheCtrlr", "Enabled"): "true",
    ("AuthCtrlr", "LocalAuthorizeOffline"): "true",
    ("AuthCtrlr", "OfflineTxForUnknownIdEnabled"): "false",
}


# -- E05: the TransactionEvent answer counts ---------------------------------------------------


def _events(csms: Csms, transaction_id: str) -> list[dict[str, Any]]:
    return [
        message.payload
        for message in csms.station(STATION_ID).messages
        if message.action == "TransactionEvent"
        and message.payload["transactionInfo"]["transactionId"] == transaction_id
    ]


def _between_s(first: Mapping[str, Any], then: Mapping[str, Any]) -> float:
    """Simulated seconds from one event to a later one, by their timestamps."""
    return (
        dt.datetime.fromisoformat(then["timestamp"]) - dt.datetime.fromisoformat(first["timestamp"])
    ).total_seconds()


def _sample(event: Mapping[str, Any], measurand: str) -> float:
    [value] = [
        sample["value"]
        for sample in event["meterValue"][0]["sampledValue"]
        if sample["measurand"] == measurand
    ]
    return float(value)


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_transaction_the_csms_deauthorizes_ends_deauthorized(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(
        long_backoff_config(version),
        CsmsConfig(deauthorize_share=1.0),
        CABLE_FIRST,
        ocpp_version=version,
    ) as (_station, csms):
        with trio.fail_after(4 * 3600):
            ended = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended"
            )
        transaction_id = ended["transactionInfo"]["transactionId"]
        events = _events(csms, transaction_id)
    assert (ended["triggerReason"], ended["transactionInfo"]["stoppedReason"]) == (
        "Deauthorized",
        "DeAuthorized",
    )
    # The event the CSMS answered Invalid is the one that carried the IdToken; the Ended one
    # follows it at once, the EV still plugged in.
    assert [e["triggerReason"] for e in events] == [
        "CablePluggedIn",
        "Authorized",
        "Deauthorized",
    ]
    assert "idToken" in events[1]
    assert [e["seqNo"] for e in events] == [0, 1, 2]
    assert _between_s(events[1], ended) < 1
    assert ended["transactionInfo"]["chargingState"] == "EVConnected"


@pytest.mark.parametrize("version", VERSIONS)
async def test_without_stop_tx_on_invalid_id_the_energy_stops_instead(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(
        long_backoff_config(version),
        CsmsConfig(deauthorize_share=1.0),
        CABLE_FIRST,
        ocpp_version=version,
    ) as (_station, csms):
        await set_variables(csms, {("TxCtrlr", "StopTxOnInvalidId"): "false"})
        with trio.fail_after(4 * 3600):
            suspended = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["transactionInfo"].get("chargingState") == "SuspendedEVSE",
            )
            transaction_id = suspended["transactionInfo"]["transactionId"]
            sample = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: (
                    p["triggerReason"] == "MeterValuePeriodic"
                    and p["transactionInfo"]["transactionId"] == transaction_id
                ),
            )
            later = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: (
                    p["triggerReason"] == "MeterValuePeriodic"
                    and p["transactionInfo"]["transactionId"] == transaction_id
                    and p["seqNo"] > sample["seqNo"]
                ),
            )
        events = _events(csms, transaction_id)
    assert suspended["triggerReason"] == "ChargingStateChanged"
    assert [e["eventType"] for e in events[:3]] == ["Started", "Updated", "Updated"]
    assert events[2] == suspended
    assert _sample(sample, "Power.Active.Import") == 0
    started_wh = _sample(events[0], "Energy.Active.Import.Register")
    assert _sample(sample, "Energy.Active.Import.Register") == started_wh
    assert _sample(later, "Energy.Active.Import.Register") == started_wh
    assert all(e["eventType"] != "Ended" for e in events)


async def test_id_token_info_about_no_token_the_station_sent_is_ignored(
    autojump_clock: MockClock,
) -> None:
    """A CSMS that puts idTokenInfo Invalid in every answer deauthorizes the transaction at the
    event that carried the IdToken, not at the cable-first Started event before it."""

    def always_invalid(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"idTokenInfo": {"status": "Invalid"}}

    async with station_on_memory_link(
        long_backoff_config("2.1"),
        CsmsConfig(response_overrides={"TransactionEvent": always_invalid}),
        CABLE_FIRST,
    ) as (_station, csms):
        with trio.fail_after(4 * 3600):
            ended = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended"
            )
        events = _events(csms, ended["transactionInfo"]["transactionId"])
    assert [e["triggerReason"] for e in events] == ["CablePluggedIn", "Authorized", "Deauthorized"]


async def test_a_token_deauthorized_at_the_start_never_gets_energy(
    autojump_clock: MockClock,
) -> None:
    """IdToken first: the Started event carries the token and is answered Invalid while the
    driver walks to the car; with StopTxOnInvalidId false the EV plugs in to a suspended EVSE."""
    async with station_on_memory_link(
        long_backoff_config("2.1"), CsmsConfig(deauthorize_share=1.0), TOKEN_FIRST
    ) as (_station, csms):
        await set_variables(csms, {("TxCtrlr", "StopTxOnInvalidId"): "false"})
        with trio.fail_after(4 * 3600):
            started = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Started"
            )
            transaction_id = started["transactionInfo"]["transactionId"]
            sample = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: (
                    p["triggerReason"] == "MeterValuePeriodic"
                    and p["transactionInfo"]["transactionId"] == transaction_id
                ),
            )
        events = _events(csms, transaction_id)
    assert [(e["triggerReason"], e["transactionInfo"].get("chargingState")) for e in events] == [
        ("Authorized", None),
        ("CablePluggedIn", "EVConnected"),
        ("ChargingStateChanged", "SuspendedEVSE"),
        ("MeterValuePeriodic", "SuspendedEVSE"),
    ]
    assert "idToken" in started
    assert _sample(sample, "Power.Active.Import") == 0


async def test_max_energy_on_invalid_id_lets_that_much_through_then_suspends(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(
        long_backoff_config("2.1"), CsmsConfig(deauthorize_share=1.0), CABLE_FIRST
    ) as (_station, csms):
        await set_variables(
            csms,
            {
                ("TxCtrlr", "StopTxOnInvalidId"): "false",
                ("TxCtrlr", "MaxEnergyOnInvalidId"): "1000",
            },
        )
        with trio.fail_after(4 * 3600):
            suspended = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["transactionInfo"].get("chargingState") == "SuspendedEVSE",
            )
            transaction_id = suspended["transactionInfo"]["transactionId"]
            sample = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: (
                    p["triggerReason"] == "MeterValuePeriodic"
                    and p["transactionInfo"]["transactionId"] == transaction_id
                    and p["seqNo"] > suspended["seqNo"]
                ),
            )
        events = _events(csms, transaction_id)
    started_wh = _sample(events[0], "Energy.Active.Import.Register")
    assert _sample(sample, "Energy.Active.Import.Register") - started_wh == pytest.approx(
        1000, abs=0.2
    )
    assert _sample(sample, "Power.Active.Import") == 0
    # 1 kWh at 11 kW is 327 s: the EV charged for those after the answer, then stopped.
    charging = [e for e in events if e["transactionInfo"].get("chargingState") == "Charging"]
    assert charging
    assert _between_s(charging[0], suspended) == pytest.approx(1000 / 11_000 * 3600, abs=1)


async def test_the_transaction_event_answer_feeds_the_cache(autojump_clock: MockClock) -> None:
    """A token the CSMS called Invalid in a TransactionEvent answer is refused offline, though
    unknown tokens may charge offline here."""
    async with station_on_memory_link(
        long_backoff_config("2.1"), CsmsConfig(deauthorize_share=1.0), CABLE_FIRST
    ) as (station, csms):
        await set_variables(
            csms,
            {("AuthCacheCtrlr", "Enabled"): "true", ("AuthCtrlr", "LocalAuthorizeOffline"): "true"},
        )
        with trio.fail_after(4 * 3600):
            ended = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended"
            )
        [authorized] = [
            e for e in _events(csms, ended["transactionInfo"]["transactionId"]) if "idToken" in e
        ]
        token = authorized["idToken"]
        await go_offline(station, csms)
        assert await station.authorize(token) is False
        assert await station.authorize(OTHER_CARD) is True


# -- C10-C12: the authorization cache -----------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_an_accepted_token_authorizes_offline_from_the_cache(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(
        long_backoff_config(version),
        CsmsConfig(accepted_id_tokens=["card0001"]),
        ocpp_version=version,
    ) as (station, csms):
        await set_variables(csms, OFFLINE_FROM_CACHE)
        assert await station.authorize(CARD) is True
        assert await station.authorize(OTHER_CARD) is False  # Unknown, cached as such
        assert authorizes(csms) == 2
        stored = int(await get_variable(csms, "AuthCacheCtrlr", "Storage"))
        assert stored > 0
        await go_offline(station, csms)
        assert await station.authorize({"idToken": "card0001", "type": "ISO14443"}) is True
        assert await station.authorize(OTHER_CARD) is False
        assert await station.authorize({"idToken": "CARD0003", "type": "ISO14443"}) is False


async def test_without_local_authorize_offline_the_cache_is_not_used(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(long_backoff_config("2.1")) as (station, csms):
        await set_variables(
            csms,
            {
                ("AuthCacheCtrlr", "Enabled"): "true",
                ("AuthCtrlr", "OfflineTxForUnknownIdEnabled"): "false",
            },
        )
        assert await station.authorize(CARD) is True
        await go_offline(station, csms)
        assert await station.authorize(CARD) is False


async def test_a_cache_entry_expires_after_its_lifetime(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(long_backoff_config("2.1")) as (station, csms):
        await set_variables(csms, OFFLINE_FROM_CACHE | {("AuthCacheCtrlr", "LifeTime"): "600"})
        assert await station.authorize(CARD) is True
        await go_offline(station, csms)
        await station.clock.sleep(500)
        assert await station.authorize(CARD) is True  # used: its life starts again
        await station.clock.sleep(500)
        assert await station.authorize(CARD) is True
        await station.clock.sleep(601)
        assert await station.authorize(CARD) is False


async def test_a_cache_entry_expires_at_its_cache_expiry_date_time(
    autojump_clock: MockClock,
) -> None:
    expiry = (T0 + dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z")

    def authorize(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"idTokenInfo": {"status": "Accepted", "cacheExpiryDateTime": expiry}}

    async with station_on_memory_link(
        long_backoff_config("2.1"), CsmsConfig(response_overrides={"Authorize": authorize})
    ) as (station, csms):
        await set_variables(csms, OFFLINE_FROM_CACHE)
        assert await station.authorize(CARD) is True
        await go_offline(station, csms)
        await station.clock.sleep(3000)
        assert await station.authorize(CARD) is True
        await station.clock.sleep(700)
        assert await station.authorize(CARD) is False


async def test_clear_cache_empties_the_cache(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(long_backoff_config("2.1")) as (station, csms):
        await set_variables(csms, OFFLINE_FROM_CACHE)
        assert await station.authorize(CARD) is True
        answer = await csms.call(STATION_ID, "ClearCache", {})
        assert answer == {"status": "Accepted"}
        assert await get_variable(csms, "AuthCacheCtrlr", "Storage") == "0"
        await go_offline(station, csms)
        assert await station.authorize(CARD) is False


@pytest.mark.parametrize("version", VERSIONS)
async def test_clear_cache_is_rejected_while_the_cache_is_disabled(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(long_backoff_config(version), ocpp_version=version) as (
        station,
        csms,
    ):
        answer = await csms.call(STATION_ID, "ClearCache", {})
        assert answer["status"] == "Rejected"
        assert answer["statusInfo"]["reasonCode"] == "NotEnabled"
        # A disabled cache keeps nothing, so the station holds no cache at all.
        assert await station.authorize(CARD) is True
        assert station.peek_block_state(authorization.BLOCK) is None


async def test_local_pre_authorize_charges_a_cached_token_without_asking(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(
        long_backoff_config("2.1"), CsmsConfig(accepted_id_tokens=["CARD0001"])
    ) as (station, csms):
        await set_variables(
            csms,
            {("AuthCacheCtrlr", "Enabled"): "true", ("AuthCtrlr", "LocalPreAuthorize"): "true"},
        )
        assert await station.authorize(CARD) is True
        assert await station.authorize(OTHER_CARD) is False
        assert authorizes(csms) == 2
        assert await station.authorize(CARD) is True
        assert authorizes(csms) == 2  # from the cache, at once
        # A cached token that is not Accepted is asked about again...
        assert await station.authorize(OTHER_CARD) is False
        assert authorizes(csms) == 3
        # ...unless DisablePostAuthorize says the cache's word is final.
        await set_variables(csms, {("AuthCacheCtrlr", "DisablePostAuthorize"): "true"})
        assert await station.authorize(OTHER_CARD) is False
        assert authorizes(csms) == 3


@pytest.mark.parametrize("policy", ["LRU", "FIFO"])
async def test_a_full_cache_evicts_by_its_policy(autojump_clock: MockClock, policy: str) -> None:
    # Each entry takes its key ("ISO14443:card0000"), "Accepted" and two times: 41 bytes.
    fit = authorization.CACHE_MAX_BYTES // (len("ISO14443:card0000") + len("Accepted") + 16)
    cards = [{"idToken": f"CARD{index:04d}", "type": "ISO14443"} for index in range(fit + 2)]
    async with station_on_memory_link(long_backoff_config("2.1")) as (station, csms):
        await set_variables(
            csms,
            OFFLINE_FROM_CACHE
            | {("AuthCtrlr", "LocalPreAuthorize"): "true", ("AuthCacheCtrlr", "Policy"): policy},
        )
        for card in cards[:10]:
            assert await station.authorize(card) is True
        asked = authorizes(csms)
        assert await station.authorize(cards[0]) is True  # a use: LRU keeps it, FIFO not
        assert authorizes(csms) == asked
        for card in cards[10:]:
            assert await station.authorize(card) is True
        stored = int(await get_variable(csms, "AuthCacheCtrlr", "Storage"))
        assert authorization.CACHE_MAX_BYTES - 41 < stored <= authorization.CACHE_MAX_BYTES
        await go_offline(station, csms)
        # Two entries had to go: the two oldest (FIFO) or least recently used (LRU).
        assert await station.authorize(cards[-1]) is True
        assert await station.authorize(cards[1]) is False
        assert await station.authorize(cards[0]) is (policy == "LRU")
        assert await station.authorize(cards[2]) is (policy == "FIFO")


async def test_a_full_cache_drops_expired_entries_first(autojump_clock: MockClock) -> None:
    fit = authorization.CACHE_MAX_BYTES // (len("ISO14443:card0000") + len("Accepted") + 16)
    cards = [{"idToken": f"CARD{index:04d}", "type": "ISO14443"} for index in range(fit + 1)]
    async with station_on_memory_link(long_backoff_config("2.1")) as (station, csms):
        await set_variables(
            csms,
            OFFLINE_FROM_CACHE
            | {
                ("AuthCtrlr", "LocalPreAuthorize"): "true",
                ("AuthCacheCtrlr", "Policy"): "FIFO",
                ("AuthCacheCtrlr", "LifeTime"): "600",
            },
        )
        first, expiring = cards[0], cards[1]
        assert await station.authorize(first) is True
        assert await station.authorize(expiring) is True
        await station.clock.sleep(500)
        assert await station.authorize(first) is True  # used: it lives on, still first in line
        await station.clock.sleep(200)
        for card in cards[2:]:
            assert await station.authorize(card) is True
        await go_offline(station, csms)
        assert await station.authorize(first) is True
        assert await station.authorize(cards[-1]) is True


# -- C15: an unknown IdToken offline ------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_an_unknown_token_charges_offline_until_the_csms_deauthorizes_it(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    """OfflineTxForUnknownIdEnabled (true by default): offline, a token neither the list nor
    the cache knows starts a transaction; once the station is back, the CSMS's answer to the
    queued event that carried the token (Unknown: it accepts none here) ends it (E05)."""
    four_hour_stays = busy_site(dwell_s=4 * 3600, soc_start=0.2, target_soc=0.9)
    async with station_on_memory_link(
        long_backoff_config(version, retry_backoff_wait_minimum_s=3600.0),
        CsmsConfig(accepted_id_tokens=()),
        four_hour_stays,
        ocpp_version=version,
    ) as (station, csms):
        await go_offline(station, csms)
        since = csms.station(STATION_ID).messages_received
        with trio.fail_after(3 * 3600):
            ended = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["eventType"] == "Ended" and not p.get("offline", False),
                since=since,
            )
        events = _events(csms, ended["transactionInfo"]["transactionId"])
    authorized = [e for e in events if "idToken" in e]
    assert authorized and all(e.get("offline") for e in authorized)
    assert any(
        e.get("offline") and e["transactionInfo"].get("chargingState") == "Charging" for e in events
    )
    assert (ended["triggerReason"], ended["transactionInfo"]["stoppedReason"]) == (
        "Deauthorized",
        "DeAuthorized",
    )
    assert _between_s(authorized[0], ended) >= 3000  # it charged until the station was back
