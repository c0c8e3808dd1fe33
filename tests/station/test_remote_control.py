"""Remote control as the CSMS sees it: unlocking a connector (F05), a remote start with a
TxProfile (K05, F01, F02) and a remote start whose IdToken is authorized first
(AuthorizeRemoteStart, F01.FR.01, F02.FR.09)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from fleetsim.ev_models import EvArrival, load_catalogue
from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import Station
from fleetsim.simulator.station.ev_driver import ev_arrives
from tests.helpers import STATION_ID, TEST_EV, station_on_memory_link
from tests.station.steps import get_variable, set_variable

VERSIONS = pytest.mark.parametrize("version", ["2.1", "2.0.1"])
DRIVER = {"idToken": "DRIVER-1", "type": "ISO14443"}
TEST_MODEL = load_catalogue({"test-ev": TEST_EV})["test-ev"]
#: The remote start's driver plugs in a minute after the request.
REMOTE_DRIVERS: dict[str, Any] = {
    "ev_fleet": {
        "models": {"test-ev": 1.0},
        "extra_models": {"test-ev": TEST_EV},
        "remote_start_plugin_delay_s": 60,
    }
}
#: One EVSE with a Type 2 socket, whose lock holds the driver's plug.
SOCKET: dict[str, Any] = {
    **REMOTE_DRIVERS,
    "stations": {"count": 1, "evses": [{"connectors": ["sType2"]}]},
}
#: Longer than the plug-in delay and EVConnectionTimeOut (120 s) together.
LONG_ENOUGH_S = 600


def messages_now(csms: Csms) -> int:
    return csms.station(STATION_ID).messages_received


def tx_profile(limit_w: float, **changes: Any) -> dict[str, Any]:
    profile = {
        "id": 31,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_w}],
            }
        ],
    }
    profile.update(changes)
    return profile


async def remote_start(csms: Csms, token: Mapping[str, str], **fields: Any) -> Mapping[str, Any]:
    request = {"remoteStartId": 5, "idToken": token, "evseId": 1, **fields}
    return await csms.call(STATION_ID, "RequestStartTransaction", request)


async def event(csms: Csms, since: int, **wanted: Any) -> Mapping[str, Any]:
    """The first TransactionEvent after `since` whose fields (or transactionInfo's) match."""

    def matches(payload: Mapping[str, Any]) -> bool:
        info = payload["transactionInfo"]
        return all(payload.get(key, info.get(key)) == value for key, value in wanted.items())

    with trio.fail_after(3600):
        return await csms.wait_for_message(STATION_ID, "TransactionEvent", matches, since=since)


async def nothing_arrives(csms: Csms, action: str, since: int, within_s: float) -> None:
    with trio.move_on_after(within_s):
        message = await csms.wait_for_message(STATION_ID, action, since=since)
        pytest.fail(f"unexpected {action}: {message}")


async def lock_active(csms: Csms) -> str:
    """Whether the socket of EVSE 1 holds its plug, read over OCPP."""
    return await get_variable(
        csms, "ConnectorPlugRetentionLock", "Active", {"id": 1, "connectorId": 1}
    )


async def unlock(csms: Csms, evse_id: int = 1, connector_id: int = 1) -> Mapping[str, Any]:
    return await csms.call(
        STATION_ID, "UnlockConnector", {"evseId": evse_id, "connectorId": connector_id}
    )


def power_w(transaction_event: Mapping[str, Any]) -> float:
    (sample,) = (
        sample
        for sample in transaction_event["meterValue"][0]["sampledValue"]
        if sample["measurand"] == "Power.Active.Import"
    )
    return float(sample["value"])


def cable_first_ev(station: Station, token: Mapping[str, str]) -> None:
    """An EV whose driver plugs in first, then presents `token` (E02), staying half an hour."""
    now_s = station.clock.sim_now()
    arrival = EvArrival(
        arrival_s=now_s,
        model=TEST_MODEL,
        soc_start=0.2,
        target_soc=0.8,
        min_soc=0.1,
        departure_s=now_s + 1800,
        id_token=token["idToken"],
        id_token_type=token["type"],
        id_token_first=False,
        uses_iso15118_20=False,
    )
    ev_arrives(station, station.evses[0], arrival)


# -- F05: unlocking a connector -----------------------------------------------------------------


@VERSIONS
async def test_the_plug_of_an_authorized_transaction_stays_locked_until_it_ends(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=SOCKET, ocpp_version=version) as (_, csms):
        assert await lock_active(csms) == "false"
        since = messages_now(csms)
        assert (await remote_start(csms, DRIVER))["status"] == "Accepted"
        charging = await event(csms, since, chargingState="Charging")
        transaction_id = charging["transactionInfo"]["transactionId"]
        assert await lock_active(csms) == "true"

        since = messages_now(csms)
        answer = await unlock(csms)
        assert answer["status"] == "OngoingAuthorizedTransaction"
        assert answer["statusInfo"]["reasonCode"] == "TxInProgress"
        assert await lock_active(csms) == "true"
        await nothing_arrives(csms, "TransactionEvent", since, within_s=30)

        stop = {"transactionId": transaction_id}
        assert (await csms.call(STATION_ID, "RequestStopTransaction", stop))["status"] == "Accepted"
        await event(csms, since, eventType="Ended", stoppedReason="Remote")
        await trio.testing.wait_all_tasks_blocked()  # the station has taken the answer in
        # The transaction is over: the lock releases the plug for the driver.
        assert await lock_active(csms) == "false"
        assert (await unlock(csms))["status"] == "Unlocked"


@VERSIONS
async def test_unlocking_the_plug_of_a_deauthorized_transaction_releases_it_and_says_so(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    """E05 without StopTxOnInvalidId leaves the transaction running, suspended, with the plug
    locked in: the CSO unlocks it so the driver can leave (F05)."""
    csms_config = CsmsConfig(deauthorize_share=1.0)
    async with station_on_memory_link(
        csms_config=csms_config, scenario=SOCKET, ocpp_version=version
    ) as (station, csms):
        await set_variable(csms, "TxCtrlr", "StopTxOnInvalidId", "false")
        since = messages_now(csms)
        cable_first_ev(station, DRIVER)
        started = await event(csms, since, eventType="Started")
        await event(csms, since, chargingState="SuspendedEVSE")
        assert await lock_active(csms) == "true"

        since = messages_now(csms)
        answer = await unlock(csms)
        assert answer["status"] == "Unlocked"
        assert "statusInfo" not in answer  # a plug was in
        told = await event(csms, since, triggerReason="UnlockCommand")
        assert told["eventType"] == "Updated"
        assert (
            told["transactionInfo"]["transactionId"] == started["transactionInfo"]["transactionId"]
        )
        assert await lock_active(csms) == "false"
        # The transaction goes on until the EV leaves (TxStopPoint EVConnected).
        await nothing_arrives(csms, "TransactionEvent", messages_now(csms), within_s=60)
        assert station.evses[0].transaction is not None


@VERSIONS
async def test_a_socket_without_a_plug_unlocks_and_says_there_was_none(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=SOCKET, ocpp_version=version) as (_, csms):
        answer = await unlock(csms)
        assert answer["status"] == "Unlocked"
        assert answer["statusInfo"]["reasonCode"] == "NoCable"


@VERSIONS
async def test_unlock_names_an_unknown_connector_and_a_captive_cable(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    """The default station has a captive Type 2 cable: no lock at the station end."""
    async with station_on_memory_link(ocpp_version=version) as (_, csms):
        for evse_id, connector_id in ((9, 1), (1, 3)):
            answer = await unlock(csms, evse_id, connector_id)
            assert answer["status"] == "UnknownConnector"
            assert answer["statusInfo"]["reasonCode"] == "UnknownConnectorId"
        answer = await unlock(csms)
        assert answer["status"] == "UnlockFailed"
        assert answer["statusInfo"]["reasonCode"] == "FixedCable"


# -- K05: a remote start with a TxProfile -------------------------------------------------------


@VERSIONS
async def test_a_remote_start_with_a_tx_profile_charges_under_its_limit_until_it_ends(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=REMOTE_DRIVERS, ocpp_version=version) as (
        _,
        csms,
    ):
        since = messages_now(csms)
        answer = await remote_start(csms, DRIVER, chargingProfile=tx_profile(4_000))
        assert answer["status"] == "Accepted"
        metered = await event(csms, since, triggerReason="MeterValuePeriodic")
        assert power_w(metered) == 4_000  # the test EV would take 11 kW
        transaction_id = metered["transactionInfo"]["transactionId"]

        since = messages_now(csms)
        criteria = {"chargingProfilePurpose": "TxProfile"}
        answer = await csms.call(
            STATION_ID, "GetChargingProfiles", {"requestId": 8, "chargingProfile": criteria}
        )
        assert answer["status"] == "Accepted"
        with trio.fail_after(30):
            report = await csms.wait_for_message(STATION_ID, "ReportChargingProfiles", since=since)
        (installed,) = report["chargingProfile"]
        assert installed["id"] == 31
        assert installed["transactionId"] == transaction_id

        stop = {"transactionId": transaction_id}
        assert (await csms.call(STATION_ID, "RequestStopTransaction", stop))["status"] == "Accepted"
        await event(csms, since, eventType="Ended")
        await trio.testing.wait_all_tasks_blocked()  # the station has taken the answer in
        answer = await csms.call(
            STATION_ID, "GetChargingProfiles", {"requestId": 9, "chargingProfile": criteria}
        )
        assert answer["status"] == "NoProfiles"  # it went with its transaction


@VERSIONS
async def test_a_remote_start_for_a_plugged_in_ev_charges_under_its_tx_profile(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    """F01: the driver's card is refused at the EVSE, then the app starts the transaction."""
    csms_config = CsmsConfig(accepted_id_tokens=["APP-USER"])
    card = {"idToken": "CARD-X", "type": "ISO14443"}
    app_user = {"idToken": "APP-USER", "type": "Central"}
    async with station_on_memory_link(
        csms_config=csms_config, scenario=REMOTE_DRIVERS, ocpp_version=version
    ) as (station, csms):
        since = messages_now(csms)
        cable_first_ev(station, card)
        await event(csms, since, eventType="Ended", stoppedReason="DeAuthorized")

        since = messages_now(csms)
        answer = await remote_start(csms, app_user, chargingProfile=tx_profile(5_000))
        assert answer["status"] == "Accepted"
        started = await event(csms, since, eventType="Started", triggerReason="RemoteStart")
        assert started["transactionInfo"]["remoteStartId"] == 5
        metered = await event(csms, since, triggerReason="MeterValuePeriodic")
        assert power_w(metered) == 5_000


BAD_PROFILES = [
    pytest.param(
        tx_profile(4_000, chargingProfilePurpose="TxDefaultProfile"), "InvalidProfile", id="purpose"
    ),
    pytest.param(tx_profile(4_000, transactionId="T-1"), "InvalidProfile", id="transaction-id"),
    pytest.param(
        tx_profile(
            4_000,
            chargingSchedule=[
                {
                    "id": 1,
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [
                        {"startPeriod": 60 * i, "limit": 4_000.0} for i in range(25)
                    ],
                }
            ],
        ),
        "InvalidSchedule",
        id="too-many-periods",
    ),
    pytest.param(tx_profile(4_000, stackLevel=11), "InvalidStackLevel", id="stack-level"),
]


@VERSIONS
@pytest.mark.parametrize(("profile", "reason"), BAD_PROFILES)
async def test_a_remote_start_with_a_profile_the_station_cannot_use_is_rejected(
    autojump_clock: MockClock, version: OcppVersion, profile: dict[str, Any], reason: str
) -> None:
    async with station_on_memory_link(scenario=REMOTE_DRIVERS, ocpp_version=version) as (
        station,
        csms,
    ):
        since = messages_now(csms)
        answer = await remote_start(csms, DRIVER, chargingProfile=profile)
        assert answer["status"] == "Rejected"
        assert answer["statusInfo"]["reasonCode"] == reason
        await nothing_arrives(csms, "TransactionEvent", since, within_s=LONG_ENOUGH_S)
        assert station.evses[0].remote_start is None


# -- AuthorizeRemoteStart -----------------------------------------------------------------------


@VERSIONS
async def test_with_authorize_remote_start_a_refused_token_starts_nothing(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    good = {"idToken": "GOOD", "type": "ISO14443"}
    bad = {"idToken": "BAD", "type": "ISO14443"}
    csms_config = CsmsConfig(accepted_id_tokens=["GOOD"])
    async with station_on_memory_link(
        csms_config=csms_config, scenario=REMOTE_DRIVERS, ocpp_version=version
    ) as (_, csms):
        await set_variable(csms, "AuthCtrlr", "AuthorizeRemoteStart", "true")
        assert await get_variable(csms, "AuthCtrlr", "AuthorizeRemoteStart") == "true"

        since = messages_now(csms)
        assert (await remote_start(csms, bad))["status"] == "Accepted"
        with trio.fail_after(30):
            asked = await csms.wait_for_message(STATION_ID, "Authorize", since=since)
        assert asked["idToken"] == bad
        await nothing_arrives(csms, "TransactionEvent", since, within_s=LONG_ENOUGH_S)
        await nothing_arrives(csms, "StatusNotification", since, within_s=1)
        evse = {"id": 1}
        assert await get_variable(csms, "EVSE", "AvailabilityState", evse) == "Available"

        # The EVSE is free again: an accepted driver's remote start goes ahead.
        since = messages_now(csms)
        assert (await remote_start(csms, good, remoteStartId=6))["status"] == "Accepted"
        started = await event(csms, since, eventType="Started")
        assert started["triggerReason"] == "RemoteStart"
        assert started["transactionInfo"]["remoteStartId"] == 6
        actions = [
            message.action
            for message in csms.station(STATION_ID).messages_since(since)
            if message.action in ("Authorize", "TransactionEvent")
        ]
        assert actions[:2] == ["Authorize", "TransactionEvent"]


@VERSIONS
async def test_without_authorize_remote_start_the_token_is_not_asked_about(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    csms_config = CsmsConfig(accepted_id_tokens=["GOOD"])
    bad = {"idToken": "BAD", "type": "ISO14443"}
    async with station_on_memory_link(
        csms_config=csms_config, scenario=REMOTE_DRIVERS, ocpp_version=version
    ) as (_, csms):
        assert await get_variable(csms, "AuthCtrlr", "AuthorizeRemoteStart") == "false"
        since = messages_now(csms)
        assert (await remote_start(csms, bad))["status"] == "Accepted"
        # The transaction starts for the token, and the CSMS judges it in TransactionEvent.
        started = await event(csms, since, eventType="Started")
        assert started["idToken"] == bad
        await nothing_arrives(csms, "Authorize", since, within_s=1)


@VERSIONS
async def test_with_authorize_remote_start_a_plugged_in_ev_charges_only_for_an_accepted_token(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    """F01 with AuthorizeRemoteStart: the EV is plugged in, its driver's card was refused."""
    csms_config = CsmsConfig(accepted_id_tokens=["GOOD"])
    async with station_on_memory_link(
        csms_config=csms_config, scenario=REMOTE_DRIVERS, ocpp_version=version
    ) as (station, csms):
        await set_variable(csms, "AuthCtrlr", "AuthorizeRemoteStart", "true")
        since = messages_now(csms)
        cable_first_ev(station, {"idToken": "CARD-X", "type": "ISO14443"})
        await event(csms, since, eventType="Ended", stoppedReason="DeAuthorized")

        since = messages_now(csms)
        bad = {"idToken": "BAD", "type": "ISO14443"}
        assert (await remote_start(csms, bad))["status"] == "Accepted"
        with trio.fail_after(30):
            asked = await csms.wait_for_message(STATION_ID, "Authorize", since=since)
        assert asked["idToken"] == bad
        await nothing_arrives(csms, "TransactionEvent", since, within_s=120)
        assert station.evses[0].session is not None
        assert station.evses[0].session.power_w == 0

        since = messages_now(csms)
        good = {"idToken": "GOOD", "type": "ISO14443"}
        assert (await remote_start(csms, good, remoteStartId=6))["status"] == "Accepted"
        started = await event(csms, since, eventType="Started")
        assert started["triggerReason"] == "RemoteStart"
        assert started["transactionInfo"]["remoteStartId"] == 6
        await event(csms, since, chargingState="Charging")
