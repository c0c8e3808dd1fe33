"""Conformance rows of block R, DER control (R04): SetDERControl, GetDERControl and
ClearDERControl in the states that change their answers.  OCPP 2.1 only: 2.0.1 has no DER
control messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms
from fleetsim.simulator.ocpp import OcppVersion
from tests.helpers import STATION_ID
from tests.station.conformance import (
    AN_HOUR_AGO,
    ONLY_21,
    Expect,
    Outcome,
    Row,
    StateCheck,
    after,
    cases,
    request,
    run_row,
)


def freq_watt(control_id: str, priority: int, *, is_default: bool = True) -> dict[str, Any]:
    return {
        "isDefault": is_default,
        "controlId": control_id,
        "controlType": "FreqWatt",
        "curve": {
            "priority": priority,
            "yUnit": "PctMaxW",
            "curveData": [{"x": 49.5, "y": 0}, {"x": 50.0, "y": 100}],
        },
    }


async def stored_curve(csms: Csms) -> None:
    """A default FreqWatt curve `fw-1` of priority 5."""
    answer = await csms.call(STATION_ID, "SetDERControl", freq_watt("fw-1", 5))
    assert answer["status"] == "Accepted"


async def reported(csms: Csms) -> dict[str, Mapping[str, Any]] | None:
    """Every stored control by id, read back with GetDERControl; None when NotFound."""
    since = csms.station(STATION_ID).messages_received
    answer = await csms.call(STATION_ID, "GetDERControl", {"requestId": 77})
    if answer["status"] == "NotFound":
        return None
    assert answer["status"] == "Accepted"
    found: dict[str, Mapping[str, Any]] = {}
    with trio.fail_after(60):
        while True:
            part = await csms.wait_for_message(
                STATION_ID, "ReportDERControl", lambda p: p["requestId"] == 77, since=since
            )
            since = csms.station(STATION_ID).messages_received
            for items in part.values():
                if isinstance(items, list):
                    found.update({item["id"]: item for item in items})
            if not part.get("tbc"):
                return found


def stored(**superseded: bool) -> StateCheck:
    """Exactly these controls are stored, superseded or not."""

    async def check(outcome: Outcome) -> None:
        found = await reported(outcome.csms)
        assert found is not None
        assert {i: e["isSuperseded"] for i, e in found.items()} == superseded

    return check


async def nothing_stored(outcome: Outcome) -> None:
    assert await reported(outcome.csms) is None


def report_with(*control_ids: str) -> Expect:
    def matches(payload: Mapping[str, Any]) -> bool:
        ids = {item["id"] for v in payload.values() if isinstance(v, list) for item in v}
        return payload["requestId"] == 5 and ids == set(control_ids)

    return Expect("ReportDERControl", f"reporting {', '.join(control_ids)}", matches)


ROWS: list[Row] = [
    # SetDERControl (R04)
    Row(
        "SetDERControl",
        "no controls",
        request(freq_watt("fw-2", 1)),
        "Accepted",
        then=stored(**{"fw-2": False}),
        versions=ONLY_21,
    ),
    Row(
        "SetDERControl",
        "a lower priority of the type stored",
        after(stored_curve, freq_watt("fw-2", 1)),
        "Accepted",
        answer={"supersededIds": ["fw-1"]},
        then=stored(**{"fw-1": True, "fw-2": False}),
        versions=ONLY_21,
    ),
    Row(
        "SetDERControl",
        "controlId in use by another type",
        after(
            stored_curve,
            {
                "isDefault": True,
                "controlId": "fw-1",
                "controlType": "FixedVar",
                "fixedVar": {"priority": 1, "setpoint": 10, "unit": "PctMaxVar"},
            },
        ),
        "Rejected",
        reason="InvalidValue",
        then=stored(**{"fw-1": False}),
        versions=ONLY_21,
    ),
    Row(
        "SetDERControl",
        "setting missing",
        request({"isDefault": True, "controlId": "x", "controlType": "FreqDroop"}),
        "Rejected",
        reason="MissingParam",
        then=nothing_stored,
        versions=ONLY_21,
    ),
    Row(
        "SetDERControl",
        "scheduled, over already",
        request(
            {
                **freq_watt("fw-3", 1, is_default=False),
                "curve": {
                    **freq_watt("fw-3", 1)["curve"],
                    "startTime": AN_HOUR_AGO,
                    "duration": 600,
                },
            }
        ),
        "Rejected",
        reason="InvalidValue",
        then=nothing_stored,
        versions=ONLY_21,
    ),
    # GetDERControl (R04)
    Row(
        "GetDERControl",
        "no controls",
        request({"requestId": 5}),
        "NotFound",
        never=("ReportDERControl",),
        versions=ONLY_21,
    ),
    Row(
        "GetDERControl",
        "a control stored",
        after(stored_curve, {"requestId": 5, "controlType": "FreqWatt"}),
        "Accepted",
        follow_ups=(report_with("fw-1"),),
        versions=ONLY_21,
    ),
    Row(
        "GetDERControl",
        "another type stored",
        after(stored_curve, {"requestId": 5, "controlType": "VoltWatt"}),
        "NotFound",
        never=("ReportDERControl",),
        versions=ONLY_21,
    ),
    # ClearDERControl (R04)
    Row(
        "ClearDERControl",
        "no controls",
        request({"isDefault": True, "controlType": "FreqWatt"}),
        "NotFound",
        versions=ONLY_21,
    ),
    Row(
        "ClearDERControl",
        "a control stored",
        after(stored_curve, {"isDefault": True, "controlId": "fw-1"}),
        "Accepted",
        then=nothing_stored,
        versions=ONLY_21,
    ),
    Row(
        "ClearDERControl",
        "a default stored, scheduled named",
        after(stored_curve, {"isDefault": False, "controlType": "FreqWatt"}),
        "NotFound",
        then=stored(**{"fw-1": False}),
        versions=ONLY_21,
    ),
]


@pytest.mark.parametrize(("row", "version"), cases(ROWS))
async def test_action_in_state(autojump_clock: MockClock, row: Row, version: OcppVersion) -> None:
    await run_row(row, version)
