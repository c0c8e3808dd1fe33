"""Availability (G01, G03, G04): ChangeAvailability of a connector, an EVSE or the station while
transactions run, what a reboot keeps, and what the station reports after a boot.

The CSMS's view is what counts: the StatusNotification (or NotifyEvent) reports that arrive,
checked against the station's state that follows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import EvseConfig, StationConfig
from tests.helpers import STATION_ID, busy_site, station_on_memory_link

VERSIONS = pytest.mark.parametrize("version", ["2.1", "2.0.1"])
#: One EV after another, each staying an hour and charging all the while.
HOURLY = busy_site(dwell_s=3600, soc_start=0.1, target_soc=0.9, arrivals_per_evse_per_day=96)
TWO_CONNECTORS = EvseConfig(connector_types=("cType2", "cCCS2"))

Payload = Mapping[str, Any]


def messages_now(csms: Csms) -> int:
    return csms.station(STATION_ID).messages_received


def is_status(evse_id: int, connector_id: int, status: str) -> Callable[[Payload], bool]:
    def matches(payload: Payload) -> bool:
        return (payload["evseId"], payload["connectorId"], payload["connectorStatus"]) == (
            evse_id,
            connector_id,
            status,
        )

    return matches


async def change(csms: Csms, status: str, evse_id: int = 0, connector_id: int | None = None) -> str:
    payload: dict[str, Any] = {"operationalStatus": status}
    if evse_id:
        payload["evse"] = {"id": evse_id}
        if connector_id is not None:
            payload["evse"]["connectorId"] = connector_id
    answer = await csms.call(STATION_ID, "ChangeAvailability", payload)
    return str(answer["status"])


async def started_transaction(csms: Csms) -> str:
    with trio.fail_after(4 * 3600):
        started = await csms.wait_for_message(
            STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Started"
        )
    return str(started["transactionInfo"]["transactionId"])


async def wait_ended(csms: Csms, transaction_id: str) -> int:
    """Wait for the Ended event of `transaction_id`; the message count before it."""
    with trio.fail_after(2 * 3600):
        await csms.wait_for_message(
            STATION_ID,
            "TransactionEvent",
            lambda p: (
                p["eventType"] == "Ended"
                and p["transactionInfo"]["transactionId"] == transaction_id
            ),
        )
    messages = list(csms.station(STATION_ID).messages_since(0))
    return next(
        i
        for i, message in enumerate(messages)
        if message.action == "TransactionEvent"
        and message.payload["eventType"] == "Ended"
        and message.payload["transactionInfo"]["transactionId"] == transaction_id
    )


def statuses_since(csms: Csms, since: int) -> list[tuple[int, int, str]]:
    return [
        (m.payload["evseId"], m.payload["connectorId"], m.payload["connectorStatus"])
        for m in csms.station(STATION_ID).messages_since(since)
        if m.action == "StatusNotification"
    ]


# -- G03: a connector of an EVSE with a transaction ----------------------------------------------


@VERSIONS
@pytest.mark.parametrize(
    ("connector_id", "after"),
    [(2, {1: "Available", 2: "Unavailable"}), (1, {1: "Unavailable", 2: "Available"})],
    ids=["the-other-connector", "the-connector-in-use"],
)
async def test_a_connector_of_a_busy_evse_is_scheduled_and_changes_when_the_transaction_ends(
    autojump_clock: MockClock, version: OcppVersion, connector_id: int, after: dict[int, str]
) -> None:
    config = StationConfig(ocpp_version=version, evses=(TWO_CONNECTORS,))
    async with station_on_memory_link(config, scenario=HOURLY, ocpp_version=version) as (
        station,
        csms,
    ):
        transaction_id = await started_transaction(csms)
        evse = station.evses[0]
        assert evse.plugged_connector == 1
        assert await change(csms, "Inoperative", 1, connector_id) == "Scheduled"
        # Nothing changes yet, and the EVSE itself is not what was scheduled.
        assert evse.operative and evse.scheduled_operative is None
        target = evse.connectors[connector_id - 1]
        assert target.operative and target.scheduled_operative is False

        ended_at = await wait_ended(csms, transaction_id)
        with trio.fail_after(60):
            # Connector 1 is what changes either way (the other one, already reported
            # Unavailable while connector 1 was in use, stays so and needs no new report).
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", is_status(1, 1, after[1]), since=ended_at
            )
            await trio.sleep(5)  # and whatever else the end of the transaction changed
        assert evse.operative
        assert [c.operative for c in evse.connectors] == [c != connector_id for c in (1, 2)]
        assert all(c.scheduled_operative is None for c in evse.connectors)
        reported = csms.station(STATION_ID).connectors
        assert {c: reported[(1, c)] for c in (1, 2)} == after
        # The next EV takes the connector that is left.
        since = messages_now(csms)
        with trio.fail_after(4 * 3600):
            await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Started", since=since
            )
        assert evse.plugged_connector == 3 - connector_id


@VERSIONS
async def test_operative_replaces_a_scheduled_inoperative(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = StationConfig(ocpp_version=version, evses=(TWO_CONNECTORS,))
    async with station_on_memory_link(config, scenario=HOURLY, ocpp_version=version) as (
        station,
        csms,
    ):
        transaction_id = await started_transaction(csms)
        assert await change(csms, "Inoperative", 1, 1) == "Scheduled"
        assert await change(csms, "Inoperative", 1) == "Scheduled"
        assert await change(csms, "Operative", 1, 1) == "Accepted"
        assert await change(csms, "Operative", 1) == "Accepted"
        ended_at = await wait_ended(csms, transaction_id)
        with trio.fail_after(60):
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", is_status(1, 1, "Available"), since=ended_at
            )
        evse = station.evses[0]
        assert evse.operative and all(c.operative for c in evse.connectors)
        assert "Unavailable" not in {status for *_, status in statuses_since(csms, ended_at)}


# -- G04: the whole station ----------------------------------------------------------------------


@VERSIONS
async def test_the_station_goes_out_of_service_as_its_transactions_end_and_comes_back_as_it_was(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = StationConfig(ocpp_version=version, evses=(EvseConfig(), EvseConfig()))
    async with station_on_memory_link(config, scenario=HOURLY, ocpp_version=version) as (
        station,
        csms,
    ):
        # EVSE 2 is out of service on its own; the EVs all go to EVSE 1.
        assert await change(csms, "Inoperative", 2) == "Accepted"
        transaction_id = await started_transaction(csms)
        since = messages_now(csms)
        assert await change(csms, "Inoperative") == "Scheduled"
        ended_at = await wait_ended(csms, transaction_id)
        # Until then EVSE 1 kept its EV and its transaction, and no new one started.
        between = [
            m.payload
            for m in csms.station(STATION_ID).messages_since(since)
            if m.action == "TransactionEvent"
        ][:-1]
        assert all(p["eventType"] == "Updated" for p in between)
        with trio.fail_after(60):
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", is_status(1, 1, "Unavailable"), since=ended_at
            )
        assert not station.operative
        assert station.evses[0].operative  # the EVSE's own state is untouched
        since = messages_now(csms)
        await trio.sleep(3 * 3600)  # hours of arrivals: none takes the station
        assert not any(
            m.action == "TransactionEvent" for m in csms.station(STATION_ID).messages_since(since)
        )

        assert await change(csms, "Operative") == "Accepted"
        with trio.fail_after(60):
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", is_status(1, 1, "Available"), since=since
            )
        reported = csms.station(STATION_ID).connectors
        assert reported[(1, 1)] == "Available"
        assert reported[(2, 1)] == "Unavailable"  # EVSE 2 is still out on its own


# -- G03/G04 across a reboot, and G01 after every boot --------------------------------------------


async def reset_and_wait_booted(csms: Csms, reset_type: str = "Immediate") -> int:
    """Reset; the message count just before the new BootNotification."""
    since = messages_now(csms)
    assert (await csms.call(STATION_ID, "Reset", {"type": reset_type}))["status"] == "Accepted"
    with trio.fail_after(60):
        await csms.wait_for_message(
            STATION_ID, "BootNotification", lambda p: p["reason"] == "RemoteReset", since=since
        )
    messages = list(csms.station(STATION_ID).messages_since(since))
    booted_at = since + [m.action for m in messages].index("BootNotification")
    await trio.sleep(5)  # the reports after the boot go out
    return booted_at


@VERSIONS
async def test_availability_survives_a_reset_at_every_level(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = StationConfig(ocpp_version=version, evses=(TWO_CONNECTORS, EvseConfig()))
    async with station_on_memory_link(config, ocpp_version=version) as (station, csms):
        assert await change(csms, "Inoperative", 1, 2) == "Accepted"
        assert await change(csms, "Inoperative", 2) == "Accepted"
        booted_at = await reset_and_wait_booted(csms)
        assert sorted(statuses_since(csms, booted_at)) == [
            (1, 1, "Available"),
            (1, 2, "Unavailable"),
            (2, 1, "Unavailable"),
        ]

        assert await change(csms, "Inoperative") == "Accepted"
        booted_at = await reset_and_wait_booted(csms)
        assert sorted(statuses_since(csms, booted_at)) == [
            (1, 1, "Unavailable"),
            (1, 2, "Unavailable"),
            (2, 1, "Unavailable"),
        ]
        assert not station.operative

        since = messages_now(csms)
        assert await change(csms, "Operative") == "Accepted"
        with trio.fail_after(60):
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", is_status(1, 1, "Available"), since=since
            )
        await trio.sleep(5)
        assert statuses_since(csms, since) == [(1, 1, "Available")]


async def test_a_scheduled_change_outlives_a_reset_that_resumes_the_transaction(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=HOURLY) as (station, csms):
        transaction_id = await started_transaction(csms)
        assert await change(csms, "Inoperative", 1) == "Scheduled"
        await reset_and_wait_booted(csms, "ImmediateAndResume")
        assert station.evses[0].transaction is not None
        assert station.evses[0].scheduled_operative is False
        ended_at = await wait_ended(csms, transaction_id)
        with trio.fail_after(60):
            await csms.wait_for_message(
                STATION_ID, "StatusNotification", is_status(1, 1, "Unavailable"), since=ended_at
            )
        assert not station.evses[0].operative


def connector_reports_since(csms: Csms, since: int) -> list[tuple[str, int, int, str]]:
    """(action, evse, connector, status) of every connector report since `since`."""
    found = []
    for message in csms.station(STATION_ID).messages_since(since):
        payload = message.payload
        if message.action == "StatusNotification":
            found.append(
                (
                    message.action,
                    payload["evseId"],
                    payload["connectorId"],
                    payload["connectorStatus"],
                )
            )
        elif message.action == "NotifyEvent":
            for event in payload["eventData"]:
                evse = event["component"].get("evse", {})
                if event["variable"]["name"] == "AvailabilityState" and "connectorId" in evse:
                    found.append(
                        (message.action, evse["id"], evse["connectorId"], event["actualValue"])
                    )
    return found


@VERSIONS
@pytest.mark.parametrize("report", ["status_notification", "notify_event"])
async def test_every_connector_is_reported_after_a_reset_and_none_after_a_reconnect(
    autojump_clock: MockClock, version: OcppVersion, report: str
) -> None:
    config = StationConfig(
        ocpp_version=version,
        evses=(TWO_CONNECTORS, EvseConfig()),
        connector_status_report=report,
        retry_backoff_wait_minimum_s=30,
        retry_backoff_random_range_s=0,
    )
    action = "StatusNotification" if report == "status_notification" else "NotifyEvent"
    async with station_on_memory_link(config, ocpp_version=version) as (station, csms):
        booted_at = await reset_and_wait_booted(csms)
        assert sorted(connector_reports_since(csms, booted_at)) == [
            (action, 1, 1, "Available"),
            (action, 1, 2, "Available"),
            (action, 2, 1, "Available"),
        ]

        # A dropped connection without a reboot: the CSMS keeps its view, nothing changed.
        since = messages_now(csms)
        await csms.disconnect(STATION_ID)
        with trio.fail_after(120):
            await csms.wait_disconnected(STATION_ID)
            await csms.wait_connected(STATION_ID)
            await trio.sleep(30)
        assert station.synced
        assert connector_reports_since(csms, since) == []
        assert "BootNotification" not in csms.station(STATION_ID).actions()[since:]
