"""Conformance rows of block K's OCPP 2.1 actions: UpdateDynamicSchedule (K28) and
UsePriorityCharging (K21)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import Station
from tests.helpers import STATION_ID
from tests.station.conformance import ONLY_21, Outcome, Row, cases, run_row
from tests.station.steps import running_transaction

#: The simulated day's start: an Absolute schedule needs a startSchedule (K01).
MIDNIGHT = "2026-01-15T00:00:00Z"


def _profile(profile_id: int, purpose: str, kind: str, limit_w: float) -> dict[str, Any]:
    return {
        "id": profile_id,
        "stackLevel": 0,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_w}],
                **({"startSchedule": MIDNIGHT} if kind == "Absolute" else {}),
            }
        ],
    }


async def _set(csms: Csms, profile: dict[str, Any]) -> None:
    answer = await csms.call(
        STATION_ID, "SetChargingProfile", {"evseId": 1, "chargingProfile": profile}
    )
    assert answer["status"] == "Accepted", answer


def _update_after(kind: str | None) -> Any:
    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        if kind is not None:
            await _set(csms, _profile(51, "TxDefaultProfile", kind, 6_000))
        return {"chargingProfileId": 51, "scheduleUpdate": {"limit": 2_000}}

    return prepare


async def _reported_limit(csms: Csms) -> float:
    since = csms.station(STATION_ID).messages_received
    answer = await csms.call(
        STATION_ID,
        "GetChargingProfiles",
        {"requestId": 8, "chargingProfile": {"chargingProfileId": [51]}},
    )
    assert answer["status"] == "Accepted"
    with trio.fail_after(10):
        report = await csms.wait_for_message(STATION_ID, "ReportChargingProfiles", since=since)
    period = report["chargingProfile"][0]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
    return float(period["limit"])


def _limit_is(limit_w: float) -> Any:
    async def check(outcome: Outcome) -> None:
        assert await _reported_limit(outcome.csms) == limit_w

    return check


def _priority_request(with_profile: bool, known: bool = True) -> Any:
    async def prepare(station: Station, csms: Csms) -> dict[str, Any]:
        transaction_id = await running_transaction(csms, charging=True)
        await _set(csms, _profile(52, "TxDefaultProfile", "Relative", 3_000))
        if with_profile:
            await _set(csms, _profile(53, "PriorityCharging", "Absolute", 9_000))
        return {"transactionId": transaction_id if known else "not-here", "activate": True}

    return prepare


def _power_is(power_w: float) -> Any:
    async def check(outcome: Outcome) -> None:
        assert outcome.station.evses[0].power_w == pytest.approx(power_w)

    return check


ROWS: list[Row] = [
    Row(
        "UpdateDynamicSchedule",
        "a Dynamic profile with that id",
        _update_after("Dynamic"),
        "Accepted",
        then=_limit_is(2_000),
        versions=ONLY_21,
    ),
    Row(
        "UpdateDynamicSchedule",
        "no profile with that id",
        _update_after(None),
        "Rejected",
        reason="InvalidProfile",
        versions=ONLY_21,
    ),
    Row(
        "UpdateDynamicSchedule",
        "the profile is not Dynamic",
        _update_after("Absolute"),
        "Rejected",
        reason="InvalidProfile",
        then=_limit_is(6_000),
        versions=ONLY_21,
    ),
    Row(
        "UsePriorityCharging",
        "the transaction's EVSE has a PriorityCharging profile",
        _priority_request(with_profile=True),
        "Accepted",
        then=_power_is(9_000),
        versions=ONLY_21,
    ),
    Row(
        "UsePriorityCharging",
        "no PriorityCharging profile for the EVSE",
        _priority_request(with_profile=False),
        "NoProfile",
        reason="NoProfile",
        then=_power_is(3_000),
        versions=ONLY_21,
    ),
    Row(
        "UsePriorityCharging",
        "no such transaction",
        _priority_request(with_profile=True, known=False),
        "Rejected",
        reason="TxNotFound",
        then=_power_is(3_000),
        versions=ONLY_21,
    ),
]


@pytest.mark.parametrize(("row", "version"), cases(ROWS))
async def test_action_in_state(autojump_clock: MockClock, row: Row, version: OcppVersion) -> None:
    await run_row(row, version)
