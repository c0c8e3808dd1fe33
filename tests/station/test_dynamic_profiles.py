"""Dynamic charging profiles (K28): updated by the CSMS or pulled by the station."""

from __future__ import annotations

from typing import Any

import trio
from trio.testing import MockClock

from fleetsim.simulator.station.blocks.smart_charging.dynamic import _PULLS
from tests.helpers import STATION_ID, busy_site, station_on_memory_link

CHARGING = busy_site(dwell_s=7200, soc_start=0.1, target_soc=0.9)


def dynamic_profile(
    profile_id: int, limit_w: float, *, interval_s: int | None = None, **extra: Any
) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "id": profile_id,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Dynamic",
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_w}],
            }
        ],
        **extra,
    }
    if interval_s is not None:
        profile["dynUpdateInterval"] = interval_s
    return profile


async def _charging(csms: Any) -> None:
    with trio.fail_after(4 * 3600):
        await csms.wait_for_message(
            STATION_ID,
            "TransactionEvent",
            lambda p: p["transactionInfo"].get("chargingState") == "Charging",
        )


async def _set(csms: Any, profile: dict[str, Any], evse_id: int = 1) -> None:
    answer = await csms.call(
        STATION_ID, "SetChargingProfile", {"evseId": evse_id, "chargingProfile": profile}
    )
    assert answer["status"] == "Accepted", answer


async def test_an_update_changes_the_power_at_once(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(scenario=CHARGING) as (station, csms):
        await _charging(csms)
        evse = station.evses[0]
        await _set(csms, dynamic_profile(31, 6_000))
        await trio.sleep(1)
        assert evse.power_w == 6_000
        answer = await csms.call(
            STATION_ID,
            "UpdateDynamicSchedule",
            {"chargingProfileId": 31, "scheduleUpdate": {"limit": 2_500}},
        )
        assert answer["status"] == "Accepted"
        await trio.testing.wait_all_tasks_blocked()
        assert evse.power_w == 2_500
        # The meter says so in the next sample, and the profile carries when it was updated.
        seen = csms.station(STATION_ID).messages_received
        with trio.fail_after(120):
            meter = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["triggerReason"] == "MeterValuePeriodic",
                since=seen,
            )
        power = [
            s["value"]
            for s in meter["meterValue"][0]["sampledValue"]
            if s["measurand"] == "Power.Active.Import"
        ]
        assert power == [2_500]
        await csms.call(
            STATION_ID,
            "GetChargingProfiles",
            {"requestId": 4, "chargingProfile": {"chargingProfileId": [31]}},
        )
        with trio.fail_after(10):
            report = await csms.wait_for_message(STATION_ID, "ReportChargingProfiles")
        reported = report["chargingProfile"][0]
        assert reported["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"] == 2_500
        assert "dynUpdateTime" in reported


async def test_updates_to_unknown_or_static_profiles_are_refused(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=CHARGING) as (station, csms):
        await _charging(csms)
        unknown = await csms.call(
            STATION_ID,
            "UpdateDynamicSchedule",
            {"chargingProfileId": 77, "scheduleUpdate": {"limit": 1_000}},
        )
        assert (unknown["status"], unknown["statusInfo"]["reasonCode"]) == (
            "Rejected",
            "InvalidProfile",
        )
        static = dynamic_profile(32, 5_000)
        static["chargingProfileKind"] = "Absolute"
        static["chargingSchedule"][0]["startSchedule"] = "2026-01-15T00:00:00Z"
        await _set(csms, static)
        static = await csms.call(
            STATION_ID,
            "UpdateDynamicSchedule",
            {"chargingProfileId": 32, "scheduleUpdate": {"limit": 1_000}},
        )
        assert static["status"] == "Rejected"
        await trio.sleep(1)
        assert station.evses[0].power_w == 5_000


async def test_the_station_pulls_at_the_interval_until_the_profile_is_cleared(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=CHARGING) as (station, csms):
        await _charging(csms)
        evse = station.evses[0]
        await _set(csms, dynamic_profile(33, 6_000, interval_s=300))
        set_at_s = station.clock.sim_now()
        await trio.sleep(1)
        assert evse.power_w == 6_000
        # The CSMS's next value, which it hands out when the station asks.
        csms.station(STATION_ID).remember_dynamic_schedule(
            "UpdateDynamicSchedule", {"chargingProfileId": 33, "scheduleUpdate": {"limit": 3_000}}
        )
        pulled_at = []
        for _ in range(3):
            seen = csms.station(STATION_ID).messages_received
            with trio.fail_after(400):
                pull = await csms.wait_for_message(
                    STATION_ID, "PullDynamicScheduleUpdate", since=seen
                )
            assert pull == {"chargingProfileId": 33}
            pulled_at.append(station.clock.sim_now() - set_at_s)
            await trio.testing.wait_all_tasks_blocked()
            assert evse.power_w == 3_000
        assert [round(t) for t in pulled_at] == [300, 600, 900]
        cleared = await csms.call(STATION_ID, "ClearChargingProfile", {"chargingProfileId": 33})
        assert cleared["status"] == "Accepted"
        seen = csms.station(STATION_ID).messages_received
        await trio.sleep(1_000)
        later = [
            m.action
            for m in csms.station(STATION_ID).messages_since(seen)
            if m.action == "PullDynamicScheduleUpdate"
        ]
        assert later == []
        assert evse.power_w == 11_000


async def test_an_update_pushed_by_the_csms_moves_the_next_pull(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=CHARGING) as (station, csms):
        await _charging(csms)
        await _set(csms, dynamic_profile(34, 6_000, interval_s=300))
        set_at_s = station.clock.sim_now()
        await trio.sleep(200)
        await csms.call(
            STATION_ID,
            "UpdateDynamicSchedule",
            {"chargingProfileId": 34, "scheduleUpdate": {"limit": 4_000}},
        )
        seen = csms.station(STATION_ID).messages_received
        with trio.fail_after(400):
            await csms.wait_for_message(STATION_ID, "PullDynamicScheduleUpdate", since=seen)
        # 300 s after the update, not after the profile was set (K28.FR.10).
        assert round(station.clock.sim_now() - set_at_s) == 500
        await trio.testing.wait_all_tasks_blocked()
        # The CSMS answers with the values it last sent.
        assert station.evses[0].power_w == 4_000


async def test_a_station_without_dynamic_profiles_runs_no_pull_timer(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=CHARGING) as (station, csms):
        await _charging(csms)
        static = dynamic_profile(35, 5_000)
        static["chargingProfileKind"] = "Absolute"
        static["chargingSchedule"][0]["startSchedule"] = "2026-01-15T00:00:00Z"
        await _set(csms, static)
        await _set(csms, dynamic_profile(36, 5_000, stackLevel=2))  # Dynamic, no interval
        assert station.peek_block_state(_PULLS) is None
