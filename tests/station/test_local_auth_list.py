"""The local authorization list as the CSMS sees it: SendLocalList, GetLocalListVersion, and
the list's word on a driver's IdToken offline and online (D01, D02, C13, C14)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station.blocks import local_auth_list
from tests.helpers import STATION_ID, station_on_memory_link
from tests.station.test_authorization import (
    VERSIONS,
    authorizes,
    get_variable,
    go_offline,
    long_backoff_config,
    set_variables,
)

OFFLINE_FROM_LIST = {
    ("AuthCtrlr", "LocalAuthorizeOffline"): "true",
    ("AuthCtrlr", "OfflineTxForUnknownIdEnabled"): "false",
}


def card(index: int) -> dict[str, str]:
    return {"idToken": f"LIST{index:04d}", "type": "ISO14443"}


def entry(index: int, status: str | None = "Accepted") -> dict[str, Any]:
    found: dict[str, Any] = {"idToken": card(index)}
    if status is not None:
        found["idTokenInfo"] = {"status": status}
    return found


async def send_list(
    csms: Csms, version: int, update_type: str, entries: list[dict[str, Any]]
) -> dict[str, Any]:
    payload: dict[str, Any] = {"versionNumber": version, "updateType": update_type}
    if entries:
        payload["localAuthorizationList"] = entries
    return dict(await csms.call(STATION_ID, "SendLocalList", payload))


async def list_version(csms: Csms) -> int:
    answer = await csms.call(STATION_ID, "GetLocalListVersion", {})
    return int(answer["versionNumber"])


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_full_list_then_differential_updates(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(long_backoff_config(version), ocpp_version=version) as (
        station,
        csms,
    ):
        assert await list_version(csms) == 0
        assert await get_variable(csms, "LocalAuthListCtrlr", "Entries") == "0"
        full = [entry(1), entry(2), entry(3, "Blocked")]
        assert await send_list(csms, 3, "Full", full) == {"status": "Accepted"}
        assert await list_version(csms) == 3
        assert await get_variable(csms, "LocalAuthListCtrlr", "Entries") == "3"
        # Differential: add one, change one, remove one (an entry without idTokenInfo).
        changes = [entry(4), entry(3), entry(2, None)]
        assert await send_list(csms, 4, "Differential", changes) == {"status": "Accepted"}
        assert await list_version(csms) == 4
        assert await get_variable(csms, "LocalAuthListCtrlr", "Entries") == "3"
        assert int(await get_variable(csms, "LocalAuthListCtrlr", "Storage")) > 0
        # A differential update that is not newer than the list does not apply.
        answer = await send_list(csms, 4, "Differential", [entry(5)])
        assert answer == {"status": "VersionMismatch"}
        answer = await send_list(csms, 2, "Differential", [entry(5)])
        assert answer == {"status": "VersionMismatch"}
        assert await list_version(csms) == 4
        # What the list says now, offline: 1, 3 and 4 charge; 2 was removed; 5 never came.
        await set_variables(csms, OFFLINE_FROM_LIST)
        await go_offline(station, csms)
        decided = [await station.authorize(card(index)) for index in range(1, 6)]
        assert decided == [True, False, True, True, False]


async def test_a_full_list_replaces_the_list_and_may_go_back_in_version(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(long_backoff_config("2.1")) as (_station, csms):
        assert (await send_list(csms, 7, "Full", [entry(1), entry(2)]))["status"] == "Accepted"
        assert (await send_list(csms, 2, "Full", [entry(3)]))["status"] == "Accepted"
        assert await list_version(csms) == 2
        assert await get_variable(csms, "LocalAuthListCtrlr", "Entries") == "1"
        # A Full update without entries empties the list; its version still counts.
        assert (await send_list(csms, 5, "Full", []))["status"] == "Accepted"
        assert await list_version(csms) == 5
        assert await get_variable(csms, "LocalAuthListCtrlr", "Entries") == "0"
        assert await get_variable(csms, "LocalAuthListCtrlr", "Storage") == "0"
        # A Differential update without entries only moves the version (D01.FR.05).
        assert (await send_list(csms, 6, "Differential", []))["status"] == "Accepted"
        assert await list_version(csms) == 6


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_list_and_its_version_survive_a_reboot(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(long_backoff_config(version), ocpp_version=version) as (
        station,
        csms,
    ):
        await set_variables(csms, OFFLINE_FROM_LIST)
        assert (await send_list(csms, 12, "Full", [entry(1), entry(2)]))["status"] == "Accepted"
        assert await list_version(csms) == 12
        assert await list_version(csms) == 12
        assert (await csms.call(STATION_ID, "Reset", {"type": "Immediate"}))["status"] == (
            "Accepted"
        )
        with trio.fail_after(120):
            await csms.wait_for_message(
                STATION_ID, "BootNotification", lambda p: p["reason"] == "RemoteReset"
            )
            await csms.wait_connected(STATION_ID)
            while not station.online:
                await trio.sleep(0.1)
        assert csms.station(STATION_ID).boots == 2
        assert await list_version(csms) == 12
        assert await get_variable(csms, "LocalAuthListCtrlr", "Entries") == "2"
        await go_offline(station, csms)
        assert await station.authorize(card(2)) is True


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_list_authorizes_offline_and_takes_precedence_over_the_cache(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(
        long_backoff_config(version),
        CsmsConfig(accepted_id_tokens=["LIST0002"]),
        ocpp_version=version,
    ) as (station, csms):
        await set_variables(csms, OFFLINE_FROM_LIST | {("AuthCacheCtrlr", "Enabled"): "true"})
        # The CSMS accepts LIST0002 when asked; the list says it is blocked.
        assert await station.authorize(card(2)) is True
        assert (await send_list(csms, 1, "Full", [entry(1), entry(2, "Blocked")]))[
            "status"
        ] == "Accepted"
        await go_offline(station, csms)
        assert await station.authorize(card(1)) is True
        assert await station.authorize(card(2)) is False
        assert await station.authorize(card(3)) is False  # unknown to both


async def test_the_list_authorizes_online_without_asking_with_local_pre_authorize(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(
        long_backoff_config("2.1"), CsmsConfig(accepted_id_tokens=["LIST0002"])
    ) as (station, csms):
        await set_variables(
            csms,
            {("AuthCtrlr", "LocalPreAuthorize"): "true", ("AuthCacheCtrlr", "Enabled"): "true"},
        )
        entries = [entry(1), entry(2, "Expired"), entry(3, "Blocked")]
        assert (await send_list(csms, 1, "Full", entries))["status"] == "Accepted"
        assert await station.authorize(card(1)) is True
        assert authorizes(csms) == 0
        # Listed but not Accepted: the CSMS is asked again (C14), and has its say...
        assert await station.authorize(card(2)) is True
        assert await station.authorize(card(3)) is False
        assert authorizes(csms) == 2
        # ...unless the list's word is final.
        await set_variables(csms, {("LocalAuthListCtrlr", "DisablePostAuthorize"): "true"})
        assert await station.authorize(card(2)) is False
        assert authorizes(csms) == 2
        # The list speaks for its tokens: the CSMS's answers about them are not cached.
        assert await get_variable(csms, "AuthCacheCtrlr", "Storage") == "0"


async def test_an_entry_past_its_expiry_counts_as_absent(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(long_backoff_config("2.1")) as (station, csms):
        await set_variables(csms, OFFLINE_FROM_LIST)
        expiring = {
            "idToken": card(1),
            "idTokenInfo": {"status": "Accepted", "cacheExpiryDateTime": "2026-01-15T13:00:00Z"},
        }
        assert (await send_list(csms, 1, "Full", [expiring]))["status"] == "Accepted"
        await go_offline(station, csms)
        assert await station.authorize(card(1)) is True
        await station.clock.sleep(3700)
        assert await station.authorize(card(1)) is False


@pytest.mark.parametrize("version", VERSIONS)
async def test_malformed_or_oversized_lists_fail_and_change_nothing(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    per_message = local_auth_list.ITEMS_PER_MESSAGE
    async with station_on_memory_link(long_backoff_config(version), ocpp_version=version) as (
        _station,
        csms,
    ):
        assert (await send_list(csms, 1, "Full", [entry(1)]))["status"] == "Accepted"
        failures = {
            "InvalidValue": [
                (0, "Full", [entry(2)]),  # version 0 means no list (D01.FR.18)
                (2, "Differential", [entry(2), entry(2)]),  # duplicates (D01.FR.06)
                (2, "Full", [entry(2), {"idToken": {"idToken": "list0002", "type": "ISO14443"}}]),
            ],
            "MissingParam": [(2, "Full", [entry(2, None)])],
            "TooManyElements": [
                (2, "Full", [entry(index) for index in range(per_message + 1)]),
            ],
        }
        for reason, requests in failures.items():
            for version_number, update_type, entries in requests:
                answer = await send_list(csms, version_number, update_type, entries)
                assert answer["status"] == "Failed", (reason, answer)
                assert answer["statusInfo"]["reasonCode"] == reason
        assert await list_version(csms) == 1
        assert await get_variable(csms, "LocalAuthListCtrlr", "Entries") == "1"


async def test_the_list_holds_no_more_than_its_entries_limit(autojump_clock: MockClock) -> None:
    limit = local_auth_list.MAX_ENTRIES
    per_message = local_auth_list.ITEMS_PER_MESSAGE
    async with station_on_memory_link(long_backoff_config("2.1")) as (_station, csms):
        sent = 0
        version = 0
        while sent < limit:
            batch = [entry(index) for index in range(sent, min(sent + per_message, limit))]
            version += 1
            answer = await send_list(csms, version, "Full" if sent == 0 else "Differential", batch)
            assert answer["status"] == "Accepted", answer
            sent += len(batch)
        assert await get_variable(csms, "LocalAuthListCtrlr", "Entries") == str(limit)
        answer = await send_list(csms, version + 1, "Differential", [entry(limit)])
        assert answer["status"] == "Failed"
        assert answer["statusInfo"]["reasonCode"] == "OutOfStorage"
        # Changing an entry or removing one still fits.
        answer = await send_list(csms, version + 1, "Differential", [entry(0, "Blocked")])
        assert answer["status"] == "Accepted"
        assert await get_variable(csms, "LocalAuthListCtrlr", "Entries") == str(limit)


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_disabled_list_is_not_used_nor_sent(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(long_backoff_config(version), ocpp_version=version) as (
        station,
        csms,
    ):
        await set_variables(csms, OFFLINE_FROM_LIST)
        assert (await send_list(csms, 3, "Full", [entry(1)]))["status"] == "Accepted"
        await set_variables(csms, {("LocalAuthListCtrlr", "Enabled"): "false"})
        answer = await send_list(csms, 4, "Full", [entry(2)])
        assert (answer["status"], answer["statusInfo"]["reasonCode"]) == ("Failed", "NotEnabled")
        assert await list_version(csms) == 0
        await go_offline(station, csms)
        assert await station.authorize(card(1)) is False
