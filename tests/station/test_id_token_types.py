"""Drivers' IdToken types as the CSMS sees them: NoAuthorization drivers charge without an
Authorize and, having nothing to present, end by unplugging; 2.1's types reach a 2.1 CSMS."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import StationConfig
from tests.helpers import STATION_ID, busy_site, station_on_memory_link

VERSIONS: tuple[OcppVersion, ...] = ("2.1", "2.0.1")


def drivers(types: dict[str, float], *, token_first: float, stop_share: float) -> dict[str, Any]:
    scenario = busy_site(
        dwell_s=1800, soc_start=0.2, target_soc=0.3, id_token_first_share=token_first
    )
    scenario["ev_fleet"]["id_token_types"] = types
    scenario["ev_fleet"]["stop_with_id_token_share"] = stop_share
    return scenario


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("token_first", [0.0, 1.0])
async def test_a_no_authorization_driver_charges_without_an_authorize_and_unplugs(
    autojump_clock: MockClock, version: OcppVersion, token_first: float
) -> None:
    scenario = drivers({"NoAuthorization": 1.0}, token_first=token_first, stop_share=1.0)
    async with station_on_memory_link(
        StationConfig(ocpp_version=version), scenario=scenario, ocpp_version=version
    ) as (_station, csms):
        with trio.fail_after(4 * 3600):
            ended = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended"
            )
        transaction_id = ended["transactionInfo"]["transactionId"]
        received = csms.station(STATION_ID).messages
    events = [
        m.payload
        for m in received
        if m.action == "TransactionEvent"
        and m.payload["transactionInfo"]["transactionId"] == transaction_id
    ]
    assert "Authorize" not in [m.action for m in received]
    [authorized] = [e for e in events if "idToken" in e]
    assert authorized["idToken"] == {"idToken": "", "type": "NoAuthorization"}
    assert authorized["triggerReason"] == "Authorized"
    assert any(e["transactionInfo"].get("chargingState") == "Charging" for e in events)
    # Nothing to present at the reader: the EV leaving ends it, whatever the scenario's share.
    assert (ended["triggerReason"], ended["transactionInfo"]["stoppedReason"]) == (
        "EVCommunicationLost",
        "EVDisconnected",
    )


async def test_2_1_token_types_reach_a_2_1_csms_in_their_format(
    autojump_clock: MockClock,
) -> None:
    scenario = drivers({"EVCCID": 1.0, "VIN": 1.0}, token_first=1.0, stop_share=0.0)
    async with station_on_memory_link(scenario=scenario) as (_station, csms):
        seen: dict[str, str] = {}
        with trio.fail_after(24 * 3600):
            while len(seen) < 2:
                authorize = await csms.wait_for_message(
                    STATION_ID,
                    "Authorize",
                    lambda p: p["idToken"]["type"] not in seen,
                )
                seen[authorize["idToken"]["type"]] = authorize["idToken"]["idToken"]
    assert len(seen["EVCCID"]) == 12 and seen["EVCCID"].startswith("024653")
    assert len(seen["VIN"]) == 17
