"""External limits (K11-K14): the site's energy management limits the station, which reports it."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.ocpp import OcppVersion
from tests.helpers import STATION_ID, busy_site, station_on_memory_link

CURTAILED_AT_S = 1_800
LIFTED_AT_S = 3_600
CURTAILED_KW = 5


def curtailed_site(*, external_limits: bool = True) -> dict[str, Any]:
    """A site without a connection limit, curtailed to 5 kW for half an hour."""
    scenario = busy_site(dwell_s=7200, soc_start=0.1, target_soc=0.9)
    scenario["sites"][0] |= {
        "external_limits": external_limits,
        "capacity_changes": [
            {"at_s": CURTAILED_AT_S, "capacity_kw": CURTAILED_KW, "is_grid_critical": True},
            {"at_s": LIFTED_AT_S, "capacity_kw": None},
        ],
    }
    return scenario


async def _set_variable(csms: Any, component: str, name: str, value: str) -> None:
    answer = await csms.call(
        STATION_ID,
        "SetVariables",
        {
            "setVariableData": [
                {
                    "component": {"name": component},
                    "variable": {"name": name},
                    "attributeValue": value,
                }
            ]
        },
    )
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted", answer


def _rate_changed(payload: Any) -> bool:
    return bool(payload["triggerReason"] == "ChargingRateChanged")


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
async def test_a_site_curtailment_is_notified_followed_and_cleared(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=curtailed_site(), ocpp_version=version) as (
        station,
        csms,
    ):
        evse = station.evses[0]
        share_w = CURTAILED_KW * 1000 / len(station.evses)
        with trio.fail_after(CURTAILED_AT_S + 60):
            notified = await csms.wait_for_message(STATION_ID, "NotifyChargingLimit")
        assert station.clock.sim_now() == pytest.approx(CURTAILED_AT_S)
        assert notified["chargingLimit"] == {"chargingLimitSource": "EMS", "isGridCritical": True}
        assert "chargingSchedule" not in notified  # NotifyChargingLimitWithSchedules is false
        assert evse.transaction is not None
        with trio.fail_after(10):
            await csms.wait_for_message(STATION_ID, "TransactionEvent", _rate_changed)
        await trio.testing.wait_all_tasks_blocked()
        assert evse.power_w == pytest.approx(share_w)
        # The CSMS sees it among the profiles, as the EMS's, and cannot clear it.
        seen = csms.station(STATION_ID).messages_received
        answer = await csms.call(
            STATION_ID,
            "GetChargingProfiles",
            {"requestId": 5, "chargingProfile": {"chargingLimitSource": ["EMS"]}},
        )
        assert answer["status"] == "Accepted"
        with trio.fail_after(10):
            report = await csms.wait_for_message(STATION_ID, "ReportChargingProfiles", since=seen)
        assert report["chargingLimitSource"] == "EMS"
        profile = report["chargingProfile"][0]
        assert profile["chargingProfilePurpose"] == "ChargingStationExternalConstraints"
        assert profile["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"] == 5_000
        cso_only = await csms.call(
            STATION_ID,
            "GetChargingProfiles",
            {"requestId": 6, "chargingProfile": {"chargingLimitSource": ["CSO"]}},
        )
        assert cso_only["status"] == "NoProfiles"
        cleared = await csms.call(STATION_ID, "ClearChargingProfile", {})
        assert cleared["status"] == "Unknown"
        await trio.sleep(60)
        assert evse.power_w == pytest.approx(share_w)
        # Lifted: ClearedChargingLimit, the rate change, and the EV back at full power.
        seen = csms.station(STATION_ID).messages_received
        with trio.fail_after(LIFTED_AT_S):
            lifted = await csms.wait_for_message(STATION_ID, "ClearedChargingLimit", since=seen)
        assert station.clock.sim_now() == pytest.approx(LIFTED_AT_S)
        assert lifted == {"chargingLimitSource": "EMS"}
        with trio.fail_after(10):
            await csms.wait_for_message(STATION_ID, "TransactionEvent", _rate_changed, since=seen)
        await trio.testing.wait_all_tasks_blocked()
        assert evse.power_w == pytest.approx(11_000)


async def test_with_schedules_the_notification_carries_the_limit(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=curtailed_site()) as (_station, csms):
        await _set_variable(csms, "SmartChargingCtrlr", "NotifyChargingLimitWithSchedules", "true")
        with trio.fail_after(CURTAILED_AT_S + 60):
            notified = await csms.wait_for_message(STATION_ID, "NotifyChargingLimit")
        schedule = notified["chargingSchedule"][0]
        assert schedule["chargingRateUnit"] == "W"
        assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 5_000}]


async def test_a_change_below_limit_change_significance_sends_no_rate_change(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=curtailed_site()) as (station, csms):
        await _set_variable(csms, "SmartChargingCtrlr", "LimitChangeSignificance", "100")
        with trio.fail_after(CURTAILED_AT_S + 60):
            await csms.wait_for_message(STATION_ID, "NotifyChargingLimit")
        await trio.sleep(60)
        await trio.testing.wait_all_tasks_blocked()
        sent = [
            m.payload["triggerReason"]
            for m in csms.station(STATION_ID).messages_since(0)
            if m.action == "TransactionEvent"
        ]
        assert "ChargingRateChanged" not in sent
        # The EV follows the limit all the same.
        assert station.evses[0].power_w == pytest.approx(CURTAILED_KW * 1000 / len(station.evses))


async def test_a_site_limit_set_before_the_boot_is_notified_once_booted(
    autojump_clock: MockClock,
) -> None:
    scenario = curtailed_site()
    scenario["sites"][0] |= {"capacity_kw": 7, "capacity_changes": []}
    async with station_on_memory_link(scenario=scenario) as (station, csms):
        with trio.fail_after(120):
            notified = await csms.wait_for_message(STATION_ID, "NotifyChargingLimit")
        assert notified["chargingLimit"]["chargingLimitSource"] == "EMS"
        notifications = [
            m
            for m in csms.station(STATION_ID).messages_since(0)
            if m.action == "NotifyChargingLimit"
        ]
        await trio.sleep(600)
        assert len(notifications) == 1
        assert station.site is not None
        assert station.site.balanced_w is None  # type: ignore[attr-defined]


async def test_without_external_limits_the_site_balances_the_curtailment_itself(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=curtailed_site(external_limits=False)) as (
        station,
        csms,
    ):
        await trio.sleep(CURTAILED_AT_S + 30)
        assert sum(e.power_w for e in station.evses) == pytest.approx(CURTAILED_KW * 1000)
        await trio.sleep(LIFTED_AT_S - CURTAILED_AT_S)
        assert station.evses[0].power_w == pytest.approx(11_000)
        sent = {m.action for m in csms.station(STATION_ID).messages_since(0)}
        assert "NotifyChargingLimit" not in sent
