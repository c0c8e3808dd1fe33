"""OCPP 2.1's energy flows as the embedded CSMS drives them from a scenario, checked at a real
station: a web payment starts a transaction (C25), priority charging raises the power (K21,
K22), a Dynamic profile follows the CSMS's daily curve (K28, K29), AFRR signals move a V2X EV
along its curve (Q07).  A 2.0.1 station is sent none of it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from pydantic import ValidationError
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms, DailyCurve
from fleetsim.simulator.csms.afrr import signals_from_frequency_events
from fleetsim.simulator.csms.processes import csms_config_for, standalone_csms_config
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import Station
from fleetsim.simulator.station.blocks.smart_charging.profiles import peek_profiles
from tests.helpers import STATION_ID, busy_site, one_station_scenario, station_on_memory_link
from tests.station.test_v2x import v2x_site

Payload = Mapping[str, Any]
#: Simulated seconds within which each awaited message must come.
WITHIN_S = 4 * 3600
#: An EV that arrives at once and charges for hours: the TEST_EV takes 11 kW.
CHARGING = busy_site(dwell_s=6 * 3600, soc_start=0.1, target_soc=0.95)


@asynccontextmanager
async def station_driven_by(
    sections: Mapping[str, Any], version: OcppVersion = "2.1"
) -> AsyncIterator[tuple[Station, Csms]]:
    """A station of a scenario with these sections, its CSMS configured by that scenario
    (recording messages, so the test can wait on them)."""
    scenario = one_station_scenario(sections, ocpp_version=version)
    config = dataclasses.replace(csms_config_for(scenario), record_messages=True)
    async with station_on_memory_link(None, config, sections, ocpp_version=version) as running:
        yield running


def metered_w(event: Payload, measurand: str = "Power.Active.Import") -> float | None:
    for value in event.get("meterValue", ()):
        for sample in value["sampledValue"]:
            if sample.get("measurand") == measurand:
                return float(sample["value"])
    return None


async def metered(
    csms: Csms,
    wanted_w: float,
    *,
    since: int = 0,
    measurand: str = "Power.Active.Import",
) -> Payload:
    """The first TransactionEvent after `since` whose meter values show `wanted_w` (to 1 W)."""

    def shows(event: Payload) -> bool:
        value = metered_w(event, measurand)
        return value is not None and abs(value - wanted_w) < 1.0

    with trio.fail_after(WITHIN_S):
        return await csms.wait_for_message(STATION_ID, "TransactionEvent", shows, since=since)


async def first(
    csms: Csms, action: str, predicate: Callable[[Payload], bool] | None = None, since: int = 0
) -> Payload:
    with trio.fail_after(WITHIN_S):
        return await csms.wait_for_message(STATION_ID, action, predicate, since=since)


def messages_now(csms: Csms) -> int:
    return csms.station(STATION_ID).messages_received


# -- web payments (C25) ------------------------------------------------------------------------

WEB_PAYERS: dict[str, Any] = {
    "ev_fleet": {**CHARGING["ev_fleet"], "remote_start_plugin_delay_s": 60},
    "embedded_csms": {
        "web_payments": {
            "every_s": 600,
            "station_share": 1.0,
            "delay_s": 90,
            "timeout_s": 300,
            "abandon_share": 0.0,
        }
    },
}


async def test_a_web_payment_starts_a_transaction_for_the_waiting_evse(
    autojump_clock: MockClock,
) -> None:
    async with station_driven_by(WEB_PAYERS) as (station, csms):
        started = await first(
            csms, "TransactionEvent", lambda p: p.get("idToken", {}).get("type") == "DirectPayment"
        )
        # The round came at 600 s, the start 90 s later, at the EVSE the CSMS announced.
        assert station.clock.sim_now() == pytest.approx(690, abs=1)
        assert started["idToken"] == {"idToken": "WEBPAY-00000001", "type": "DirectPayment"}
        assert started["transactionInfo"]["remoteStartId"] == 1
        assert started["evse"]["id"] == 1
        # The station started it for the EVSE that awaited the payment, and the payer charges.
        await trio.testing.wait_all_tasks_blocked()
        assert station.stats.payments_by_outcome == {"web_started": 1}
        with trio.fail_after(WITHIN_S):
            await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: (metered_w(p) or 0.0) > 1_000
            )
        transaction = station.evses[0].transaction
        assert transaction is not None
        assert transaction.id == started["transactionInfo"]["transactionId"]
        pushes = csms.statistics().pushes
        assert pushes["web_payment_notified"] >= 1
        assert pushes["web_payment_started"] >= 1
        assert csms.station(STATION_ID).violations == {}


async def test_an_abandoned_web_payment_times_out_at_the_station(
    autojump_clock: MockClock,
) -> None:
    abandoning = {
        **WEB_PAYERS,
        "embedded_csms": {
            "web_payments": {**WEB_PAYERS["embedded_csms"]["web_payments"], "abandon_share": 1.0}
        },
    }
    async with station_driven_by(abandoning) as (station, csms):
        since = messages_now(csms)
        # Just past the first payment's timeout: announced at 600 s for 300 s.
        await trio.sleep_until(station.clock.trio_deadline(600 + 300 + 1))
        assert station.stats.payments_by_outcome == {"web_timeout": 1}
        assert csms.statistics().pushes == {
            "web_payment_notified": 1,
            "web_payment_abandoned": 1,
        }
        sent = [m.action for m in csms.station(STATION_ID).messages_since(since)]
        assert "TransactionEvent" not in sent


# -- priority charging (K21, K22) ---------------------------------------------------------------

#: A daily default of 4 kW, and 11 kW for priority charging.
PRIORITY: dict[str, Any] = {
    "tx_default_profile": {"periods": [{"at": "00:00", "limit_w": 4_000}]},
    "priority_charging": {"limit_w": 11_000},
}


async def test_the_csms_switches_a_share_of_transactions_to_priority_charging(
    autojump_clock: MockClock,
) -> None:
    sections = {
        **CHARGING,
        "embedded_csms": {
            **PRIORITY,
            "priority_charging": {**PRIORITY["priority_charging"], "share": 1.0},
        },
    }
    async with station_driven_by(sections) as (station, csms):
        started = await first(csms, "TransactionEvent", lambda p: p["eventType"] == "Started")
        # Under the 4 kW default, the transaction charges at the priority profile's 11 kW.
        await metered(csms, 11_000)
        profiles = peek_profiles(station)
        assert profiles is not None and profiles.priority_evse_ids == {1}
        pushes = csms.statistics().pushes
        assert pushes["priority_profile_set"] == 1
        assert pushes["priority_charging_used"] == 1
        assert station.evses[0].transaction is not None
        assert station.evses[0].transaction.id == started["transactionInfo"]["transactionId"]


@pytest.mark.parametrize(("driver_requests", "then_w"), [("grant", 11_000), ("refuse", 4_000)])
async def test_the_csms_grants_or_refuses_a_drivers_priority_button(
    autojump_clock: MockClock, driver_requests: str, then_w: float
) -> None:
    sections = {
        **CHARGING,
        "ev_fleet": {**CHARGING["ev_fleet"], "priority_button_share": 1.0},
        "embedded_csms": {
            **PRIORITY,
            "priority_charging": {
                **PRIORITY["priority_charging"],
                "driver_requests": driver_requests,
            },
        },
    }
    async with station_driven_by(sections) as (station, csms):
        await metered(csms, 4_000)
        await first(csms, "NotifyPriorityCharging")
        await trio.testing.wait_all_tasks_blocked()
        since = messages_now(csms)
        await metered(csms, then_w, since=since)
        profiles = peek_profiles(station)
        assert profiles is not None
        assert profiles.priority_evse_ids == ({1} if driver_requests == "grant" else set())
        outcome = "granted" if driver_requests == "grant" else "revoked"
        assert csms.statistics().pushes[f"priority_request_{outcome}"] == 1


# -- dynamic profiles (K28, K29) ----------------------------------------------------------------

#: From 4 kW at 12:00 (the tests' start) up to 10 kW at 14:00, 500 W more every 10 minutes.
RISING = [{"at": "12:00", "limit_w": 4_000}, {"at": "14:00", "limit_w": 10_000}]


async def test_the_csms_updates_its_dynamic_profile_on_its_timer(
    autojump_clock: MockClock,
) -> None:
    sections = {
        **CHARGING,
        "embedded_csms": {
            "dynamic_profile": {"curve": RISING, "update_interval_s": 1800, "pull_interval_s": None}
        },
    }
    async with station_driven_by(sections) as (_, csms):
        await metered(csms, 4_000)
        # 12:30: a quarter of the way up the curve.
        event = await metered(csms, 5_500)
        assert event["timestamp"] >= "2026-01-15T12:30:00"
        assert csms.statistics().pushes["dynamic_schedule_updated"] >= 1
        assert "dynamic_schedule_pulled" not in csms.statistics().pushes
        await metered(csms, 7_000)  # and at 13:00, half way


async def test_a_station_that_pulls_gets_the_curves_value_of_that_moment(
    autojump_clock: MockClock,
) -> None:
    sections = {
        **CHARGING,
        "embedded_csms": {
            "dynamic_profile": {
                "curve": RISING,
                "update_interval_s": 86_400,
                "pull_interval_s": 600,
            }
        },
    }
    async with station_driven_by(sections) as (_, csms):
        await metered(csms, 4_000)
        pull = await first(csms, "PullDynamicScheduleUpdate")
        assert pull["chargingProfileId"] == 920
        # Asked 600 s after the profile came: 12:10, 500 W up the curve.
        since = messages_now(csms)
        await metered(csms, 4_500, since=since)
        assert csms.statistics().pushes["dynamic_schedule_pulled"] >= 1
        assert "dynamic_schedule_updated" not in csms.statistics().pushes


def test_the_daily_curve_is_linear_between_its_points_and_around_midnight() -> None:
    curve = DailyCurve([(6 * 3600, 2_000.0), (18 * 3600, 8_000.0)])
    day = 1_768_435_200.0  # 2026-01-15T00:00:00Z
    assert curve.limit_w(day + 12 * 3600) == pytest.approx(5_000)
    assert curve.limit_w(day + 18 * 3600) == pytest.approx(8_000)
    # 18:00 to 06:00 the next day falls from 8 kW back to 2 kW: midnight is half way.
    assert curve.limit_w(day) == pytest.approx(5_000)
    assert curve.limit_w(day + 21 * 3600) == pytest.approx(6_500)
    assert DailyCurve([(0, 3_000.0)]).limit_w(day + 1234) == 3_000


# -- AFRR signals (Q07) -----------------------------------------------------------------------

#: Full upward activation at 12:30, none from 12:40.
LISTED_SIGNALS = [{"at_s": 1800, "signal": 100}, {"at_s": 2400, "signal": 0}]


@pytest.mark.parametrize(
    ("afrr", "grid", "during_w"),
    [
        # Full upward activation: the EV discharges at full power.
        (
            {"from_grid_events": False, "signals": LISTED_SIGNALS},
            {},
            -10_000.0,
        ),
        # A dip of 0.1 Hz is half of full activation (0.2 Hz): half way from 5 kW to -10 kW.
        ({}, {"events": [{"at_s": 1800, "duration_s": 600, "frequency_hz": 49.9}]}, -2_500.0),
    ],
)
async def test_afrr_signals_move_the_v2x_ev_along_its_curve(
    autojump_clock: MockClock, afrr: dict[str, Any], grid: dict[str, Any], during_w: float
) -> None:
    sections = {
        **v2x_site(iso15118=True, **grid),
        "embedded_csms": {
            "v2x_operation_mode": "CentralFrequency",
            "v2x_max_power_w": 10_000,
            "afrr": afrr,
        },
    }
    async with station_driven_by(sections) as (station, csms):
        # Before any signal: the baseline, half of v2x_max_power_w.
        before = await metered(csms, 5_000)
        assert before["timestamp"] < "2026-01-15T12:30:00"
        during = await metered(
            csms,
            abs(during_w),
            measurand="Power.Active.Export" if during_w < 0 else "Power.Active.Import",
        )
        assert "2026-01-15T12:30:00" <= during["timestamp"] < "2026-01-15T12:40:00"
        after = await metered(csms, 5_000, since=messages_now(csms))
        assert after["timestamp"] >= "2026-01-15T12:40:00"
        assert station.evses[0].transaction is not None
        assert station.evses[0].transaction.operation_mode == "CentralFrequency"
        assert csms.statistics().pushes["afrr_signal_sent"] == 2
        assert csms.station(STATION_ID).violations == {}


def test_a_frequency_event_becomes_a_signal_and_its_end_a_zero() -> None:
    signals = signals_from_frequency_events([(100, 30, 49.85), (500, 10, 50.5)], 50.0, 0.2)
    assert signals == [(100, 75), (130, 0), (500, -100), (510, 0)]


# -- OCPP 2.0.1, and the settings ---------------------------------------------------------------


async def test_a_201_station_is_sent_none_of_the_21_flows(autojump_clock: MockClock) -> None:
    sections = {
        **CHARGING,
        "ev_fleet": {**CHARGING["ev_fleet"], "priority_button_share": 1.0},
        "embedded_csms": {
            **WEB_PAYERS["embedded_csms"],
            "priority_charging": {"limit_w": 11_000, "share": 1.0},
            "dynamic_profile": {"curve": RISING, "update_interval_s": 600},
        },
    }
    async with station_driven_by(sections, "2.0.1") as (station, csms):
        await metered(csms, 11_000)
        await trio.sleep_until(station.clock.trio_deadline(2 * 3600))
        statistics = csms.statistics()
        assert statistics.pushes == {}
        assert statistics.timer_failures == 0
        assert csms.station(STATION_ID).violations == {}


def test_the_settings_that_do_not_fit_together_are_refused() -> None:
    def problems(embedded: dict[str, Any]) -> str:
        with pytest.raises(ValidationError) as caught:
            one_station_scenario({"embedded_csms": embedded})
        return str(caught.value)

    assert "set v2x_operation_mode: CentralFrequency" in problems(
        {"v2x_operation_mode": "LocalFrequency", "afrr": {}}
    )
    assert "different stack levels" in problems(
        {
            "tx_default_profile": {"periods": [{"at": "00:00", "limit_w": 7_000}]},
            "dynamic_profile": {"curve": RISING, "stack_level": 0},
        }
    )
    assert "must be shorter than timeout_s" in problems(
        {"web_payments": {"delay_s": 300, "timeout_s": 300}}
    )


def test_the_standalone_csms_runs_its_timers_on_wall_time() -> None:
    scenario = one_station_scenario({"speed": 60, "embedded_csms": {"web_payments": {}}})
    assert csms_config_for(scenario).clock_speed == 60
    assert csms_config_for(scenario).run_start_epoch_s is not None
    standalone = standalone_csms_config(scenario)
    assert standalone.clock_speed == 1.0
    assert standalone.run_start_epoch_s is None
    assert len(standalone.timers) == 1
