"""Block A: the password update of A01 with its fallback, and the security profile upgrade of
A05, over OCPP 2.1 and 2.0.1.

A01 runs over real loopback WebSockets (the password travels in the HTTP handshake, which a
memory link does not have) with a zero reconnect back-off, so it needs no waiting on the wall
clock beyond the reconnections themselves; A05 runs on memory links and MockClock, and checks
that a higher profile is accepted only with the certificates it needs (A05.FR.02/03).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.clock import SimClock
from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.link import ConnectError, Link
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.run import (
    RunOptions,
    _client_identity,
    _connector,
    _profile_settings,
    reporting_to_security,
    station_config,
)
from fleetsim.simulator.station import Station
from fleetsim.simulator.station.blocks import security
from fleetsim.simulator.station.passwords import password_problem
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import (
    CallDeadlines,
    ConnectionSettings,
    TlsSettings,
    open_memory_link,
)
from tests.helpers import STATION_ID, T0, one_station_scenario
from tests.station.certificate_steps import TEST_ROOT_HASH_DATA, root_installed

VERSIONS = pytest.mark.parametrize("version", ["2.1", "2.0.1"])
OLD_PASSWORD = "old-password-000001"
NEW_PASSWORD = "new-password-000002"
#: Passwords that break the passwordString rule (16 to 40 of letters, digits, *-_=:+|@.).
BAD_PASSWORDS = {
    "too short": "short-pass-0001",
    "too long": "long-password-" + "x" * 27,
    "another character": "new-password-0002!",
}
WAIT_S = 20


def _variable(name: str, value: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": name}}
    if value is not None:
        data["attributeValue"] = value
    return data


@asynccontextmanager
async def station_with_password(
    version: OcppVersion, passwords: dict[str, str]
) -> AsyncIterator[tuple[Station, Csms]]:
    """One station on a real WebSocket to the embedded CSMS, which checks `passwords` (a dict
    the test may change) at every handshake; the station reconnects without back-off."""
    scenario = one_station_scenario(
        {
            "csms": {
                "password": OLD_PASSWORD,
                "retry_backoff_wait_minimum_s": 0,
                "retry_backoff_random_range_s": 0,
            }
        },
        ocpp_version=version,
    )
    clock = SimClock(T0, 1.0)
    clock.start()
    csms = Csms(CsmsConfig(basic_auth_passwords=passwords), clock=clock.epoch_s)
    stats = RunStats()
    station = Station(STATION_ID, 1, station_config(scenario), clock, stats)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(csms.serve, "127.0.0.1", 0)
        deadlines = CallDeadlines()
        nursery.start_soon(deadlines.run)
        connect = _connector(
            scenario,
            RunOptions(),
            None,
            f"ws://127.0.0.1:{port}/ocpp",
            OLD_PASSWORD,
            stats,
            deadlines,
        )
        await nursery.start(station.run, connect)
        with trio.fail_after(WAIT_S):
            await station.wait_synced()
        yield station, csms
        nursery.cancel_scope.cancel()


async def _reconnected(csms: Csms, disconnections: int) -> None:
    state = csms.station(STATION_ID)
    while state.disconnections < disconnections:
        await csms.wait_disconnected(STATION_ID)
    await csms.wait_connected(STATION_ID)


@VERSIONS
async def test_a_new_password_is_used_for_the_next_connection(version: OcppVersion) -> None:
    passwords = {STATION_ID: OLD_PASSWORD}
    async with station_with_password(version, passwords) as (station, csms):
        passwords[STATION_ID] = NEW_PASSWORD  # the CSMS accepts only the new one from now on
        item = {
            "component": {"name": "SecurityCtrlr"},
            "variable": {"name": "BasicAuthPassword"},
            "attributeValue": NEW_PASSWORD,
        }
        answer = await csms.call(STATION_ID, "SetVariables", {"setVariableData": [item]})
        assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
        with trio.fail_after(WAIT_S):
            await _reconnected(csms, 1)
            await station.wait_synced()
        # Connected again, so with the new password: the CSMS refused nothing.
        assert csms.statistics().handshakes_rejected == {}
        assert security.connection_password(station) == NEW_PASSWORD
        read = await csms.call(
            STATION_ID,
            "GetVariables",
            {"getVariableData": [_variable("BasicAuthPassword"), _variable("SecurityProfile")]},
        )
        password_result, profile_result = read["getVariableResult"]
        # Write-only: never read back.
        assert password_result["attributeStatus"] == "Rejected"
        assert "attributeValue" not in password_result
        assert (profile_result["attributeStatus"], profile_result["attributeValue"]) == (
            "Accepted",
            "1",
        )


@VERSIONS
async def test_a_refused_new_password_falls_back_to_the_old_one_and_is_reported(
    version: OcppVersion,
) -> None:
    passwords = {STATION_ID: OLD_PASSWORD}  # the CSMS never learns the new one
    async with station_with_password(version, passwords) as (station, csms):
        since = csms.station(STATION_ID).messages_received
        answer = await csms.call(
            STATION_ID,
            "SetVariables",
            {"setVariableData": [_variable("BasicAuthPassword", NEW_PASSWORD)]},
        )
        assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
        with trio.fail_after(WAIT_S):
            event = await csms.wait_for_message(
                STATION_ID,
                "SecurityEventNotification",
                lambda p: p["type"] == "FailedToAuthenticateAtCsms",
                since=since,
            )
        # One refused attempt with the new password, then connected with the old one.
        assert csms.statistics().handshakes_rejected == {"unauthorized": 1}
        assert csms.station(STATION_ID).connected
        assert security.connection_password(station) is None  # the scenario's again
        assert NEW_PASSWORD not in str(event) and OLD_PASSWORD not in str(event)
        assert "previous" in event["techInfo"]
        assert station.stats.connection_attempts_by_outcome["rejected"] == 1


def test_the_password_rule_is_a_password_string_of_16_to_40_characters() -> None:
    allowed = "aZ09*-_=:+|@."
    assert password_problem((allowed * 2)[:16]) is None
    assert password_problem((allowed * 4)[:40]) is None
    for bad in ("a" * 15, "a" * 41, "a" * 15 + "!", "a" * 15 + " ", "a" * 15 + "é"):
        problem = password_problem(bad)
        assert problem is not None and bad not in problem


@VERSIONS
async def test_a_password_outside_the_rules_is_refused_and_the_old_one_stays_in_use(
    version: OcppVersion,
) -> None:
    """A01/A00.FR.205: SetVariables (and, in 2.1, SetNetworkProfile) refuses a password that is
    no passwordString of 16 to 40 characters, saying the rule and never the value; the
    station does not reconnect, and its next connection uses the old password."""
    passwords = {STATION_ID: OLD_PASSWORD}  # the CSMS takes nothing else
    async with station_with_password(version, passwords) as (station, csms):
        answers: list[Mapping[str, Any]] = []
        for why, bad in BAD_PASSWORDS.items():
            answer = await csms.call(
                STATION_ID,
                "SetVariables",
                {"setVariableData": [_variable("BasicAuthPassword", bad)]},
            )
            result = answer["setVariableResult"][0]
            assert result["attributeStatus"] == "Rejected", why
            assert result["attributeStatusInfo"]["reasonCode"] == "InvalidValue", why
            assert "16 to 40 characters" in result["attributeStatusInfo"]["additionalInfo"], why
            answers.append(answer)
        if version == "2.1":  # basicAuthPassword is a 2.1 field of connectionData
            data = {
                **_connection_data(version, NEW_CSMS_URL, 1),
                "basicAuthPassword": BAD_PASSWORDS["too short"],
            }
            stored = await csms.call(
                STATION_ID, "SetNetworkProfile", {"configurationSlot": 2, "connectionData": data}
            )
            assert stored["status"] == "Rejected"
            info = stored["statusInfo"]["additionalInfo"]
            assert "basicAuthPassword must be a passwordString" in info
            answers.append(stored)
            # The slot stayed empty: a priority naming it is refused.
            priority = {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "NetworkConfigurationPriority"},
                "attributeValue": "2,1",
            }
            answer = await csms.call(STATION_ID, "SetVariables", {"setVariableData": [priority]})
            assert answer["setVariableResult"][0]["attributeStatus"] == "Rejected"
        shown = json.dumps(answers) + repr(station.peek_block_state(security.BLOCK))
        assert not [bad for bad in BAD_PASSWORDS.values() if bad in shown]
        # Still the first connection: a request after the refusals is answered on it.
        read = await csms.call(
            STATION_ID, "GetVariables", {"getVariableData": [_variable("SecurityProfile")]}
        )
        assert read["getVariableResult"][0]["attributeValue"] == "1"
        assert csms.station(STATION_ID).disconnections == 0
        assert security.connection_password(station) is None
        # The next connection sends the old password, which the CSMS takes.
        await csms.disconnect(STATION_ID)
        with trio.fail_after(WAIT_S):
            await _reconnected(csms, 1)
            await station.wait_synced()
        assert csms.statistics().handshakes_rejected == {}
        assert station.stats.connection_attempts_by_outcome.get("rejected", 0) == 0


# -- A05: raising the security profile ----------------------------------------------------------

NEW_CSMS_URL = "wss://new-csms.example/ocpp"


@asynccontextmanager
async def station_moving_csms(
    version: OcppVersion, scenario_csms: Mapping[str, Any] | None = None
) -> AsyncIterator[tuple[Station, Csms, Csms]]:
    """A station on the scenario's CSMS (profile 1, unless `scenario_csms` says otherwise) and
    a CSMS at NEW_CSMS_URL it reaches through a network profile; memory links, so the
    profile's TLS is the settings' only."""
    scenario = one_station_scenario(
        None if scenario_csms is None else {"csms": scenario_csms}, ocpp_version=version
    )
    clock = SimClock(T0, 1.0)
    clock.start()
    old = Csms(CsmsConfig(), clock=clock.epoch_s)
    new = Csms(CsmsConfig(), clock=clock.epoch_s)
    stats = RunStats()
    station = Station(STATION_ID, 1, station_config(scenario), clock, stats)

    @asynccontextmanager
    async def unreachable(url: str) -> AsyncIterator[Link]:
        raise ConnectError(f"{url} is unreachable", "refused")
        yield  # pragma: no cover

    def connect(s: Station) -> AbstractAsyncContextManager[Link]:
        profile = s.connection_profile
        csms = old if profile is None else new
        if profile is not None and profile["ocppCsmsUrl"] != NEW_CSMS_URL:
            return unreachable(profile["ocppCsmsUrl"])
        return open_memory_link(
            s.id, csms.attach, s.handle, spawn=s.spawn, observer=stats, ocpp_version=version
        )

    async with trio.open_nursery() as nursery:
        await nursery.start(station.run, connect)
        with trio.fail_after(600):
            await station.wait_synced()
        yield station, old, new
        nursery.cancel_scope.cancel()


def _connection_data(version: OcppVersion, url: str, profile: int) -> dict[str, Any]:
    return {
        "ocppVersion": "OCPP20" if version == "2.0.1" else "OCPP21",
        "ocppTransport": "JSON",
        "ocppInterface": "Wired0",
        "ocppCsmsUrl": url,
        "messageTimeout": 30,
        "securityProfile": profile,
    }


async def _set_profile(
    csms: Csms, version: OcppVersion, slot: int, profile: int, url: str = NEW_CSMS_URL
) -> Mapping[str, Any]:
    return await csms.call(
        STATION_ID,
        "SetNetworkProfile",
        {"configurationSlot": slot, "connectionData": _connection_data(version, url, profile)},
    )


async def _priority(csms: Csms, value: str) -> Mapping[str, Any]:
    item = {
        "component": {"name": "OCPPCommCtrlr"},
        "variable": {"name": "NetworkConfigurationPriority"},
        "attributeValue": value,
    }
    answer = await csms.call(STATION_ID, "SetVariables", {"setVariableData": [item]})
    result: Mapping[str, Any] = answer["setVariableResult"][0]
    return result


async def _own_certificate_signed(station: Station, csms: Csms) -> None:
    """A02: the CSMS has the station ask for its certificate and signs it."""
    since = csms.station(STATION_ID).messages_received
    answer = await csms.call(
        STATION_ID, "TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}
    )
    assert answer["status"] == "Accepted"
    with trio.fail_after(600):
        await csms.wait_for_message(STATION_ID, "SignCertificate", since=since)
        while station.client_identity is None:
            await trio.sleep(1)  # CertificateSigned follows the SignCertificate answer


async def _security_profile(csms: Csms) -> str:
    read = await csms.call(
        STATION_ID, "GetVariables", {"getVariableData": [_variable("SecurityProfile")]}
    )
    return str(read["getVariableResult"][0]["attributeValue"])


@VERSIONS
async def test_a_higher_security_profile_is_taken_after_a_reset_and_a_lower_one_refused(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_moving_csms(version) as (station, old, new):
        assert await _security_profile(old) == "1"
        await root_installed(old)  # profile 2 needs a CSMS root (A05.FR.02)
        stored = await _set_profile(old, version, 2, 2)
        assert stored["status"] == "Accepted"
        assert (await _priority(old, "2,1"))["attributeStatus"] == "RebootRequired"
        assert (await old.call(STATION_ID, "Reset", {"type": "Immediate"}))["status"] == "Accepted"
        with trio.fail_after(600):
            boot = await new.wait_for_message(STATION_ID, "BootNotification")
            await station.wait_synced()
        assert boot["reason"] == "RemoteReset"
        assert await _security_profile(new) == "2"
        # The connection code connects with the profile's security profile.
        profile = station.connection_profile
        assert profile is not None
        fleet = ConnectionSettings(csms_url="ws://old/ocpp", tls=TlsSettings(profile=1))
        assert _profile_settings(fleet, profile).tls.profile == 2
        # Lower than the profile in use: refused, saying why.
        lower = await new.call(
            STATION_ID,
            "SetNetworkProfile",
            {
                "configurationSlot": 0,
                "connectionData": _connection_data(version, "ws://old/ocpp", 1),
            },
        )
        assert lower["status"] == "Rejected"
        assert lower["statusInfo"]["reasonCode"] == "InvalidValue"
        assert "lower than the one in use (2)" in lower["statusInfo"]["additionalInfo"]
        # Profile 2 over ws:// cannot be: refused too.
        plain = await new.call(
            STATION_ID,
            "SetNetworkProfile",
            {
                "configurationSlot": 0,
                "connectionData": _connection_data(version, "ws://other/ocpp", 3),
            },
        )
        assert plain["status"] == "Rejected"
        assert "wss://" in plain["statusInfo"]["additionalInfo"]


@VERSIONS
async def test_a_higher_security_profile_needs_the_certificates_it_runs_on(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    """A05.FR.02/03: profile 2 and 3 need a CSMS root, 3 also a ChargingStationCertificate of
    the station's own; once it has them, the station takes profile 3 after a reset and
    presents its signed certificate."""
    async with station_moving_csms(version) as (station, old, new):
        no_root = await _set_profile(old, version, 2, 2)
        assert no_root["status"] == "Rejected"
        assert no_root["statusInfo"]["reasonCode"] == "MissingCertificate"
        assert "CSMSRootCertificate" in no_root["statusInfo"]["additionalInfo"]
        # Nothing was stored: a priority naming the slot is refused.
        assert (await _priority(old, "2,1"))["attributeStatus"] == "Rejected"
        await root_installed(old)
        no_own = await _set_profile(old, version, 2, 3)
        assert no_own["status"] == "Rejected"
        assert no_own["statusInfo"]["reasonCode"] == "MissingCertificate"
        assert "ChargingStationCertificate" in no_own["statusInfo"]["additionalInfo"]
        await _own_certificate_signed(station, old)
        assert (await _set_profile(old, version, 2, 3))["status"] == "Accepted"
        assert (await _priority(old, "2,1"))["attributeStatus"] == "RebootRequired"
        assert (await old.call(STATION_ID, "Reset", {"type": "Immediate"}))["status"] == "Accepted"
        with trio.fail_after(600):
            boot = await new.wait_for_message(STATION_ID, "BootNotification")
            await station.wait_synced()
        assert boot["reason"] == "RemoteReset"
        assert await _security_profile(new) == "3"
        # The connection code connects with profile 3 and the certificate CertificateSigned gave.
        profile = station.connection_profile
        assert profile is not None
        fleet = ConnectionSettings(csms_url="ws://old/ocpp", tls=TlsSettings(profile=1))
        settings = _profile_settings(fleet, profile)
        assert settings.tls.profile == 3
        identity = station.client_identity
        assert identity is not None
        assert _client_identity(station, settings, None) == (identity.chain_pem, identity.key_pem)


@VERSIONS
async def test_a_csms_root_deleted_after_the_profile_was_stored_makes_the_priority_refused(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    """A05.FR.02 at NetworkConfigurationPriority: the profile was accepted with a root
    installed; once the root is gone, the priority that would take the profile is Rejected and
    the station keeps connecting through slot 1 after a reset."""
    async with station_moving_csms(version) as (station, old, new):
        await root_installed(old)
        assert (await _set_profile(old, version, 2, 2))["status"] == "Accepted"
        deleted = await old.call(
            STATION_ID, "DeleteCertificate", {"certificateHashData": TEST_ROOT_HASH_DATA}
        )
        assert deleted["status"] == "Accepted"
        result = await _priority(old, "2,1")
        assert result["attributeStatus"] == "Rejected"
        assert result["attributeStatusInfo"]["reasonCode"] == "MissingCertificate"
        assert "slot 2" in result["attributeStatusInfo"]["additionalInfo"]
        assert "CSMSRootCertificate" in result["attributeStatusInfo"]["additionalInfo"]
        assert station.device_model.members("OCPPCommCtrlr", "NetworkConfigurationPriority") == (
            "1",
        )
        since = old.station(STATION_ID).messages_received
        assert (await old.call(STATION_ID, "Reset", {"type": "Immediate"}))["status"] == "Accepted"
        with trio.fail_after(600):
            boot = await old.wait_for_message(STATION_ID, "BootNotification", since=since)
        assert boot["reason"] == "RemoteReset"
        assert station.connection_profile is None
        assert not new.is_connected(STATION_ID) and new.statistics().stations_known == 0


@VERSIONS
async def test_the_scenario_ca_is_a_csms_root_but_no_station_certificate(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    """The CA file the scenario gives the stations is the fleet's CSMS root: profile 2 needs
    no installed one; profile 3 still needs the station's own certificate."""
    async with station_moving_csms(version, {"security": {"ca_file": "csms-ca.pem"}}) as (
        station,
        old,
        _new,
    ):
        assert station.config.trusts_scenario_ca
        assert station.device_model.get("SecurityCtrlr", "CertificateEntries") == "0"
        assert (await _set_profile(old, version, 2, 2))["status"] == "Accepted"
        no_own = await _set_profile(old, version, 0, 3)
        assert no_own["status"] == "Rejected"
        assert "ChargingStationCertificate" in no_own["statusInfo"]["additionalInfo"]


# -- security events of failed connections ------------------------------------------------------


@VERSIONS
async def test_a_refused_csms_certificate_is_reported_once_after_the_reconnect(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    """Three attempts fail on the CSMS's certificate, the fourth connects: one
    InvalidCsmsCertificate goes out, stamped when the first attempt failed."""
    scenario = one_station_scenario(ocpp_version=version)
    clock = SimClock(T0, 1.0)
    clock.start()
    csms = Csms(CsmsConfig(), clock=clock.epoch_s)
    stats = RunStats()
    station = Station(STATION_ID, 1, station_config(scenario), clock, stats)
    attempts = 0

    @asynccontextmanager
    async def untrusted() -> AsyncIterator[Link]:
        raise ConnectError("the CSMS's certificate is not trusted", "untrusted_certificate")
        yield  # pragma: no cover

    def connect(s: Station) -> AbstractAsyncContextManager[Link]:
        nonlocal attempts
        attempts += 1
        if attempts <= 3:
            return untrusted()
        return open_memory_link(
            s.id, csms.attach, s.handle, spawn=s.spawn, observer=stats, ocpp_version=version
        )

    async with trio.open_nursery() as nursery:
        first_failure = clock.timestamp()
        await nursery.start(station.run, reporting_to_security(connect))
        with trio.fail_after(3600):
            event = await csms.wait_for_message(STATION_ID, "SecurityEventNotification")
            await station.wait_synced()
        assert event["type"] == "InvalidCsmsCertificate"
        assert event["timestamp"] == first_failure
        assert stats.connection_attempts_by_outcome["untrusted_certificate"] == 3
        sent = [m for m in csms.station(STATION_ID).actions() if m == "SecurityEventNotification"]
        assert sent == ["SecurityEventNotification"]
        nursery.cancel_scope.cancel()
