"""L01.FR.07: while a firmware installation waits for transactions to end, the station takes
its free EVSEs out of service, so no new transaction starts on firmware about to be replaced,
and brings them back once the new firmware is up (or at once when the update fails)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import EvseConfig, StationConfig
from fleetsim.simulator.station.config import FirmwareConfig
from tests.helpers import STATION_ID, T0, station_on_memory_link
from tests.station.steps import (
    OTHER_TOKEN,
    REMOTE_DRIVERS,
    arrives,
    connector_status,
    messages_now,
    running_transaction,
    stopped_transaction,
)

VERSIONS = pytest.mark.parametrize("version", ["2.1", "2.0.1"])
TWO_EVSES = (EvseConfig(), EvseConfig())


def update_request() -> dict[str, Any]:
    now = T0.isoformat().replace("+00:00", "Z")
    return {
        "requestId": 3,
        "firmware": {
            "location": "https://fw.example.com/fleetsim-0.3.bin",
            "retrieveDateTime": now,
        },
    }


def firmware_status(status: str) -> Any:
    return lambda p: p["status"] == status


def statuses_of(csms: Csms, evse_id: int, since: int) -> list[str]:
    return [
        message.payload["connectorStatus"]
        for message in csms.station(STATION_ID).messages_since(since)
        if message.action == "StatusNotification" and message.payload["evseId"] == evse_id
    ]


async def remote_start(csms: Csms, evse_id: int) -> Mapping[str, Any]:
    return await csms.call(
        STATION_ID,
        "RequestStartTransaction",
        {"remoteStartId": 9, "idToken": OTHER_TOKEN, "evseId": evse_id},
    )


@VERSIONS
async def test_free_evses_are_unavailable_while_the_installation_waits_and_back_after_it(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = StationConfig(ocpp_version=version, evses=TWO_EVSES)
    async with station_on_memory_link(config, scenario=REMOTE_DRIVERS, ocpp_version=version) as (
        station,
        csms,
    ):
        transaction_id = await running_transaction(csms, evse_id=1, charging=True)
        since = messages_now(csms)
        answer = await csms.call(STATION_ID, "UpdateFirmware", update_request())
        assert answer["status"] == "Accepted"
        await arrives(
            csms, "FirmwareStatusNotification", firmware_status("Downloaded"), since=since
        )
        # The idle EVSE goes out of service; the busy one charges on.
        await arrives(csms, "StatusNotification", connector_status(2, "Unavailable"), since=since)
        assert statuses_of(csms, 1, since) == []
        # A driver who comes now is turned away from it.
        assert (await remote_start(csms, 2))["status"] == "Rejected"
        assert not [
            m
            for m in csms.station(STATION_ID).messages_since(since)
            if m.action == "FirmwareStatusNotification" and m.payload["status"] == "Installing"
        ]
        # The running transaction ends: its EVSE too stays out of service until the install.
        before_stop = messages_now(csms)
        await stopped_transaction(csms, transaction_id)
        await arrives(
            csms, "FirmwareStatusNotification", firmware_status("Installing"), since=before_stop
        )
        assert not station.evses[0].operative and not station.evses[1].operative
        assert (await remote_start(csms, 1))["status"] == "Rejected"
        boot = await arrives(csms, "BootNotification", since=before_stop)
        assert boot["reason"] == "FirmwareUpdate"
        after_boot = messages_now(csms) - 1
        await arrives(
            csms, "FirmwareStatusNotification", firmware_status("Installed"), since=before_stop
        )
        # Up on the new firmware: both EVSEs are back in service after the boot (the first
        # driver's EV is still plugged in).
        assert statuses_of(csms, 1, after_boot) == ["Occupied"]
        assert statuses_of(csms, 2, after_boot) == ["Available"]
        assert station.evses[0].operative and station.evses[1].operative
        assert (await remote_start(csms, 2))["status"] == "Accepted"


@VERSIONS
async def test_a_failed_installation_puts_the_held_evses_back_in_service(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = StationConfig(
        ocpp_version=version, evses=TWO_EVSES, firmware=FirmwareConfig(install_failure_share=1.0)
    )
    async with station_on_memory_link(config, scenario=REMOTE_DRIVERS, ocpp_version=version) as (
        station,
        csms,
    ):
        transaction_id = await running_transaction(csms, evse_id=1, charging=True)
        since = messages_now(csms)
        assert (await csms.call(STATION_ID, "UpdateFirmware", update_request()))[
            "status"
        ] == "Accepted"
        await arrives(csms, "StatusNotification", connector_status(2, "Unavailable"), since=since)
        await stopped_transaction(csms, transaction_id)
        await arrives(
            csms, "FirmwareStatusNotification", firmware_status("InstallationFailed"), since=since
        )
        await arrives(csms, "StatusNotification", connector_status(2, "Available"), since=since)
        assert station.evses[0].operative and station.evses[1].operative


@VERSIONS
async def test_an_evse_the_csms_took_out_of_service_stays_out_after_the_update(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = StationConfig(ocpp_version=version, evses=TWO_EVSES)
    async with station_on_memory_link(config, scenario=REMOTE_DRIVERS, ocpp_version=version) as (
        station,
        csms,
    ):
        change = {"operationalStatus": "Inoperative", "evse": {"id": 2}}
        assert (await csms.call(STATION_ID, "ChangeAvailability", change))["status"] == "Accepted"
        transaction_id = await running_transaction(csms, evse_id=1, charging=True)
        since = messages_now(csms)
        assert (await csms.call(STATION_ID, "UpdateFirmware", update_request()))[
            "status"
        ] == "Accepted"
        await arrives(
            csms, "FirmwareStatusNotification", firmware_status("Downloaded"), since=since
        )
        await stopped_transaction(csms, transaction_id)
        await arrives(csms, "FirmwareStatusNotification", firmware_status("Installed"), since=since)
        assert station.evses[0].operative
        assert not station.evses[1].operative
