"""Conformance rows of block K's core: SetChargingProfile (K01), GetCompositeSchedule (K08),
GetChargingProfiles (K09), ClearChargingProfile (K10).

Each Accepted row reads the state back over OCPP: a profile set shows in the composite schedule
and in GetChargingProfiles' report, a cleared one no longer does.
"""

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
    Expect,
    Outcome,
    Row,
    after,
    cases,
    request,
    run_row,
    with_transaction,
)
from tests.station.steps import messages_now


def _profile(
    profile_id: int, purpose: str, limit_w: float, *, stack_level: int = 0, **extra: Any
) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "id": 1,
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_w}],
    }
    kind = extra.pop("kind", "Absolute")
    if kind != "Relative":
        schedule["startSchedule"] = AN_HOUR_AGO
    return {
        "id": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": [schedule],
        **extra,
    }


DEFAULT_7400 = _profile(13, "TxDefaultProfile", 7_400.0)


async def _default_installed(csms: Csms) -> None:
    answer = await csms.call(
        STATION_ID, "SetChargingProfile", {"evseId": 1, "chargingProfile": DEFAULT_7400}
    )
    assert answer["status"] == "Accepted", answer


async def _station_default_at_level_2(csms: Csms) -> None:
    answer = await csms.call(
        STATION_ID,
        "SetChargingProfile",
        {"evseId": 0, "chargingProfile": _profile(20, "TxDefaultProfile", 9_000.0, stack_level=2)},
    )
    assert answer["status"] == "Accepted", answer


async def _composite_limit(csms: Csms, evse_id: int) -> float:
    answer = await csms.call(
        STATION_ID,
        "GetCompositeSchedule",
        {"evseId": evse_id, "duration": 600, "chargingRateUnit": "W"},
    )
    assert answer["status"] == "Accepted", answer
    return float(answer["schedule"]["chargingSchedulePeriod"][0]["limit"])


async def _reported_ids(csms: Csms, criteria: Mapping[str, Any]) -> list[int] | None:
    """The ids GetChargingProfiles reports for `criteria`; None for NoProfiles."""
    since = messages_now(csms)
    answer = await csms.call(
        STATION_ID, "GetChargingProfiles", {"requestId": 77, "chargingProfile": dict(criteria)}
    )
    if answer["status"] == "NoProfiles":
        return None
    ids: list[int] = []
    with trio.fail_after(60):
        while True:
            report = await csms.wait_for_message(
                STATION_ID, "ReportChargingProfiles", lambda p: p["requestId"] == 77, since=since
            )
            since = messages_now(csms)
            ids += [p["id"] for p in report["chargingProfile"]]
            if not report.get("tbc"):
                return sorted(ids)


def limit_is(evse_id: int, limit_w: float) -> Any:
    async def check(outcome: Outcome) -> None:
        assert await _composite_limit(outcome.csms, evse_id) == limit_w

    return check


def reported(criteria: Mapping[str, Any], ids: list[int] | None) -> Any:
    async def check(outcome: Outcome) -> None:
        assert await _reported_ids(outcome.csms, criteria) == ids

    return check


async def default_in_force(outcome: Outcome) -> None:
    assert await _composite_limit(outcome.csms, 1) == 7_400
    assert await _reported_ids(outcome.csms, {"chargingProfilePurpose": "TxDefaultProfile"}) == [13]


async def tx_profile_in_force(outcome: Outcome) -> None:
    assert await _composite_limit(outcome.csms, 1) == 3_000
    evse = outcome.station.evses[0]
    assert evse.power_w == 3_000


async def composite_answer(outcome: Outcome) -> None:
    schedule = outcome.answer["schedule"]
    assert schedule["evseId"] == 1 and schedule["chargingRateUnit"] == "W"
    assert [p["limit"] for p in schedule["chargingSchedulePeriod"]] == [7_400.0]


async def station_composite(outcome: Outcome) -> None:
    schedule = outcome.answer["schedule"]
    # Two EVSEs at 7.4 kW each under the profile, or EVSE 2's rated 22 kW: EVSE 1's default
    # does not limit EVSE 2.
    assert schedule["evseId"] == 0
    assert [p["limit"] for p in schedule["chargingSchedulePeriod"]] == [7_400.0 + 22_000.0]


def _tx_profile(transaction_id: str) -> dict[str, Any]:
    return {
        "evseId": 1,
        "chargingProfile": _profile(
            30, "TxProfile", 3_000.0, kind="Relative", transactionId=transaction_id
        ),
    }


def _unnamed_tx_profile(transaction_id: str) -> dict[str, Any]:
    return {"evseId": 1, "chargingProfile": _profile(33, "TxProfile", 3_000.0, kind="Relative")}


def _other_tx_profile(transaction_id: str) -> dict[str, Any]:
    return {
        "evseId": 1,
        "chargingProfile": _profile(
            34, "TxProfile", 3_000.0, kind="Relative", transactionId=f"{transaction_id}-not"
        ),
    }


async def not_limited(outcome: Outcome) -> None:
    assert await _composite_limit(outcome.csms, 1) == 22_000
    assert await _reported_ids(outcome.csms, {"chargingProfilePurpose": "TxProfile"}) is None


ROWS: list[Row] = [
    # K01 SetChargingProfile
    Row(
        "SetChargingProfile",
        "no profiles, a TxDefaultProfile for EVSE 1",
        request({"evseId": 1, "chargingProfile": DEFAULT_7400}),
        "Accepted",
        then=default_in_force,
    ),
    Row(
        "SetChargingProfile",
        "transaction charging, a TxProfile for it",
        with_transaction(_tx_profile),
        "Accepted",
        then=tx_profile_in_force,
    ),
    Row(
        "SetChargingProfile",
        "transaction charging, a TxProfile without transactionId (K01.FR.03)",
        with_transaction(_unnamed_tx_profile),
        "Rejected",
        reason="MissingParam",
        then=not_limited,
    ),
    Row(
        "SetChargingProfile",
        "transaction charging, a TxProfile for another transaction (K01.FR.33)",
        with_transaction(_other_tx_profile),
        "Rejected",
        reason="TxNotFound",
        then=not_limited,
    ),
    Row(
        "SetChargingProfile",
        "no transaction, a TxProfile (K01.FR.09)",
        request(
            {
                "evseId": 1,
                "chargingProfile": _profile(
                    31, "TxProfile", 3_000.0, kind="Relative", transactionId="CP00001-000009"
                ),
            }
        ),
        "Rejected",
        reason="TxNotFound",
        then=reported({"chargingProfilePurpose": "TxProfile"}, None),
    ),
    Row(
        "SetChargingProfile",
        "an EVSE the station lacks",
        request({"evseId": 3, "chargingProfile": DEFAULT_7400}),
        "Rejected",
        reason="UnknownEvse",
    ),
    Row(
        "SetChargingProfile",
        "external constraints from the CSMS",
        request(
            {
                "evseId": 0,
                "chargingProfile": _profile(32, "ChargingStationExternalConstraints", 5_000.0),
            }
        ),
        "Rejected",
        reason="InvalidValue",
        then=limit_is(1, 22_000),
    ),
    Row(
        "SetChargingProfile",
        "station default at stack level 2, an EVSE default at level 2",
        after(
            _station_default_at_level_2,
            {
                "evseId": 1,
                "chargingProfile": _profile(21, "TxDefaultProfile", 4_000.0, stack_level=2),
            },
        ),
        "Rejected",
        reason="DuplicateProfile",
        then=limit_is(1, 9_000),
    ),
    # K08 GetCompositeSchedule
    Row(
        "GetCompositeSchedule",
        "a TxDefaultProfile on EVSE 1",
        after(_default_installed, {"evseId": 1, "duration": 3600, "chargingRateUnit": "W"}),
        "Accepted",
        then=composite_answer,
    ),
    Row(
        "GetCompositeSchedule",
        "a TxDefaultProfile on EVSE 1, the station's total",
        after(_default_installed, {"evseId": 0, "duration": 3600, "chargingRateUnit": "W"}),
        "Accepted",
        then=station_composite,
    ),
    Row(
        "GetCompositeSchedule",
        "an EVSE the station lacks",
        request({"evseId": 3, "duration": 3600}),
        "Rejected",
        reason="UnknownEvse",
    ),
    # K09 GetChargingProfiles
    Row(
        "GetChargingProfiles",
        "a TxDefaultProfile on EVSE 1",
        after(
            _default_installed,
            {"requestId": 5, "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"}},
        ),
        "Accepted",
        follow_ups=(
            Expect(
                "ReportChargingProfiles",
                "the profile, as set, from the CSO",
                lambda p: (
                    p["requestId"] == 5
                    and p["evseId"] == 1
                    and p["chargingLimitSource"] == "CSO"
                    and p["chargingProfile"] == [DEFAULT_7400]
                    and not p.get("tbc")
                ),
            ),
        ),
    ),
    Row(
        "GetChargingProfiles",
        "no profiles",
        request({"requestId": 6, "chargingProfile": {"chargingProfilePurpose": "TxProfile"}}),
        "NoProfiles",
    ),
    # K10 ClearChargingProfile
    Row(
        "ClearChargingProfile",
        "a TxDefaultProfile on EVSE 1, cleared by id",
        after(_default_installed, {"chargingProfileId": 13}),
        "Accepted",
        then=reported({"chargingProfilePurpose": "TxDefaultProfile"}, None),
    ),
    Row(
        "ClearChargingProfile",
        "a TxDefaultProfile on EVSE 1, criteria naming EVSE 2",
        after(
            _default_installed,
            {
                "chargingProfileCriteria": {
                    "evseId": 2,
                    "chargingProfilePurpose": "TxDefaultProfile",
                }
            },
        ),
        "Unknown",
        then=limit_is(1, 7_400),
    ),
]


@pytest.mark.parametrize(("row", "version"), cases(ROWS))
async def test_action_in_state(autojump_clock: MockClock, row: Row, version: OcppVersion) -> None:
    await run_row(row, version)
