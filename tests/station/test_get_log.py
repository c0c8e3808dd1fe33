"""N01: GetLog uploads a log on simulated time and LogStatusNotification follows it."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock, wait_all_tasks_blocked

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.csms.log_collection import LogCollection
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.run import station_config
from tests.helpers import STATION_ID, one_station_scenario, station_on_memory_link

VERSIONS: list[OcppVersion] = ["2.1", "2.0.1"]
LOCATION = "https://csms.example.com/logs"


def get_log(request_id: int, **extra: Any) -> dict[str, Any]:
    log = {"remoteLocation": extra.pop("remote_location", LOCATION)}
    log.update(extra.pop("log", {}))
    return {
        "logType": extra.pop("log_type", "DiagnosticsLog"),
        "requestId": request_id,
        "log": log,
        **extra,
    }


def config(version: OcppVersion, *, upload_s: float = 30.0, failure_share: float = 0.0) -> Any:
    return dataclasses.replace(
        station_config(one_station_scenario(ocpp_version=version)),
        log_upload_s=upload_s,
        log_upload_failure_share=failure_share,
    )


async def statuses(csms: Csms, since: int, count: int) -> list[tuple[float, Mapping[str, Any]]]:
    """The next `count` LogStatusNotifications from message `since` on, with the trio time at
    which each was awaited."""
    found: list[tuple[float, Mapping[str, Any]]] = []
    with trio.fail_after(3600):
        while len(found) < count:
            payload = await csms.wait_for_message(STATION_ID, "LogStatusNotification", since=since)
            found.append((trio.current_time(), payload))
            for offset, message in enumerate(csms.station(STATION_ID).messages_since(since)):
                if message.action == "LogStatusNotification":
                    since += offset + 1
                    break
    return found


@pytest.mark.parametrize("version", VERSIONS)
async def test_an_upload_reports_uploading_then_uploaded_after_its_duration(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(config(version, upload_s=45), ocpp_version=version) as (
        _station,
        csms,
    ):
        since = csms.station(STATION_ID).messages_received
        answer = await csms.call(STATION_ID, "GetLog", get_log(5))
        asked_at = trio.current_time()
        assert answer["status"] == "Accepted"
        assert answer["filename"].startswith(f"{STATION_ID}-DiagnosticsLog-20260115T120000Z-")
        (uploading_at, uploading), (uploaded_at, uploaded) = await statuses(csms, since, 2)
        assert uploading == {"status": "Uploading", "requestId": 5}
        assert uploaded == {"status": "Uploaded", "requestId": 5}
        assert uploading_at - asked_at < 1
        assert uploaded_at - uploading_at == pytest.approx(45)


@pytest.mark.parametrize("version", VERSIONS)
async def test_failed_attempts_are_retried_then_reported_upload_failure(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(
        config(version, upload_s=10, failure_share=1.0), ocpp_version=version
    ) as (_station, csms):
        since = csms.station(STATION_ID).messages_received
        await csms.call(STATION_ID, "GetLog", get_log(6, retries=2, retryInterval=100))
        found = await statuses(csms, since, 4)
        assert [p["status"] for _, p in found] == ["Uploading"] * 3 + ["UploadFailure"]
        assert all(p["requestId"] == 6 for _, p in found)
        times = [t for t, _ in found]
        # Each attempt takes 10 s; a retry follows 100 s after the failed attempt.
        assert [round(b - a) for a, b in itertools.pairwise(times)] == [110, 110, 10]
        assert ("statusInfo" in found[-1][1]) == (version == "2.1")


async def test_which_attempts_fail_is_the_same_in_every_run(autojump_clock: MockClock) -> None:
    outcomes = []
    for _ in range(2):
        async with station_on_memory_link(config("2.1", upload_s=1, failure_share=0.5)) as (
            _station,
            csms,
        ):
            seen = []
            for request_id in range(1, 9):
                since = csms.station(STATION_ID).messages_received
                await csms.call(STATION_ID, "GetLog", get_log(request_id, retries=0))
                _, last = (await statuses(csms, since, 2))[-1]
                seen.append(last["status"])
            outcomes.append(seen)
    assert outcomes[0] == outcomes[1]
    assert {"Uploaded", "UploadFailure"} == set(outcomes[0])


async def test_a_new_request_cancels_the_running_upload(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(config("2.1", upload_s=600)) as (_station, csms):
        since = csms.station(STATION_ID).messages_received
        assert (await csms.call(STATION_ID, "GetLog", get_log(1)))["status"] == "Accepted"
        await statuses(csms, since, 1)  # the first upload runs
        second = await csms.call(STATION_ID, "GetLog", get_log(2, log_type="SecurityLog"))
        assert second["status"] == "AcceptedCanceled"
        assert second["filename"].startswith(f"{STATION_ID}-SecurityLog-")
        found = [p for _, p in await statuses(csms, since, 4)]
        assert found[1:] == [
            {"status": "AcceptedCanceled", "requestId": 1},
            {"status": "Uploading", "requestId": 2},
            {"status": "Uploaded", "requestId": 2},
        ]
        # The cancelled upload says nothing more.
        assert not any(p == {"status": "Uploaded", "requestId": 1} for p in _all_statuses(csms))


def _all_statuses(csms: Csms) -> list[Mapping[str, Any]]:
    return [
        m.payload
        for m in csms.station(STATION_ID).messages_since(0)
        if m.action == "LogStatusNotification"
    ]


@pytest.mark.parametrize(
    ("location", "status"),
    [("not a url", "BadMessage"), ("ftp://csms.example.com/logs", "NotSupportedOperation")],
)
async def test_a_destination_the_station_cannot_use_is_reported(
    autojump_clock: MockClock, location: str, status: str
) -> None:
    async with station_on_memory_link(config("2.1")) as (_station, csms):
        since = csms.station(STATION_ID).messages_received
        answer = await csms.call(STATION_ID, "GetLog", get_log(3, remote_location=location))
        assert answer["status"] == "Accepted"
        ((_, notice),) = await statuses(csms, since, 1)
        assert notice["status"] == status and notice["requestId"] == 3
        assert notice["statusInfo"]["additionalInfo"]


async def test_the_filename_names_the_span_asked_for_within_what_the_station_holds(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(config("2.1")) as (_station, csms):
        await trio.sleep(3 * 3600)  # the station has logged since 12:00
        answer = await csms.call(
            STATION_ID,
            "GetLog",
            get_log(
                4,
                log={
                    "oldestTimestamp": "2026-01-15T10:00:00Z",
                    "latestTimestamp": "2026-01-15T14:30:00Z",
                },
            ),
        )
        assert (
            answer["filename"]
            == f"{STATION_ID}-DiagnosticsLog-20260115T120000Z-20260115T143000Z.log"
        )


async def test_a_span_before_the_station_started_holds_no_log(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(config("2.1")) as (_station, csms):
        since = csms.station(STATION_ID).messages_received
        answer = await csms.call(
            STATION_ID,
            "GetLog",
            get_log(7, log={"latestTimestamp": "2026-01-15T11:00:00Z"}),
        )
        assert answer == {"status": "Accepted"}  # no filename: no logging information
        with trio.move_on_after(120):
            await csms.wait_for_message(STATION_ID, "LogStatusNotification", since=since)
            pytest.fail("nothing is uploaded when there is no log")


async def test_reversed_timestamps_and_a_data_collector_log_are_rejected(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(config("2.1")) as (_station, csms):
        reversed_span = get_log(
            8,
            log={
                "oldestTimestamp": "2026-01-15T13:00:00Z",
                "latestTimestamp": "2026-01-15T12:00:00Z",
            },
        )
        answer = await csms.call(STATION_ID, "GetLog", reversed_span)
        assert (
            answer["status"] == "Rejected" and answer["statusInfo"]["reasonCode"] == "InvalidValue"
        )
        answer = await csms.call(STATION_ID, "GetLog", get_log(9, log_type="DataCollectorLog"))
        assert answer["status"] == "Rejected" and answer["statusInfo"]["additionalInfo"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_triggered_status_is_uploading_during_an_upload_and_idle_otherwise(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(config(version, upload_s=600), ocpp_version=version) as (
        _station,
        csms,
    ):
        trigger = {"requestedMessage": "LogStatusNotification"}
        since = csms.station(STATION_ID).messages_received
        assert (await csms.call(STATION_ID, "TriggerMessage", trigger))["status"] == "Accepted"
        ((_, idle),) = await statuses(csms, since, 1)
        assert idle == {"status": "Idle"}
        await csms.call(STATION_ID, "GetLog", get_log(11))
        await trio.sleep(60)
        since = csms.station(STATION_ID).messages_received
        await csms.call(STATION_ID, "TriggerMessage", trigger)
        ((_, busy),) = await statuses(csms, since, 1)
        assert busy == {"status": "Uploading", "requestId": 11}


async def test_a_reboot_ends_the_upload(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(config("2.1", upload_s=600)) as (station, csms):
        since = csms.station(STATION_ID).messages_received
        await csms.call(STATION_ID, "GetLog", get_log(12))
        await statuses(csms, since, 1)
        station.reboot("RemoteReset")
        with trio.fail_after(3600):
            await csms.wait_for_message(STATION_ID, "BootNotification", since=since)
            await station.wait_synced()
        await trio.sleep(1200)
        assert [p["status"] for p in _all_statuses(csms)] == ["Uploading"]


@pytest.mark.parametrize(("share", "asked"), [(1.0, True), (0.0, False)])
async def test_the_embedded_csms_collects_logs_after_the_time_of_day(
    autojump_clock: MockClock, share: float, asked: bool
) -> None:
    collection = LogCollection(12 * 3600 + 30 * 60, share, "SecurityLog", "https://logs.example")
    csms_config = CsmsConfig(heartbeat_interval_s=300, reactions=collection.reactions())
    async with station_on_memory_link(config("2.1", upload_s=20), csms_config) as (_s, csms):
        with trio.move_on_after(3600) as waited:
            get_log = await csms.wait_for_message(
                STATION_ID, "LogStatusNotification", lambda p: p["status"] == "Uploaded"
            )
        if not asked:
            assert waited.cancelled_caught and collection.requests_sent == 0
            return
        # Asked at the first Heartbeat after 12:30 (the run starts at 12:00), not before.
        assert 30 * 60 <= trio.current_time() <= 40 * 60
        assert get_log["requestId"] == 1
        assert collection.requests_sent == 1
        await wait_all_tasks_blocked()  # the CSMS's reaction to the last status has run
        assert collection.statuses == {"Uploading": 1, "Uploaded": 1}
