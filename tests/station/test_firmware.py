"""Firmware management as the CSMS sees it (L01-L04): the status sequence of an update on
simulated time, its failures, its timing, the reboot into the new firmware, updates that
supersede each other, publishing as a Local Controller, and a fleet-wide rollout."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from pydantic import ValidationError
from trio.testing import MockClock
from typer.testing import CliRunner

from fleetsim.cli.exit_codes import ExitCode
from fleetsim.cli.main import app
from fleetsim.simulator.clock import SimClock
from fleetsim.simulator.csms import Csms, CsmsConfig, FirmwareRollout
from fleetsim.simulator.csms.firmware_rollout import FINAL_STATUSES
from fleetsim.simulator.link import Link
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.run import station_config
from fleetsim.simulator.scenario import FirmwareSettings
from fleetsim.simulator.station import Station
from fleetsim.simulator.station.blocks.firmware import step_fails
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import open_memory_link
from tests.helpers import STATION_ID, T0, one_station_scenario, station_on_memory_link

VERSIONS = pytest.mark.parametrize("version", ["2.1", "2.0.1"])
LOCATION = "https://firmware.example.com/images/fleetsim-0.2.bin"
#: A PEM certificate shape; the station checks the shape, it holds no root to check it against.
CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2Fs\n-----END CERTIFICATE-----\n"
SIGNATURE = "MEUCIQC7cGxhY2Vob2xkZXI="
DOWNLOAD_S = 60.0
INSTALL_S = 120.0
DRIVER = {"idToken": "DRIVER-1", "type": "ISO14443"}
CHECKSUM = "9e107d9d372bb6826bd81d3542a419d6"


def firmware_section(**settings: Any) -> dict[str, Any]:
    return {"stations": {"count": 1, "firmware": settings}}


def at(offset_s: float) -> str:
    """The OCPP date-time `offset_s` simulated seconds after the test's start."""
    return (T0 + dt.timedelta(seconds=offset_s)).isoformat().replace("+00:00", "Z")


def update_request(request_id: int = 7, **firmware: Any) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "firmware": {"location": LOCATION, "retrieveDateTime": at(0), **firmware},
    }


def now_s(station: Station) -> float:
    return station.clock.sim_now()


async def statuses_until(
    csms: Csms, action: str, final: frozenset[str], since: int, within_s: float = 4 * 3600
) -> list[Mapping[str, Any]]:
    """The `action` payloads from `since` on, up to and including the first final status."""
    found: list[Mapping[str, Any]] = []
    with trio.fail_after(within_s):
        while True:
            payload = await csms.wait_for_message(STATION_ID, action, since=since)
            found.append(payload)
            since = position_after(csms, action, since)
            if payload["status"] in final:
                return found


def position_after(csms: Csms, action: str, since: int) -> int:
    """The position just after the first `action` message from `since` (to wait for the next)."""
    for position, message in enumerate(csms.station(STATION_ID).messages_since(since), since):
        if message.action == action:
            return position + 1
    raise AssertionError(f"no {action} from position {since}")


def sent_since(csms: Csms, since: int) -> list[tuple[str, Mapping[str, Any]]]:
    return [
        (message.action, message.payload)
        for message in csms.station(STATION_ID).messages_since(since)
    ]


def firmware_statuses(csms: Csms, since: int) -> list[str]:
    return [
        payload["status"]
        for action, payload in sent_since(csms, since)
        if action == "FirmwareStatusNotification"
    ]


UPDATE_ENDS = FINAL_STATUSES


@VERSIONS
async def test_an_update_downloads_installs_reboots_and_boots_on_the_new_firmware(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        since = csms.station(STATION_ID).messages_received
        started_s = now_s(station)
        answer = await csms.call(STATION_ID, "UpdateFirmware", update_request())
        assert answer["status"] == "Accepted"
        reports = await statuses_until(csms, "FirmwareStatusNotification", UPDATE_ENDS, since)
        assert [r["status"] for r in reports] == [
            "Downloading",
            "Downloaded",
            "Installing",
            "InstallRebooting",
            "Installed",
        ]
        assert all(r["requestId"] == 7 for r in reports)
        # Downloading and installing take the scenario's simulated time, then the reboot.
        assert now_s(station) - started_s >= DOWNLOAD_S + INSTALL_S + station.config.reboot_s
        with trio.fail_after(30):
            await csms.wait_for_message(
                STATION_ID, "SecurityEventNotification", lambda p: p["type"] == "FirmwareUpdated"
            )
        sequence = [
            (action, payload.get("status") or payload.get("reason") or payload.get("type"))
            for action, payload in sent_since(csms, since)
            if action
            in ("FirmwareStatusNotification", "BootNotification", "SecurityEventNotification")
        ]
        # The boot on the new firmware comes between InstallRebooting and Installed.
        assert sequence[-4:] == [
            ("FirmwareStatusNotification", "InstallRebooting"),
            ("BootNotification", "FirmwareUpdate"),
            ("FirmwareStatusNotification", "Installed"),
            ("SecurityEventNotification", "FirmwareUpdated"),
        ]
        boot = next(p for a, p in sent_since(csms, since) if a == "BootNotification")
        assert boot["chargingStation"]["firmwareVersion"] == "fleetsim-0.2"
        # Nothing is under way any more.
        since = csms.station(STATION_ID).messages_received
        await csms.call(
            STATION_ID, "TriggerMessage", {"requestedMessage": "FirmwareStatusNotification"}
        )
        with trio.fail_after(30):
            idle = await csms.wait_for_message(
                STATION_ID, "FirmwareStatusNotification", since=since
            )
        assert idle == {"status": "Idle"}


@VERSIONS
async def test_signed_firmware_is_verified_and_a_bad_signature_stops_the_update(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    signed = update_request(signingCertificate=CERTIFICATE, signature=SIGNATURE)
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        since = csms.station(STATION_ID).messages_received
        assert (await csms.call(STATION_ID, "UpdateFirmware", signed))["status"] == "Accepted"
        reports = await statuses_until(csms, "FirmwareStatusNotification", UPDATE_ENDS, since)
        assert [r["status"] for r in reports][:4] == [
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "Installing",
        ]
    scenario = firmware_section(invalid_signature_share=1.0)
    async with station_on_memory_link(scenario=scenario, ocpp_version=version) as (station, csms):
        since = csms.station(STATION_ID).messages_received
        assert (await csms.call(STATION_ID, "UpdateFirmware", signed))["status"] == "Accepted"
        reports = await statuses_until(csms, "FirmwareStatusNotification", UPDATE_ENDS, since)
        assert [r["status"] for r in reports] == ["Downloading", "Downloaded", "InvalidSignature"]
        with trio.fail_after(30):
            event = await csms.wait_for_message(
                STATION_ID, "SecurityEventNotification", since=since
            )
        assert event["type"] == "InvalidFirmwareSignature"
        with trio.move_on_after(3600):
            await csms.wait_for_message(STATION_ID, "BootNotification", since=since)
            pytest.fail("the station rebooted although the signature did not verify")
        assert station.firmware_version == station.config.firmware_version


@VERSIONS
async def test_a_signing_certificate_that_is_no_certificate_is_refused(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (_station, csms):
        since = csms.station(STATION_ID).messages_received
        answer = await csms.call(
            STATION_ID,
            "UpdateFirmware",
            update_request(signingCertificate="not a certificate", signature=SIGNATURE),
        )
        assert answer["status"] == "InvalidCertificate"
        with trio.fail_after(30):
            event = await csms.wait_for_message(
                STATION_ID, "SecurityEventNotification", since=since
            )
        assert event["type"] == "InvalidFirmwareSigningCertificate"
        assert firmware_statuses(csms, since) == []


@VERSIONS
async def test_retrieve_and_install_date_times_are_honoured(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        since = csms.station(STATION_ID).messages_received
        base_s = now_s(station)
        request = update_request(
            retrieveDateTime=at(base_s + 3600), installDateTime=at(base_s + 7200)
        )
        assert (await csms.call(STATION_ID, "UpdateFirmware", request))["status"] == "Accepted"
        times: dict[str, float] = {}
        with trio.fail_after(4 * 3600):
            position = since
            while "Installing" not in times:
                payload = await csms.wait_for_message(
                    STATION_ID, "FirmwareStatusNotification", since=position
                )
                times[payload["status"]] = now_s(station) - base_s
                position = position_after(csms, "FirmwareStatusNotification", position)
        assert list(times) == [
            "DownloadScheduled",
            "Downloading",
            "Downloaded",
            "InstallScheduled",
            "Installing",
        ]
        assert times["DownloadScheduled"] < 1
        assert times["Downloading"] == pytest.approx(3600, abs=1)
        assert times["Downloaded"] == pytest.approx(3600 + DOWNLOAD_S, abs=1)
        assert times["Installing"] == pytest.approx(7200, abs=1)


@VERSIONS
async def test_a_failed_download_is_retried_then_given_up(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    scenario = firmware_section(download_failure_share=1.0)
    async with station_on_memory_link(scenario=scenario, ocpp_version=version) as (station, csms):
        since = csms.station(STATION_ID).messages_received
        base_s = now_s(station)
        request = {**update_request(), "retries": 2, "retryInterval": 30}
        assert (await csms.call(STATION_ID, "UpdateFirmware", request))["status"] == "Accepted"
        with trio.fail_after(4 * 3600):
            while firmware_statuses(csms, since).count("DownloadFailed") < 3:
                await csms.wait_for_message(
                    STATION_ID,
                    "FirmwareStatusNotification",
                    since=csms.station(STATION_ID).messages_received,
                )
        # Three attempts of DOWNLOAD_S, 30 s apart.
        assert now_s(station) - base_s == pytest.approx(3 * DOWNLOAD_S + 2 * 30, abs=1)
        with trio.move_on_after(3600):
            await csms.wait_for_message(
                STATION_ID,
                "FirmwareStatusNotification",
                since=csms.station(STATION_ID).messages_received,
            )
            pytest.fail("the station went on after its last retry")
        assert firmware_statuses(csms, since) == ["Downloading", "DownloadFailed"] * 3


@VERSIONS
@pytest.mark.parametrize(
    ("setting", "ending"),
    [
        ("install_failure_share", "InstallationFailed"),
        ("install_verification_failure_share", "InstallVerificationFailed"),
    ],
)
async def test_a_failed_installation_keeps_the_old_firmware_running(
    autojump_clock: MockClock, version: OcppVersion, setting: str, ending: str
) -> None:
    scenario = firmware_section(**{setting: 1.0})
    async with station_on_memory_link(scenario=scenario, ocpp_version=version) as (station, csms):
        since = csms.station(STATION_ID).messages_received
        assert (await csms.call(STATION_ID, "UpdateFirmware", update_request()))[
            "status"
        ] == "Accepted"
        reports = await statuses_until(csms, "FirmwareStatusNotification", UPDATE_ENDS, since)
        assert [r["status"] for r in reports] == ["Downloading", "Downloaded", "Installing", ending]
        with trio.move_on_after(3600):
            await csms.wait_for_message(STATION_ID, "BootNotification", since=since)
            pytest.fail("the station rebooted although the installation failed")
        assert station.firmware_version == station.config.firmware_version


@VERSIONS
async def test_installation_waits_for_the_running_transaction_to_end(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    scenario = {
        "ev_fleet": {
            "models": {"test-ev": 1.0},
            "extra_models": {"test-ev": one_station_scenario().ev_fleet.extra_models["test-ev"]},
            "remote_start_plugin_delay_s": 60,
        }
    }
    async with station_on_memory_link(scenario=scenario, ocpp_version=version) as (station, csms):
        since = csms.station(STATION_ID).messages_received
        start = {"remoteStartId": 1, "idToken": DRIVER, "evseId": 1}
        assert (await csms.call(STATION_ID, "RequestStartTransaction", start))[
            "status"
        ] == "Accepted"
        with trio.fail_after(600):
            started = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Started", since=since
            )
        transaction_id = started["transactionInfo"]["transactionId"]
        assert (await csms.call(STATION_ID, "UpdateFirmware", update_request()))[
            "status"
        ] == "Accepted"
        # Downloaded, then nothing for an hour while the driver charges.
        await trio.sleep(3600)
        assert firmware_statuses(csms, since) == ["Downloading", "Downloaded"]
        stopped_at = now_s(station)
        stop = {"transactionId": transaction_id}
        assert (await csms.call(STATION_ID, "RequestStopTransaction", stop))["status"] == "Accepted"
        with trio.fail_after(600):
            await csms.wait_for_message(
                STATION_ID,
                "FirmwareStatusNotification",
                lambda p: p["status"] == "Installing",
                since=since,
            )
        assert now_s(station) - stopped_at < 60
        ended = [
            i
            for i, (action, payload) in enumerate(sent_since(csms, since))
            if action == "TransactionEvent" and payload["eventType"] == "Ended"
        ]
        installing = [
            i
            for i, (action, payload) in enumerate(sent_since(csms, since))
            if action == "FirmwareStatusNotification" and payload["status"] == "Installing"
        ]
        assert ended[0] < installing[0]


@VERSIONS
async def test_a_new_update_cancels_a_downloading_one_but_not_an_installing_one(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (station, csms):
        since = csms.station(STATION_ID).messages_received
        assert (await csms.call(STATION_ID, "UpdateFirmware", update_request(1)))[
            "status"
        ] == "Accepted"
        await trio.sleep(DOWNLOAD_S / 2)
        second = update_request(2, location="https://firmware.example.com/fleetsim-0.3.bin")
        assert (await csms.call(STATION_ID, "UpdateFirmware", second))[
            "status"
        ] == "AcceptedCanceled"
        with trio.fail_after(600):
            await csms.wait_for_message(
                STATION_ID,
                "FirmwareStatusNotification",
                lambda p: p["status"] == "Installing",
                since=since,
            )
        third = update_request(3)
        answer = await csms.call(STATION_ID, "UpdateFirmware", third)
        assert answer["status"] == "Rejected"
        assert answer["statusInfo"]["additionalInfo"]
        reports = await statuses_until(csms, "FirmwareStatusNotification", UPDATE_ENDS, since)
        first = [r["status"] for r in reports if r["requestId"] == 1]
        assert first == ["Downloading"]  # and nothing more of the canceled update
        assert [r["status"] for r in reports if r["requestId"] == 2] == [
            "Downloading",
            "Downloaded",
            "Installing",
            "InstallRebooting",
            "Installed",
        ]
        assert not [r for r in reports if r["requestId"] == 3]
        assert station.firmware_version == "fleetsim-0.3"


@VERSIONS
async def test_a_trigger_reports_the_update_under_way_with_its_request_id(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (_station, csms):
        assert (await csms.call(STATION_ID, "UpdateFirmware", update_request(9)))[
            "status"
        ] == "Accepted"
        await trio.sleep(DOWNLOAD_S / 2)
        since = csms.station(STATION_ID).messages_received
        trigger = {"requestedMessage": "FirmwareStatusNotification"}
        assert (await csms.call(STATION_ID, "TriggerMessage", trigger))["status"] == "Accepted"
        with trio.fail_after(30):
            report = await csms.wait_for_message(
                STATION_ID, "FirmwareStatusNotification", since=since
            )
        assert report == {"status": "Downloading", "requestId": 9}


# -- L03/L04: publishing as a Local Controller --------------------------------------------------

PUBLISH = {"location": LOCATION, "checksum": CHECKSUM, "requestId": 21}
LOCAL_CONTROLLER = firmware_section(local_controller=True)
PUBLISH_ENDS = frozenset({"Published", "DownloadFailed", "InvalidChecksum", "PublishFailed"})


@VERSIONS
async def test_a_station_that_is_no_local_controller_refuses_to_publish(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(ocpp_version=version) as (_station, csms):
        since = csms.station(STATION_ID).messages_received
        answer = await csms.call(STATION_ID, "PublishFirmware", PUBLISH)
        assert answer["status"] == "Rejected"
        assert "Local Controller" in answer["statusInfo"]["additionalInfo"]
        unpublish = await csms.call(STATION_ID, "UnpublishFirmware", {"checksum": CHECKSUM})
        assert unpublish["status"] == "NoFirmware"
        with trio.move_on_after(600):
            await csms.wait_for_message(
                STATION_ID, "PublishFirmwareStatusNotification", since=since
            )
            pytest.fail("a refused publication reported a status")


@VERSIONS
async def test_a_local_controller_publishes_and_unpublishes_firmware(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=LOCAL_CONTROLLER, ocpp_version=version) as (
        _station,
        csms,
    ):
        since = csms.station(STATION_ID).messages_received
        assert (await csms.call(STATION_ID, "PublishFirmware", PUBLISH))["status"] == "Accepted"
        unpublish = {"checksum": CHECKSUM}
        assert (await csms.call(STATION_ID, "UnpublishFirmware", unpublish))[
            "status"
        ] == "DownloadOngoing"
        reports = await statuses_until(
            csms, "PublishFirmwareStatusNotification", PUBLISH_ENDS, since
        )
        assert [r["status"] for r in reports] == [
            "Downloading",
            "Downloaded",
            "ChecksumVerified",
            "Published",
        ]
        assert all(r["requestId"] == 21 for r in reports)
        assert reports[-1]["location"] and CHECKSUM in reports[-1]["location"][0]
        other = {"checksum": "0" * 32}
        assert (await csms.call(STATION_ID, "UnpublishFirmware", other))["status"] == "NoFirmware"
        assert (await csms.call(STATION_ID, "UnpublishFirmware", unpublish))[
            "status"
        ] == "Unpublished"
        assert (await csms.call(STATION_ID, "UnpublishFirmware", unpublish))[
            "status"
        ] == "NoFirmware"


@VERSIONS
async def test_a_publication_with_a_bad_checksum_is_not_published(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    scenario = firmware_section(local_controller=True, invalid_signature_share=1.0)
    async with station_on_memory_link(scenario=scenario, ocpp_version=version) as (_station, csms):
        since = csms.station(STATION_ID).messages_received
        assert (await csms.call(STATION_ID, "PublishFirmware", PUBLISH))["status"] == "Accepted"
        reports = await statuses_until(
            csms, "PublishFirmwareStatusNotification", PUBLISH_ENDS, since
        )
        assert [r["status"] for r in reports] == ["Downloading", "Downloaded", "InvalidChecksum"]
        unpublish = {"checksum": CHECKSUM}
        assert (await csms.call(STATION_ID, "UnpublishFirmware", unpublish))[
            "status"
        ] == "NoFirmware"


# -- a fleet-wide rollout -----------------------------------------------------------------------

FLEET = 100
#: 10 % of the updates fail, at one of three steps.
FAILING = {
    "download_failure_share": 0.04,
    "invalid_signature_share": 0.03,
    "install_failure_share": 0.03,
}
SUCCESS = [
    "Downloading",
    "Downloaded",
    "SignatureVerified",
    "Installing",
    "InstallRebooting",
    "Installed",
]


def expected_sequence(station_id: str, request_id: int) -> list[str]:
    """What one station of the rollout must report: the sequence up to the step its draw
    fails, or the whole of it."""
    if step_fails(station_id, request_id, "download", 0, FAILING["download_failure_share"]):
        return ["Downloading", "DownloadFailed"]
    if step_fails(station_id, request_id, "signature", 0, FAILING["invalid_signature_share"]):
        return ["Downloading", "Downloaded", "InvalidSignature"]
    if step_fails(station_id, request_id, "install", 0, FAILING["install_failure_share"]):
        return [
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "Installing",
            "InstallationFailed",
        ]
    return SUCCESS


@asynccontextmanager
async def fleet_on_memory_links(
    count: int, rollout: FirmwareRollout, version: OcppVersion
) -> AsyncIterator[tuple[list[Station], Csms]]:
    """`count` booted stations whose updates fail as `FAILING` says, joined in memory to one
    CSMS that follows `rollout`."""
    built = one_station_scenario(
        {"stations": {"count": count, "firmware": FAILING}}, ocpp_version=version
    )
    clock = SimClock(T0)
    clock.start()
    csms = Csms(CsmsConfig(response_overrides=rollout.response_overrides()), clock=clock.epoch_s)
    config = station_config(built)
    stats = RunStats()
    stations = [
        Station(built.stations.station_id(index), index, config, clock, stats)
        for index in built.stations.station_indices
    ]

    def connect(s: Station) -> AbstractAsyncContextManager[Link]:
        return open_memory_link(
            s.id, csms.attach, s.handle, spawn=s.spawn, observer=stats, ocpp_version=version
        )

    async with trio.open_nursery() as nursery:
        for station in stations:
            await nursery.start(station.run, connect)
        with trio.fail_after(3600):
            for station in stations:
                await station.wait_synced()
        yield stations, csms
        nursery.cancel_scope.cancel()


def received(csms: Csms, station_id: str, action: str) -> list[Mapping[str, Any]]:
    return [
        message.payload
        for message in csms.station(station_id).messages_since(0)
        if message.action == action
    ]


@VERSIONS
async def test_a_rollout_across_100_stations_with_10_percent_failures_reports_each_sequence(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    rollout = FirmwareRollout(location=LOCATION, request_id=3, signed=True)
    async with fleet_on_memory_links(FLEET, rollout, version) as (stations, csms):
        await rollout.roll_out(csms, stations[0].clock.epoch_s())
        assert rollout.answers == {"Accepted": FLEET}
        # Every update ends within the time the slowest takes (no retries here).
        await trio.sleep(DOWNLOAD_S + 5 + INSTALL_S + 60)
        failed = 0
        for station in stations:
            expected = expected_sequence(station.id, 3)
            reported = [
                payload["status"]
                for payload in received(csms, station.id, "FirmwareStatusNotification")
                if payload.get("requestId") == 3
            ]
            assert reported == expected, station.id
            # The rollout's view is the station's own notifications, in order.
            assert rollout.statuses[station.id] == expected, station.id
            boots = received(csms, station.id, "BootNotification")
            if expected == SUCCESS:
                assert [b["reason"] for b in boots] == ["PowerUp", "FirmwareUpdate"]
                assert boots[-1]["chargingStation"]["firmwareVersion"] == "fleetsim-0.2"
                assert station.firmware_version == "fleetsim-0.2"
            else:
                failed += 1
                assert [b["reason"] for b in boots] == ["PowerUp"]
                assert station.firmware_version == station.config.firmware_version
        assert 4 <= failed <= 20, failed
        outcomes = rollout.outcomes()
        assert outcomes["Installed"] == FLEET - failed
        assert sum(outcomes.values()) == FLEET
        assert set(outcomes) <= FINAL_STATUSES


# -- the scenario ---------------------------------------------------------------------------------


def test_failure_shares_that_add_up_to_more_than_one_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"add up to 1\.2"):
        FirmwareSettings(download_failure_share=0.7, install_failure_share=0.5)


def test_a_fast_run_rolls_out_firmware_and_reports_how_it_went(tmp_path: Path) -> None:
    scenario = tmp_path / "rollout.yaml"
    scenario.write_text(
        json.dumps(
            {
                "name": "rollout",
                "seed": 3,
                "start": "2026-01-15T08:00:00Z",
                "duration_s": 3600,
                "stations": {"count": 20, "firmware": {"install_failure_share": 0.2}},
                "sites": [{"name": "lot", "arrivals_per_evse_per_day": 0}],
                "embedded_csms": {"firmware_rollout": {"at_s": 600, "share": 0.5}},
            }
        )
    )
    summary_path = tmp_path / "summary.json"
    result = CliRunner().invoke(
        app,
        ["run", str(scenario), "--fast", "--no-progress", "--summary-json", str(summary_path)],
    )
    assert result.exit_code == ExitCode.OK, result.output
    summary = json.loads(summary_path.read_text())
    rollout = summary["firmware_rollout"]
    picked = sum(
        FirmwareRollout(location=LOCATION, share=0.5).picks(f"CP{i:05d}") for i in range(1, 21)
    )
    assert 0 < picked < 20
    assert rollout["answers"] == {"Accepted": picked}
    outcomes = rollout["outcomes"]
    assert sum(outcomes.values()) == picked
    assert set(outcomes) <= {"Installed", "InstallationFailed"}
    assert outcomes.get("InstallationFailed", 0) > 0
    assert summary["station_failures"] == 0, summary["errors"]
