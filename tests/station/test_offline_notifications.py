"""What a station does with the notifications it makes while offline.

A security event is queued and delivered after the station reconnects, with the time it
happened (A04.FR.02).  FirmwareStatusNotification and LogStatusNotification are not queued: OCPP
asks a station to queue transaction-related messages and security events, the rest only with
OCPPCommCtrlr.QueueAllMessages, which this station does not offer; a CSMS that missed a status
asks for the current one with TriggerMessage.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import Station, StationConfig
from fleetsim.simulator.station.blocks import firmware
from fleetsim.simulator.station.config import FirmwareConfig
from fleetsim.simulator.station.core import SecurityEventOccurred
from tests.helpers import STATION_ID, T0, station_on_memory_link
from tests.station.steps import arrives, messages_now

VERSIONS = pytest.mark.parametrize("version", ["2.1", "2.0.1"])
#: How long the station stays offline once its connection drops, in simulated seconds.
OFFLINE_S = 1800.0
CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2Fs\n-----END CERTIFICATE-----\n"


def offline_config(version: OcppVersion, **changes: object) -> StationConfig:
    return dataclasses.replace(
        StationConfig(ocpp_version=version),
        retry_backoff_wait_minimum_s=OFFLINE_S,
        retry_backoff_random_range_s=0.0,
        **changes,  # type: ignore[arg-type]
    )


async def go_offline(station: Station, csms: Csms) -> float:
    """Drop the connection from the CSMS side; the simulated second it dropped."""
    await csms.disconnect(STATION_ID)
    with trio.fail_after(10):
        await csms.wait_disconnected(STATION_ID)
        while station.online:
            await trio.sleep(0.01)
    return station.clock.sim_now()


def sent_since(csms: Csms, action: str, since: int) -> list[dict[str, object]]:
    return [
        dict(message.payload)
        for message in csms.station(STATION_ID).messages_since(since)
        if message.action == action
    ]


def sim_s(timestamp: str) -> float:
    return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() - T0.timestamp()


@VERSIONS
async def test_a_security_event_made_offline_is_delivered_after_reconnecting_but_statuses_not(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = offline_config(version, firmware=FirmwareConfig(invalid_signature_share=1.0))
    async with station_on_memory_link(config, ocpp_version=version) as (station, csms):
        update = {
            "requestId": 4,
            "firmware": {
                "location": "https://fw.example.com/fleetsim-0.4.bin",
                "retrieveDateTime": T0.isoformat().replace("+00:00", "Z"),
                "signature": "MEUCIQC7cGxhY2Vob2xkZXI=",
                "signingCertificate": CERTIFICATE,
            },
        }
        assert (await csms.call(STATION_ID, "UpdateFirmware", update))["status"] == "Accepted"
        await arrives(
            csms, "FirmwareStatusNotification", lambda p: p["status"] == "Downloading", since=0
        )
        since = messages_now(csms)
        dropped_s = await go_offline(station, csms)
        # Offline: downloaded, the signature fails, the update ends.
        with trio.fail_after(OFFLINE_S / 2):
            while firmware_update(station) is not None:
                await trio.sleep(1)
        assert not station.online
        with trio.fail_after(OFFLINE_S):
            event = await csms.wait_for_message(
                STATION_ID, "SecurityEventNotification", since=since
            )
        reconnected_s = station.clock.sim_now()
        assert event["type"] == "InvalidFirmwareSignature"
        # Sent after the reconnect, stamped with when it happened (offline).
        assert reconnected_s - dropped_s >= OFFLINE_S - 1
        assert dropped_s < sim_s(str(event["timestamp"])) < dropped_s + 600
        # The statuses made offline (Downloaded, InvalidSignature) were not queued.
        await trio.sleep(600)
        assert sent_since(csms, "FirmwareStatusNotification", since) == []
        assert len(sent_since(csms, "SecurityEventNotification", since)) == 1


def firmware_update(station: Station) -> object:
    """The firmware update under way on `station`, if any."""
    state = station.peek_block_state(firmware.BLOCK)
    return None if state is None else state.update


@VERSIONS
async def test_security_events_queued_offline_go_out_in_order(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    """Two updates refused offline for their certificate (the second after the first's event):
    both events arrive after the reconnect, oldest first."""
    async with station_on_memory_link(offline_config(version), ocpp_version=version) as (
        station,
        csms,
    ):
        since = messages_now(csms)
        await go_offline(station, csms)
        # The CSMS cannot reach an offline station to refuse it something: raise the events the
        # way block L does.
        for number in (1, 2):
            await station.emit(
                SecurityEventOccurred(
                    "InvalidFirmwareSigningCertificate",
                    station.clock.timestamp(),
                    f"update {number}",
                )
            )
            await trio.sleep(60)
        with trio.fail_after(OFFLINE_S + 600):
            await csms.wait_for_message(
                STATION_ID,
                "SecurityEventNotification",
                lambda p: p["techInfo"] == "update 2",
                since=since,
            )
        events = sent_since(csms, "SecurityEventNotification", since)
    assert [e["techInfo"] for e in events] == ["update 1", "update 2"]
    assert sim_s(str(events[1]["timestamp"])) - sim_s(str(events[0]["timestamp"])) == pytest.approx(
        60
    )


@VERSIONS
async def test_a_log_status_made_offline_is_not_queued(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = offline_config(version, log_upload_s=120.0)
    async with station_on_memory_link(config, ocpp_version=version) as (station, csms):
        request = {
            "logType": "DiagnosticsLog",
            "requestId": 8,
            "log": {"remoteLocation": "https://logs.example.com/upload"},
        }
        assert (await csms.call(STATION_ID, "GetLog", request))["status"] == "Accepted"
        await arrives(csms, "LogStatusNotification", lambda p: p["status"] == "Uploading", since=0)
        since = messages_now(csms)
        await go_offline(station, csms)  # Uploaded happens 120 s later, offline
        with trio.fail_after(OFFLINE_S + 600):
            await csms.wait_connected(STATION_ID)
        await trio.sleep(600)
        assert sent_since(csms, "LogStatusNotification", since) == []
        # The CSMS asks, and hears the upload is over.
        trigger = {"requestedMessage": "LogStatusNotification"}
        assert (await csms.call(STATION_ID, "TriggerMessage", trigger))["status"] == "Accepted"
        status = await arrives(csms, "LogStatusNotification", since=since)
    assert status["status"] == "Idle"
