"""Block Q, V2X: a bidirectional EV discharges only when the CSMS allowed it, follows a central
setpoint down to its minimum SoC, an AFRR signal from its timestamp and the grid frequency on a
LocalFrequency curve; the station reports the operation mode in force.  An ISO 15118 EV picks
one of its TxProfile's schedules, which then limits it.  Offline, a setpoint with a
maxOfflineDuration gives way to the profile below it, and rules again on resume (Q11-Q12).  And
the embedded CSMS's own V2X flow passes the station's checks."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.csms.processes import csms_config_for
from fleetsim.simulator.run import station_config
from fleetsim.simulator.station import Station, StationConfig
from fleetsim.simulator.station.blocks.v2x import signal_power_w
from tests.helpers import (
    STATION_ID,
    T0,
    TEST_EV,
    busy_site,
    one_station_scenario,
    station_on_memory_link,
)

#: A bidirectional test EV: 40 kWh, 11 kW both ways, no losses.
V2X_EV: dict[str, Any] = {**TEST_EV, "bidirectional": True, "max_discharge_kw": 11}


def v2x_site(*, iso15118: bool = False, **grid: Any) -> dict[str, Any]:
    """One bidirectional AC EVSE; a bidirectional EV arrives at once and stays 10 hours at
    50 % SoC, minimum SoC 40 %."""
    site = busy_site(dwell_s=36_000, soc_start=0.5, target_soc=0.8)
    site["ev_fleet"] = {
        **site["ev_fleet"],
        "extra_models": {"test-ev": {**V2X_EV, "iso15118_20": iso15118}},
        "iso15118_share": 1.0 if iso15118 else 0.0,
        "min_soc": 0.4,
    }
    sections: dict[str, Any] = {
        **site,
        "stations": {"count": 1, "evses": [{"bidirectional": True}]},
    }
    if grid:
        sections["grid"] = grid
    return sections


async def charging_transaction(csms: Csms) -> str:
    started = await csms.wait_for_message(
        STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Started"
    )
    await csms.wait_for_message(
        STATION_ID,
        "TransactionEvent",
        lambda p: p["transactionInfo"].get("chargingState") == "Charging",
    )
    return str(started["transactionInfo"]["transactionId"])


def tx_profile(
    transaction_id: str, period: Mapping[str, Any], profile_id: int = 5
) -> dict[str, Any]:
    return {
        "evseId": 1,
        "chargingProfile": {
            "id": profile_id,
            "stackLevel": profile_id - 4,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "transactionId": transaction_id,
            "chargingSchedule": [
                {"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": [period]}
            ],
        },
    }


async def allow(csms: Csms, transaction_id: str, *modes: str) -> None:
    answer = await csms.call(
        STATION_ID,
        "NotifyAllowedEnergyTransfer",
        {"transactionId": transaction_id, "allowedEnergyTransfer": list(modes)},
    )
    assert answer["status"] == "Accepted", answer


def power_w(station: Station) -> float:
    session = station.evses[0].session
    assert session is not None
    return session.power_w


def export_wh(event: Mapping[str, Any]) -> float:
    return next(
        float(s["value"])
        for value in event["meterValue"]
        for s in value["sampledValue"]
        if s.get("measurand") == "Energy.Active.Export.Register"
    )


async def test_a_negative_setpoint_discharges_to_the_minimum_soc_and_export_is_metered(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=v2x_site()) as (station, csms):
        with trio.fail_after(3600):
            transaction_id = await charging_transaction(csms)
            await allow(csms, transaction_id, "AC_BPT")
            since = csms.station(STATION_ID).messages_received
            answer = await csms.call(
                STATION_ID,
                "SetChargingProfile",
                tx_profile(
                    transaction_id,
                    {"startPeriod": 0, "operationMode": "CentralSetpoint", "setpoint": -8_000},
                ),
            )
            assert answer["status"] == "Accepted"
            changed = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["triggerReason"] == "OperationModeChanged",
                since=since,
            )
        assert changed["transactionInfo"]["operationMode"] == "CentralSetpoint"
        assert power_w(station) == pytest.approx(-8_000)
        with trio.fail_after(3600):
            first = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["triggerReason"] == "MeterValuePeriodic",
                since=since,
            )
            later = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: (
                    p["triggerReason"] == "MeterValuePeriodic" and export_wh(p) > export_wh(first)
                ),
                since=since,
            )
        assert later["transactionInfo"]["operationMode"] == "CentralSetpoint"
        # 10 % of 40 kWh at 8 kW: 30 minutes, then the EV stops at its minimum SoC.
        start_s = station.clock.sim_now()
        session = station.evses[0].session
        assert session is not None
        with trio.fail_after(4 * 3600):
            await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["transactionInfo"].get("chargingState") == "SuspendedEV",
                since=since,
            )
        assert session.soc_at(station.clock.sim_now()) == pytest.approx(0.4)
        assert power_w(station) == 0
        assert station.clock.sim_now() - start_s < 1800


async def test_discharge_waits_for_the_csms_to_allow_it_and_ends_when_it_withdraws(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(scenario=v2x_site()) as (station, csms):
        with trio.fail_after(3600):
            transaction_id = await charging_transaction(csms)
            await csms.call(
                STATION_ID,
                "SetChargingProfile",
                tx_profile(
                    transaction_id,
                    {"startPeriod": 0, "operationMode": "CentralSetpoint", "setpoint": -5_000},
                ),
            )
            await trio.testing.wait_all_tasks_blocked()
        assert power_w(station) > 0  # Q02: charging only before V2X is allowed
        with trio.fail_after(60):
            await allow(csms, transaction_id, "AC_three_phase", "AC_BPT")
            await trio.testing.wait_all_tasks_blocked()
        assert power_w(station) == pytest.approx(-5_000)
        since = csms.station(STATION_ID).messages_received
        with trio.fail_after(60):
            await allow(csms, transaction_id, "AC_three_phase")
            back = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["triggerReason"] == "OperationModeChanged",
                since=since,
            )
        assert back["transactionInfo"]["operationMode"] == "ChargingOnly"
        assert power_w(station) >= 0
        unknown = await csms.call(
            STATION_ID,
            "NotifyAllowedEnergyTransfer",
            {"transactionId": "no-such", "allowedEnergyTransfer": ["AC_BPT"]},
        )
        assert (unknown["status"], unknown["statusInfo"]["reasonCode"]) == (
            "Rejected",
            "TxNotFound",
        )


async def test_an_afrr_signal_changes_power_at_its_timestamp(autojump_clock: MockClock) -> None:
    curve = [{"signal": -100, "power": -10_000}, {"signal": 100, "power": 10_000}]
    async with station_on_memory_link(scenario=v2x_site()) as (station, csms):
        with trio.fail_after(3600):
            transaction_id = await charging_transaction(csms)
            await allow(csms, transaction_id, "AC_BPT")
            await csms.call(
                STATION_ID,
                "SetChargingProfile",
                tx_profile(
                    transaction_id,
                    {
                        "startPeriod": 0,
                        "operationMode": "CentralFrequency",
                        "setpoint": 2_000,
                        "v2xSignalWattCurve": curve,
                    },
                ),
            )
            await trio.testing.wait_all_tasks_blocked()
        assert power_w(station) == pytest.approx(2_000)
        at_s = station.clock.sim_now() + 300
        answer = await csms.call(
            STATION_ID, "AFRRSignal", {"timestamp": station.clock.timestamp(at_s), "signal": -50}
        )
        assert answer["status"] == "Accepted"
        await trio.sleep_until(station.clock.trio_deadline(at_s - 1))
        await trio.testing.wait_all_tasks_blocked()
        assert power_w(station) == pytest.approx(2_000)
        await trio.sleep_until(station.clock.trio_deadline(at_s + 0.01))
        await trio.testing.wait_all_tasks_blocked()
        assert power_w(station) == pytest.approx(-5_000)


def test_the_signal_curve_is_linear_between_points_and_flat_beyond() -> None:
    curve = [{"signal": 0, "power": 0}, {"signal": 100, "power": -8_000}]
    assert signal_power_w(curve, 25) == pytest.approx(-2_000)
    assert signal_power_w(curve, 500) == -8_000
    assert signal_power_w(curve, -5) == 0


async def test_a_frequency_event_moves_power_along_the_local_frequency_curve(
    autojump_clock: MockClock,
) -> None:
    curve = [
        {"frequency": 49.8, "power": -10_000},
        {"frequency": 50.0, "power": 0},
        {"frequency": 50.2, "power": 10_000},
    ]
    grid = {
        "sigma_hz": 0.0,
        "events": [{"at_s": 3_000, "duration_s": 600, "frequency_hz": 49.9, "ramp_s": 0}],
    }
    async with station_on_memory_link(scenario=v2x_site(**grid)) as (station, csms):
        with trio.fail_after(2_000):
            transaction_id = await charging_transaction(csms)
            await allow(csms, transaction_id, "AC_BPT")
            await csms.call(
                STATION_ID,
                "SetChargingProfile",
                tx_profile(
                    transaction_id,
                    {
                        "startPeriod": 0,
                        "operationMode": "LocalFrequency",
                        "v2xFreqWattCurve": curve,
                    },
                ),
            )
            await trio.testing.wait_all_tasks_blocked()
        assert power_w(station) == pytest.approx(0, abs=1)
        await trio.sleep_until(station.clock.trio_deadline(3_300))
        await trio.testing.wait_all_tasks_blocked()
        assert power_w(station) == pytest.approx(-5_000, rel=0.01)


@pytest.mark.parametrize(
    ("status", "holds"),
    [("Accepted", True), ("Processing", True), ("NoChargingProfile", False), ("Rejected", False)],
)
async def test_the_ev_acts_on_the_answer_to_its_charging_needs(
    autojump_clock: MockClock, status: str, holds: bool
) -> None:
    config = CsmsConfig(
        response_overrides={"NotifyEVChargingNeeds": lambda _id, _p: {"status": status}}
    )
    async with station_on_memory_link(csms_config=config, scenario=v2x_site(iso15118=True)) as (
        station,
        csms,
    ):
        with trio.fail_after(3600):
            await csms.wait_for_message(STATION_ID, "NotifyEVChargingNeeds")
            await trio.testing.wait_all_tasks_blocked()
        asked_s = station.clock.sim_now()
        assert (power_w(station) == 0) is holds
        if holds:  # no profile comes: after the wait the EV charges under the station's limits
            await trio.sleep_until(station.clock.trio_deadline(asked_s + 61))
            await trio.testing.wait_all_tasks_blocked()
            assert power_w(station) > 0


async def test_the_ev_reports_the_promised_profile_and_renegotiates(
    autojump_clock: MockClock,
) -> None:
    config = CsmsConfig(
        response_overrides={"NotifyEVChargingNeeds": lambda _id, _p: {"status": "Accepted"}}
    )
    async with station_on_memory_link(csms_config=config, scenario=v2x_site(iso15118=True)) as (
        station,
        csms,
    ):
        with trio.fail_after(3600):
            started = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Started"
            )
            await csms.wait_for_message(STATION_ID, "NotifyEVChargingNeeds")
        transaction_id = started["transactionInfo"]["transactionId"]
        await csms.call(
            STATION_ID,
            "SetChargingProfile",
            tx_profile(transaction_id, {"startPeriod": 0, "limit": 4_000}),
        )
        with trio.fail_after(60):
            first = await csms.wait_for_message(STATION_ID, "NotifyEVChargingSchedule")
        assert first["selectedChargingScheduleId"] == 1
        assert power_w(station) == pytest.approx(4_000)
        # K16: a new TxProfile from the CSMS; the EV reports its new schedule.
        since = csms.station(STATION_ID).messages_received
        await csms.call(
            STATION_ID,
            "SetChargingProfile",
            tx_profile(transaction_id, {"startPeriod": 0, "limit": 6_000}, profile_id=6),
        )
        with trio.fail_after(60):
            second = await csms.wait_for_message(
                STATION_ID, "NotifyEVChargingSchedule", since=since
            )
        assert second["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 6_000
        # K17: the driver changes the target; the EV reports new needs.
        from fleetsim.simulator.station.ev_driver import change_needs

        since = csms.station(STATION_ID).messages_received
        assert await change_needs(station, station.evses[0], target_soc=0.9)
        with trio.fail_after(60):
            needs = await csms.wait_for_message(STATION_ID, "NotifyEVChargingNeeds", since=since)
        assert needs["chargingNeeds"]["v2xChargingParameters"]["targetSoC"] == 90


def import_power_w(event: Mapping[str, Any]) -> float:
    return next(
        float(s["value"])
        for value in event["meterValue"]
        for s in value["sampledValue"]
        if s.get("measurand") == "Power.Active.Import"
    )


async def test_the_schedule_the_ev_picks_limits_it_and_its_composite(
    autojump_clock: MockClock,
) -> None:
    """K15/K18 (2.1): of a TxProfile's two schedules the EV picks the one that gives it more
    energy -- here the second -- reports it, and from then on that schedule, not the first,
    limits its power, its metered power and the composite schedule the CSMS reads."""
    config = CsmsConfig(
        response_overrides={"NotifyEVChargingNeeds": lambda _id, _p: {"status": "Accepted"}}
    )
    async with station_on_memory_link(csms_config=config, scenario=v2x_site(iso15118=True)) as (
        station,
        csms,
    ):
        with trio.fail_after(3600):
            started = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Started"
            )
            await csms.wait_for_message(STATION_ID, "NotifyEVChargingNeeds")
        transaction_id = started["transactionInfo"]["transactionId"]
        request = tx_profile(transaction_id, {"startPeriod": 0, "limit": 4_000})
        request["chargingProfile"]["chargingSchedule"].append(
            {
                "id": 2,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7_000}],
            }
        )
        since = csms.station(STATION_ID).messages_received
        answer = await csms.call(STATION_ID, "SetChargingProfile", request)
        assert answer["status"] == "Accepted"
        with trio.fail_after(60):
            reported = await csms.wait_for_message(
                STATION_ID, "NotifyEVChargingSchedule", since=since
            )
            await trio.testing.wait_all_tasks_blocked()
        assert reported["selectedChargingScheduleId"] == 2
        assert reported["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 7_000
        assert power_w(station) == pytest.approx(7_000)
        composite = await csms.call(
            STATION_ID,
            "GetCompositeSchedule",
            {"evseId": 1, "duration": 600, "chargingRateUnit": "W"},
        )
        assert [p["limit"] for p in composite["schedule"]["chargingSchedulePeriod"]] == [7_000]
        since = csms.station(STATION_ID).messages_received
        with trio.fail_after(3600):
            metered = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["triggerReason"] == "MeterValuePeriodic",
                since=since,
            )
        assert import_power_w(metered) == pytest.approx(7_000)


async def test_the_embedded_csms_v2x_flow_passes_the_station_checks(
    autojump_clock: MockClock,
) -> None:
    sections = {
        **v2x_site(iso15118=True),
        "embedded_csms": {"v2x_operation_mode": "CentralSetpoint", "v2x_setpoint_w": -6_000},
    }
    config = csms_config_for(one_station_scenario(sections))
    config = CsmsConfig(
        reactions=config.reactions, steers_bidirectional_evs=config.steers_bidirectional_evs
    )
    async with station_on_memory_link(csms_config=config, scenario=sections) as (station, csms):
        with trio.fail_after(3600):
            await csms.wait_for_message(STATION_ID, "NotifyEVChargingSchedule")
            await trio.testing.wait_all_tasks_blocked()
        messages = list(csms.station(STATION_ID).messages_since(0))
        started = next(m.payload for m in messages if m.action == "TransactionEvent")
        assert power_w(station) == pytest.approx(-6_000)
        transaction = station.evses[0].transaction
        assert transaction is not None
        assert transaction.id == started["transactionInfo"]["transactionId"]
        assert transaction.operation_mode == "CentralSetpoint"
        assert csms.station(STATION_ID).violations == {}


# -- Q11-Q12: a V2X operation mode while offline and on resume ------------------------------

#: How long the station stays offline once its connection drops, in simulated seconds.
OFFLINE_S = 1800.0
#: The maxOfflineDuration of the V2X TxProfile of these cases.
MAX_OFFLINE_S = 600


def offline_config(sections: Mapping[str, Any]) -> StationConfig:
    """The scenario's station, reconnecting OFFLINE_S after its connection drops."""
    return dataclasses.replace(
        station_config(one_station_scenario(sections)),
        retry_backoff_wait_minimum_s=OFFLINE_S,
        retry_backoff_random_range_s=0.0,
    )


async def go_offline(station: Station, csms: Csms) -> float:
    """Drop the connection from the CSMS side; the simulated second it dropped."""
    await csms.disconnect(STATION_ID)
    with trio.fail_after(10):
        await csms.wait_disconnected(STATION_ID)
        while station.online:
            await trio.sleep(0.01)
    return station.clock.sim_now()


def sim_s(timestamp: str) -> float:
    return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() - T0.timestamp()


async def until(station: Station, sim_second: float) -> None:
    await trio.sleep_until(station.clock.trio_deadline(sim_second))
    await trio.testing.wait_all_tasks_blocked()


@pytest.mark.parametrize("invalid_after", [False, True], ids=["resumes", "invalid-for-good"])
async def test_offline_a_v2x_setpoint_gives_way_after_its_max_offline_duration(
    autojump_clock: MockClock, invalid_after: bool
) -> None:
    """Q11: offline, the CentralSetpoint TxProfile keeps discharging for its maxOfflineDuration,
    then the ChargingOnly TxDefaultProfile below it rules: the EV charges at 3 kW, and the
    TransactionEvent that says so (OperationModeChanged) is queued with the time it happened.
    Q12: back online, the setpoint rules again and the EV discharges -- unless the profile's
    invalidAfterOfflineDuration made it invalid for good, and it is gone."""
    sections = v2x_site()
    async with station_on_memory_link(offline_config(sections), scenario=sections) as (
        station,
        csms,
    ):
        with trio.fail_after(3600):
            transaction_id = await charging_transaction(csms)
            await allow(csms, transaction_id, "AC_BPT")
        default = {
            "evseId": 1,
            "chargingProfile": {
                "id": 4,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Relative",
                "chargingSchedule": [
                    {
                        "id": 1,
                        "chargingRateUnit": "W",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 3_000}],
                    }
                ],
            },
        }
        setpoint = tx_profile(
            transaction_id,
            {"startPeriod": 0, "operationMode": "CentralSetpoint", "setpoint": -8_000},
        )
        setpoint["chargingProfile"].update(
            maxOfflineDuration=MAX_OFFLINE_S, invalidAfterOfflineDuration=invalid_after
        )
        since = csms.station(STATION_ID).messages_received
        for request in (default, setpoint):
            answer = await csms.call(STATION_ID, "SetChargingProfile", request)
            assert answer["status"] == "Accepted", answer
        with trio.fail_after(60):
            await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["transactionInfo"].get("operationMode") == "CentralSetpoint",
                since=since,
            )
        assert power_w(station) == pytest.approx(-8_000)

        offline_s = await go_offline(station, csms)
        since = csms.station(STATION_ID).messages_received
        await until(station, offline_s + MAX_OFFLINE_S - 1)
        assert power_w(station) == pytest.approx(-8_000)  # the setpoint holds for a while
        await until(station, offline_s + MAX_OFFLINE_S + 1)
        assert not station.online
        assert power_w(station) == pytest.approx(3_000)
        transaction = station.evses[0].transaction
        assert transaction is not None and transaction.operation_mode == "ChargingOnly"

        # Reconnected: what happened offline arrives first, stamped when it happened.
        with trio.fail_after(OFFLINE_S + 120):
            gave_way = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["triggerReason"] == "OperationModeChanged",
                since=since,
            )
        assert gave_way.get("offline") is True
        assert gave_way["transactionInfo"]["operationMode"] == "ChargingOnly"
        assert sim_s(gave_way["timestamp"]) == pytest.approx(offline_s + MAX_OFFLINE_S, abs=1)
        with trio.fail_after(120):
            await station.wait_synced()
            await trio.testing.wait_all_tasks_blocked()
        assert not station.tx_queue
        # The meter values sampled offline after the setpoint gave way: 3 kW of import.
        offline_samples = [
            m.payload
            for m in csms.station(STATION_ID).messages_since(since)
            if m.action == "TransactionEvent"
            and m.payload["triggerReason"] == "MeterValuePeriodic"
            and m.payload.get("offline")
            and sim_s(m.payload["timestamp"]) > offline_s + MAX_OFFLINE_S
        ]
        assert len(offline_samples) >= (OFFLINE_S - MAX_OFFLINE_S) // 60 - 1
        assert all(import_power_w(p) == 3_000 for p in offline_samples)
        reported = await csms.call(
            STATION_ID,
            "GetChargingProfiles",
            {"requestId": 3, "chargingProfile": {"chargingProfilePurpose": "TxProfile"}},
        )
        if invalid_after:
            assert reported["status"] == "NoProfiles"
            assert power_w(station) == pytest.approx(3_000)
            assert transaction.operation_mode == "ChargingOnly"
            return
        assert reported["status"] == "Accepted"
        with trio.fail_after(60):
            resumed = await csms.wait_for_message(
                STATION_ID,
                "TransactionEvent",
                lambda p: p["triggerReason"] == "OperationModeChanged" and not p.get("offline"),
                since=since,
            )
        assert resumed["transactionInfo"]["operationMode"] == "CentralSetpoint"
        assert power_w(station) == pytest.approx(-8_000)
