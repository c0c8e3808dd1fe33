"""Priority charging (K21-K22): a transaction charges by its EVSE's PriorityCharging profile."""

from __future__ import annotations

from typing import Any

import trio
from trio.testing import MockClock

from fleetsim.simulator.run import station_config
from fleetsim.simulator.station.blocks.smart_charging.priority import PRESS_AFTER_S
from fleetsim.simulator.station.blocks.smart_charging.profiles import peek_profiles
from tests.helpers import STATION_ID, busy_site, one_station_scenario, station_on_memory_link

CHARGING = busy_site(dwell_s=7200, soc_start=0.1, target_soc=0.9)

#: The simulated day's start: an Absolute schedule needs a startSchedule (K01).
MIDNIGHT = "2026-01-15T00:00:00Z"


def profile(profile_id: int, purpose: str, limit_w: float) -> dict[str, Any]:
    return {
        "id": profile_id,
        "stackLevel": 0,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute" if purpose == "PriorityCharging" else "Relative",
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_w}],
                **({"startSchedule": MIDNIGHT} if purpose == "PriorityCharging" else {}),
            }
        ],
    }


async def _charging(csms: Any) -> str:
    with trio.fail_after(4 * 3600):
        update = await csms.wait_for_message(
            STATION_ID,
            "TransactionEvent",
            lambda p: p["transactionInfo"].get("chargingState") == "Charging",
        )
    return str(update["transactionInfo"]["transactionId"])


async def _set(csms: Any, evse_id: int, body: dict[str, Any]) -> None:
    answer = await csms.call(
        STATION_ID, "SetChargingProfile", {"evseId": evse_id, "chargingProfile": body}
    )
    assert answer["status"] == "Accepted", answer


async def _use(csms: Any, transaction_id: str, activate: bool) -> Any:
    return await csms.call(
        STATION_ID, "UsePriorityCharging", {"transactionId": transaction_id, "activate": activate}
    )


async def test_priority_switches_to_the_priority_profile_and_back(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=CHARGING) as (station, csms):
        transaction_id = await _charging(csms)
        evse = station.evses[0]
        await _set(csms, 1, profile(41, "TxDefaultProfile", 3_000))
        await _set(csms, 1, profile(42, "PriorityCharging", 9_000))
        await trio.sleep(1)
        assert evse.power_w == 3_000
        answer = await _use(csms, transaction_id, True)
        assert answer["status"] == "Accepted"
        await trio.testing.wait_all_tasks_blocked()
        assert evse.power_w == 9_000
        answer = await _use(csms, transaction_id, False)
        assert answer["status"] == "Accepted"
        await trio.testing.wait_all_tasks_blocked()
        assert evse.power_w == 3_000
        # The CSMS asked: the station tells it nothing back.
        sent = {m.action for m in csms.station(STATION_ID).messages_since(0)}
        assert "NotifyPriorityCharging" not in sent


async def test_priority_without_a_profile_or_transaction_is_refused(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=CHARGING) as (station, csms):
        transaction_id = await _charging(csms)
        no_profile = await _use(csms, transaction_id, True)
        assert (no_profile["status"], no_profile["statusInfo"]["reasonCode"]) == (
            "NoProfile",
            "NoProfile",
        )
        unknown = await _use(csms, "no-such-transaction", True)
        assert (unknown["status"], unknown["statusInfo"]["reasonCode"]) == (
            "Rejected",
            "TxNotFound",
        )
        assert station.evses[0].power_w == 11_000


async def test_priority_ends_with_its_transaction(autojump_clock: MockClock) -> None:
    async with station_on_memory_link(scenario=CHARGING) as (station, csms):
        transaction_id = await _charging(csms)
        await _set(csms, 1, profile(43, "PriorityCharging", 9_000))
        assert (await _use(csms, transaction_id, True))["status"] == "Accepted"
        await csms.call(STATION_ID, "RequestStopTransaction", {"transactionId": transaction_id})
        with trio.fail_after(60):
            await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Ended"
            )
        await trio.testing.wait_all_tasks_blocked()
        profiles = peek_profiles(station)
        assert profiles is not None and not profiles.priority_evse_ids


async def test_a_driver_who_presses_the_button_gets_priority_and_the_csms_hears(
    autojump_clock: MockClock,
) -> None:
    scenario = {**CHARGING, "ev_fleet": {**CHARGING["ev_fleet"], "priority_button_share": 1.0}}
    config = station_config(one_station_scenario(scenario))
    async with station_on_memory_link(config, scenario=scenario) as (station, csms):
        await _set(csms, 1, profile(44, "TxDefaultProfile", 3_000))
        await _set(csms, 1, profile(45, "PriorityCharging", 9_000))
        transaction_id = await _charging(csms)
        evse = station.evses[0]
        assert evse.power_w == 3_000
        with trio.fail_after(PRESS_AFTER_S + 10):
            notified = await csms.wait_for_message(STATION_ID, "NotifyPriorityCharging")
        assert notified == {"transactionId": transaction_id, "activated": True}
        await trio.testing.wait_all_tasks_blocked()
        assert evse.power_w == 9_000
