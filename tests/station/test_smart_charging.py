"""Charging profiles (block K) and what they do to the power an EV draws."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from simulator.station import EvseConfig, StationConfig
from tests.helpers import STATION_ID, busy_site, station_on_memory_link

CHARGING = busy_site(dwell_s=7200, soc_start=0.1, target_soc=0.9)


def _profile(profile_id: int, purpose: str, periods: list[dict[str, Any]], **extra: Any) -> Any:
    return {
        "id": profile_id,
        "stackLevel": extra.pop("stackLevel", 0),
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": extra.pop("kind", "Relative"),
        "chargingSchedule": [
            {"id": 1, "chargingRateUnit": extra.pop("unit", "W"), "chargingSchedulePeriod": periods}
        ],
        **extra,
    }


async def _set_profile(csms: Any, evse_id: int, profile: Any) -> Any:
    return await csms.call(
        STATION_ID, "SetChargingProfile", {"evseId": evse_id, "chargingProfile": profile}
    )


async def _charging(csms: Any) -> str:
    with trio.fail_after(4 * 3600):
        update = await csms.wait_for_message(
            STATION_ID,
            "TransactionEvent",
            lambda p: p["transactionInfo"].get("chargingState") == "Charging",
        )
    return str(update["transactionInfo"]["transactionId"])


async def test_a_tx_profile_caps_the_power_exactly(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(scenario=CHARGING) as (station, csms):
        await _charging(csms)
        evse = station.evses[0]
        assert evse.power_w == pytest.approx(11_000)
        answer = await _set_profile(
            csms, 1, _profile(1, "TxProfile", [{"startPeriod": 0, "limit": 4_200}])
        )
        assert answer["status"] == "Accepted"
        await trio.sleep(1)
        assert evse.power_w == 4_200
        seen = csms.station(STATION_ID).messages_received
        with trio.fail_after(120):
            meter = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["triggerReason"] == "MeterValuePeriodic",
                since=seen,
            )
        power = [
            s
            for s in meter["meterValue"][0]["sampledValue"]
            if s["measurand"] == "Power.Active.Import"
        ]
        assert power[0]["value"] == 4_200


async def test_an_ampere_limit_is_turned_into_watts_per_phase(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(scenario=CHARGING) as (station, csms):
        await _charging(csms)
        await _set_profile(
            csms,
            1,
            _profile(
                2,
                "TxDefaultProfile",
                [{"startPeriod": 0, "limit": 10, "numberPhases": 3}],
                unit="A",
            ),
        )
        await trio.sleep(1)
        assert station.evses[0].power_w == pytest.approx(10 * 230 * 3)


async def test_periods_take_effect_at_their_start(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(scenario=CHARGING) as (station, csms):
        await _charging(csms)
        await _set_profile(
            csms,
            1,
            _profile(
                3,
                "TxProfile",
                [
                    {"startPeriod": 0, "limit": 3_000},
                    {"startPeriod": 600, "limit": 6_000},
                ],
                kind="Absolute",
            ),
        )
        await trio.sleep(300)
        assert station.evses[0].power_w == 3_000
        await trio.sleep(301)
        assert station.evses[0].power_w == 6_000


async def test_a_tx_profile_beats_a_default_profile_and_goes_with_its_transaction(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=CHARGING) as (station, csms):
        transaction_id = await _charging(csms)
        await _set_profile(
            csms,
            0,
            _profile(4, "TxDefaultProfile", [{"startPeriod": 0, "limit": 5_000}], stackLevel=3),
        )
        await _set_profile(
            csms,
            1,
            _profile(
                5,
                "TxProfile",
                [{"startPeriod": 0, "limit": 2_000}],
                transactionId=transaction_id,
            ),
        )
        await trio.sleep(1)
        assert station.evses[0].power_w == 2_000
        await csms.call(STATION_ID, "RequestStopTransaction", {"transactionId": transaction_id})
        await trio.sleep(1)
        reported = await csms.call(
            STATION_ID,
            "GetChargingProfiles",
            {"requestId": 9, "chargingProfile": {"chargingProfilePurpose": "TxProfile"}},
        )
        assert reported["status"] == "NoProfiles"


async def test_a_tx_profile_without_a_transaction_is_rejected(autojump_clock: MockClock) -> None:
    async with station_on_memory_link() as (_station, csms):
        answer = await _set_profile(
            csms, 1, _profile(6, "TxProfile", [{"startPeriod": 0, "limit": 2_000}])
        )
        assert answer["status"] == "Rejected"
        assert answer["statusInfo"]["reasonCode"] == "TxNotFound"


async def test_profiles_are_reported_and_cleared(autojump_clock: MockClock) -> None:
    async with station_on_memory_link() as (_station, csms):
        for profile_id, evse_id in ((7, 0), (8, 1)):
            await _set_profile(
                csms,
                evse_id,
                _profile(
                    profile_id,
                    "TxDefaultProfile",
                    [{"startPeriod": 0, "limit": 9_000}],
                    stackLevel=profile_id,
                ),
            )
        answer = await csms.call(
            STATION_ID,
            "GetChargingProfiles",
            {"requestId": 3, "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"}},
        )
        assert answer["status"] == "Accepted"
        with trio.fail_after(10):
            first = await csms.wait_for_message(STATION_ID, "ReportChargingProfiles")
            last = await csms.wait_for_message(
                STATION_ID, "ReportChargingProfiles", lambda p: p["evseId"] == 1
            )
        assert (first["evseId"], first["tbc"]) == (0, True)
        assert [p["id"] for p in last["chargingProfile"]] == [8]
        cleared = await csms.call(STATION_ID, "ClearChargingProfile", {"chargingProfileId": 7})
        assert cleared["status"] == "Accepted"
        again = await csms.call(STATION_ID, "ClearChargingProfile", {"chargingProfileId": 7})
        assert again["status"] == "Unknown"
        entries = await csms.call(
            STATION_ID,
            "GetVariables",
            {
                "getVariableData": [
                    {
                        "component": {"name": "SmartChargingCtrlr"},
                        "variable": {"name": "Entries", "instance": "ChargingProfiles"},
                    }
                ]
            },
        )
        assert entries["getVariableResult"][0]["attributeValue"] == "1"


async def test_a_bidirectional_station_meters_export_too(autojump_clock: MockClock) -> None:
    config = StationConfig(evses=(EvseConfig(bidirectional=True),))
    async with station_on_memory_link(config, scenario=CHARGING) as (_station, csms):
        with trio.fail_after(4 * 3600):
            meter = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["triggerReason"] == "MeterValuePeriodic",
            )
        measurands = {s["measurand"] for s in meter["meterValue"][0]["sampledValue"]}
        assert {"Energy.Active.Export.Register", "Power.Active.Export"} <= measurands


async def test_a_der_event_makes_the_station_raise_and_clear_an_alarm(
    autojump_clock: MockClock,
) -> None:
    scenario = {
        "grid": {
            "der_events": [{"at_s": 600, "duration_s": 60, "kind": "UnderVoltage", "value": 195}]
        }
    }
    async with station_on_memory_link(scenario=scenario) as (_station, csms):
        with trio.fail_after(700):
            raised = await csms.wait_for_message(STATION_ID, "NotifyDERAlarm")
            cleared = await csms.wait_for_message(
                STATION_ID, "NotifyDERAlarm", lambda p: p.get("alarmEnded") is True
            )
        assert raised.get("alarmEnded") in (None, False)
        assert raised["gridEventFault"] == cleared["gridEventFault"]
        assert trio.current_time() == pytest.approx(660, abs=1)
