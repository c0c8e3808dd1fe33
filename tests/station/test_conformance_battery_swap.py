"""Conformance rows of block S (battery swapping, OCPP 2.1 only): RequestBatterySwap (S02) in
each state that changes its answer."""

from __future__ import annotations

from typing import Any

import pytest
from trio.testing import MockClock

from fleetsim.simulator.ocpp import OcppVersion
from tests.helpers import STATION_ID
from tests.station.conformance import ONLY_21, Expect, Outcome, Row, cases, request, run_row
from tests.station.steps import REMOTE_DRIVERS

DRIVER = {"idToken": "SWAPPER-1", "type": "ISO14443"}
SWAP = {"requestId": 77, "idToken": DRIVER}


def swap_station(**fields: Any) -> dict[str, Any]:
    """Four 20 kW slots, three of them holding packs at 90 % unless `fields` say otherwise."""
    settings = {"slots": 4, "packs": 3, "pack_soc": 0.9, **fields}
    return {**REMOTE_DRIVERS, "stations": {"count": 1, "battery_swap": settings}}


def battery_swap(event_type: str, evse_id: int | None = None) -> Expect:
    def matches(payload: Any) -> bool:
        return bool(
            payload["eventType"] == event_type
            and payload["requestId"] == 77
            and payload["idToken"] == DRIVER
            and (evse_id is None or payload["batteryData"][0]["evseId"] == evse_id)
        )

    return Expect("BatterySwap", f"{event_type} of request 77", matches)


def slot_event(event_type: str, trigger_reason: str, evse_id: int | None = None) -> Expect:
    def matches(payload: Any) -> bool:
        return bool(
            payload["eventType"] == event_type
            and payload["triggerReason"] == trigger_reason
            and (evse_id is None or payload["evse"]["id"] == evse_id)
        )

    return Expect("TransactionEvent", f"{event_type} {trigger_reason} slot {evse_id}", matches)


async def cartridge_soc(outcome: Outcome, evse_id: int) -> str:
    answer = await outcome.csms.call(
        STATION_ID,
        "GetVariables",
        {
            "getVariableData": [
                {
                    "component": {"name": "BatteryCartridge", "evse": {"id": evse_id}},
                    "variable": {"name": "SoC"},
                }
            ]
        },
    )
    return str(answer["getVariableResult"][0]["attributeValue"])


async def depleted_pack_in_slot_4_and_one_slot_empty(outcome: Outcome) -> None:
    assert 20.0 <= float(await cartridge_soc(outcome, 4)) < 21.0
    emptied = [evse_id for evse_id in (1, 2, 3) if await cartridge_soc(outcome, evse_id) == ""]
    assert len(emptied) == 1


ROWS: list[Row] = [
    Row(
        "RequestBatterySwap",
        "a charged pack and an empty slot",
        request(SWAP),
        "Accepted",
        follow_ups=(
            slot_event("Started", "CablePluggedIn", 4),
            battery_swap("BatteryIn", 4),
            slot_event("Ended", "EVDeparted"),
            battery_swap("BatteryOut"),
        ),
        then=depleted_pack_in_slot_4_and_one_slot_empty,
        versions=ONLY_21,
        scenario=swap_station(),
    ),
    Row(
        "RequestBatterySwap",
        "no pack charged enough to give out",
        request(SWAP),
        "Rejected",
        reason="NoBatteryAvailable",
        versions=ONLY_21,
        scenario=swap_station(pack_soc=0.5),
    ),
    Row(
        "RequestBatterySwap",
        "no empty slot for the depleted pack",
        request(SWAP),
        "Rejected",
        reason="NoBatteryAvailable",
        versions=ONLY_21,
        scenario=swap_station(packs=4, pack_soc=0.95),
    ),
    Row(
        "RequestBatterySwap",
        "a charging station without slots",
        request(SWAP),
        "Rejected",
        reason="UnsupportedRequest",
        versions=ONLY_21,
    ),
]


@pytest.mark.parametrize(("row", "version"), cases(ROWS))
async def test_action_in_state(autojump_clock: MockClock, row: Row, version: OcppVersion) -> None:
    await run_row(row, version)
