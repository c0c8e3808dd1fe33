"""Charging profiles (block K) and what they do to the power an EV draws."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms.processes import csms_config_for
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import EvseConfig, StationConfig
from fleetsim.simulator.station.blocks.smart_charging.profiles import (
    epoch_s,
    peek_profiles,
    profiles_of,
)
from tests.helpers import STATION_ID, busy_site, one_station_scenario, station_on_memory_link

BOTH = ("2.1", "2.0.1")
ONLY_21 = ("2.1",)
CHARGING = busy_site(dwell_s=7200, soc_start=0.1, target_soc=0.9)


def _profile(profile_id: int, purpose: str, periods: list[dict[str, Any]], **extra: Any) -> Any:
    schedule: dict[str, Any] = {
        "id": 1,
        "chargingRateUnit": extra.pop("unit", "W"),
        "chargingSchedulePeriod": periods,
    }
    start = extra.pop("start", None)
    if start is not None:
        schedule["startSchedule"] = start
    return {
        "id": profile_id,
        "stackLevel": extra.pop("stackLevel", 0),
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": extra.pop("kind", "Relative"),
        "chargingSchedule": [schedule],
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
        transaction_id = await _charging(csms)
        evse = station.evses[0]
        assert evse.power_w == pytest.approx(11_000)
        answer = await _set_profile(
            csms,
            1,
            _profile(
                1, "TxProfile", [{"startPeriod": 0, "limit": 4_200}], transactionId=transaction_id
            ),
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
        transaction_id = await _charging(csms)
        answer = await _set_profile(
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
                start=station.clock.timestamp(),
                transactionId=transaction_id,
            ),
        )
        assert answer["status"] == "Accepted", answer
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
            csms,
            1,
            _profile(6, "TxProfile", [{"startPeriod": 0, "limit": 2_000}], transactionId="T-9"),
        )
        assert answer["status"] == "Rejected"
        assert answer["statusInfo"]["reasonCode"] == "TxNotFound"


@pytest.mark.parametrize("version", BOTH)
async def test_a_tx_profile_must_name_the_running_transaction(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    """K01.FR.03: the CSMS names the transaction of a TxProfile (refused with MissingParam
    when it does not, as EVerest's libocpp does); K01.FR.33: one naming another transaction than
    the EVSE's is refused TxNotFound.  Neither limits the EV."""
    async with station_on_memory_link(scenario=CHARGING, ocpp_version=version) as (
        station,
        csms,
    ):
        transaction_id = await _charging(csms)
        periods = [{"startPeriod": 0, "limit": 2_000}]
        unnamed = await _set_profile(csms, 1, _profile(6, "TxProfile", periods))
        assert (unnamed["status"], unnamed["statusInfo"]["reasonCode"]) == (
            "Rejected",
            "MissingParam",
        )
        other = await _set_profile(
            csms, 1, _profile(7, "TxProfile", periods, transactionId=transaction_id + "-other")
        )
        assert (other["status"], other["statusInfo"]["reasonCode"]) == ("Rejected", "TxNotFound")
        await trio.sleep(1)
        assert station.evses[0].power_w == pytest.approx(11_000)
        assert peek_profiles(station) is None or not len(peek_profiles(station) or ())
        named = await _set_profile(
            csms, 1, _profile(8, "TxProfile", periods, transactionId=transaction_id)
        )
        assert named["status"] == "Accepted"
        await trio.sleep(1)
        assert station.evses[0].power_w == 2_000


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


# -- the power follows the composite ------------------------------------------------------

#: Period boundaries off the minute grid of the meter samples, so no sample falls on one.
STEPPED = [
    {"startPeriod": 0, "limit": 4_000.0},
    {"startPeriod": 330, "limit": 7_000.0},
    {"startPeriod": 750, "limit": 2_500.0},
    {"startPeriod": 1290, "limit": 9_000.0},
    {"startPeriod": 2010, "limit": 5_000.0},
]


def _limit_at(schedule: dict[str, Any], moment: str) -> float:
    offset_s = epoch_s(moment) - epoch_s(schedule["scheduleStart"])
    limit = schedule["chargingSchedulePeriod"][0]["limit"]
    for period in schedule["chargingSchedulePeriod"]:
        if period["startPeriod"] <= offset_s:
            limit = period["limit"]
    return float(limit)


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
async def test_the_power_metered_is_the_composite_limit_at_every_sample(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    async with station_on_memory_link(scenario=CHARGING, ocpp_version=version) as (
        station,
        csms,
    ):
        await _set_profile(
            csms, 0, _profile(30, "TxDefaultProfile", [{"startPeriod": 0, "limit": 22_000}])
        )
        transaction_id = await _charging(csms)
        answer = await _set_profile(
            csms, 1, _profile(31, "TxProfile", STEPPED, transactionId=transaction_id)
        )
        assert answer["status"] == "Accepted"
        composite = await csms.call(
            STATION_ID,
            "GetCompositeSchedule",
            {"evseId": 1, "duration": 3000, "chargingRateUnit": "W"},
        )
        schedule = composite["schedule"]
        # The transaction started moments ago: what is left of each period, in order.
        assert [p["limit"] for p in schedule["chargingSchedulePeriod"]] == [
            p["limit"] for p in STEPPED
        ]
        seen = csms.station(STATION_ID).messages_received
        samples: list[tuple[str, float]] = []
        with trio.fail_after(2400):
            while len(samples) < 35:
                meter = await csms.wait_for_message(
                    STATION_ID,
                    "TransactionEvent",
                    lambda p: p["triggerReason"] == "MeterValuePeriodic",
                    since=seen,
                )
                seen = csms.station(STATION_ID).messages_received
                value = meter["meterValue"][0]
                power = [
                    s["value"]
                    for s in value["sampledValue"]
                    if s.get("measurand") == "Power.Active.Import"
                ]
                samples.append((value["timestamp"], float(power[0])))
        assert {_limit_at(schedule, moment) for moment, _ in samples} == {
            p["limit"] for p in STEPPED
        }
        for moment, power_w in samples:
            assert power_w == pytest.approx(_limit_at(schedule, moment), rel=0.01), moment
        assert station.evses[0].transaction is not None


# -- offline (K06-K07) --------------------------------------------------------------------


async def test_profiles_keep_working_offline_and_the_station_max_holds(
    autojump_clock: MockClock,
) -> None:
    config = dataclasses.replace(
        StationConfig(), retry_backoff_wait_minimum_s=7200.0, retry_backoff_random_range_s=0.0
    )
    async with station_on_memory_link(config, scenario=CHARGING) as (station, csms):
        await _charging(csms)
        now = station.clock.timestamp()
        await _set_profile(
            csms,
            0,
            _profile(
                40,
                "ChargingStationMaxProfile",
                [{"startPeriod": 0, "limit": 8_000}, {"startPeriod": 1200, "limit": 3_000}],
                kind="Absolute",
                start=now,
            ),
        )
        await _set_profile(
            csms,
            1,
            _profile(
                41,
                "TxDefaultProfile",
                [{"startPeriod": 0, "limit": 6_000}, {"startPeriod": 600, "limit": 10_000}],
                kind="Absolute",
                start=now,
            ),
        )
        await trio.sleep(1)
        evse = station.evses[0]
        assert evse.power_w == 6_000
        await csms.disconnect(STATION_ID)
        with trio.fail_after(10):
            while station.online:
                await trio.sleep(0.01)
        await trio.sleep(600)
        assert not station.online
        assert evse.power_w == 8_000  # the default's 10 kW, under the station's 8 kW
        await trio.sleep(600)
        assert not station.online
        assert evse.power_w == 3_000


# -- what SetChargingProfile refuses ------------------------------------------------------

NOW = "2026-01-15T12:00:00Z"
LATER = "2026-01-15T14:00:00Z"


def _periods(*starts: int) -> list[dict[str, Any]]:
    return [{"startPeriod": start, "limit": 5_000.0} for start in starts]


#: (what, evseId, profile, reasonCode, versions)
REFUSALS: list[tuple[str, int, dict[str, Any], str, tuple[str, ...]]] = [
    ("unknown EVSE", 5, _profile(50, "TxDefaultProfile", _periods(0)), "UnknownEvse", BOTH),
    (
        "TxProfile without a transaction",
        1,
        _profile(51, "TxProfile", _periods(0), transactionId="T-51"),
        "TxNotFound",
        BOTH,
    ),
    (
        "TxProfile without a transactionId",
        1,
        _profile(51, "TxProfile", _periods(0)),
        "MissingParam",
        BOTH,
    ),
    (
        "TxProfile for the station",
        0,
        _profile(52, "TxProfile", _periods(0), transactionId="T-52"),
        "InvalidValue",
        BOTH,
    ),
    (
        "station max on an EVSE",
        1,
        _profile(53, "ChargingStationMaxProfile", _periods(0), kind="Absolute", start=NOW),
        "InvalidValue",
        BOTH,
    ),
    (
        "Relative station max",
        0,
        _profile(54, "ChargingStationMaxProfile", _periods(0)),
        "InvalidValue",
        BOTH,
    ),
    (
        "external constraints from the CSMS",
        0,
        _profile(55, "ChargingStationExternalConstraints", _periods(0), kind="Absolute", start=NOW),
        "InvalidValue",
        BOTH,
    ),
    (
        "Relative with startSchedule",
        1,
        _profile(56, "TxDefaultProfile", _periods(0), start=NOW),
        "InvalidSchedule",
        BOTH,
    ),
    (
        "Recurring without startSchedule",
        1,
        _profile(57, "TxDefaultProfile", _periods(0), kind="Recurring", recurrencyKind="Daily"),
        "InvalidSchedule",
        BOTH,
    ),
    (
        "Recurring without recurrencyKind",
        1,
        _profile(58, "TxDefaultProfile", _periods(0), kind="Recurring", start=NOW),
        "InvalidSchedule",
        BOTH,
    ),
    (
        "first period not at 0",
        1,
        _profile(59, "TxDefaultProfile", _periods(60, 120)),
        "InvalidSchedule",
        BOTH,
    ),
    (
        "periods not ascending",
        1,
        _profile(60, "TxDefaultProfile", _periods(0, 600, 300)),
        "InvalidSchedule",
        BOTH,
    ),
    (
        "more periods than PeriodsPerSchedule",
        1,
        _profile(61, "TxDefaultProfile", _periods(*range(0, 25 * 60, 60))),
        "InvalidSchedule",
        BOTH,
    ),
    (
        "stack level beyond ProfileStackLevel",
        1,
        _profile(62, "TxDefaultProfile", _periods(0), stackLevel=11),
        "InvalidStackLevel",
        BOTH,
    ),
    (
        "validTo before validFrom",
        1,
        _profile(63, "TxDefaultProfile", _periods(0), validFrom=LATER, validTo=NOW),
        "InvalidValue",
        BOTH,
    ),
    (
        "phaseToUse without phase switching",
        1,
        _profile(
            64,
            "TxDefaultProfile",
            [{"startPeriod": 0, "limit": 16.0, "numberPhases": 1, "phaseToUse": 2}],
            unit="A",
        ),
        "InvalidSchedule",
        BOTH,
    ),
    (
        "PriorityCharging with a duration",
        1,
        {
            **_profile(65, "PriorityCharging", _periods(0)),
            "chargingSchedule": [
                {
                    "id": 1,
                    "chargingRateUnit": "W",
                    "duration": 600,
                    "chargingSchedulePeriod": _periods(0),
                }
            ],
        },
        "InvalidSchedule",
        ONLY_21,
    ),
    (
        "dynUpdateInterval on an Absolute profile",
        1,
        _profile(
            66, "TxDefaultProfile", _periods(0), kind="Absolute", start=NOW, dynUpdateInterval=60
        ),
        "InvalidProfile",
        ONLY_21,
    ),
    (
        "ChargingOnly period without a limit",
        1,
        _profile(67, "TxDefaultProfile", [{"startPeriod": 0, "operationMode": "ChargingOnly"}]),
        "InvalidSchedule",
        ONLY_21,
    ),
]


def _two_schedules() -> dict[str, Any]:
    profile = _profile(68, "TxDefaultProfile", _periods(0))
    profile["chargingSchedule"].append({**profile["chargingSchedule"][0], "id": 2})
    return dict(profile)


@pytest.mark.parametrize(
    ("what", "evse_id", "profile", "reason", "version"),
    [
        pytest.param(what, evse_id, profile, reason, version, id=f"{what}-{version}")
        for what, evse_id, profile, reason, versions in REFUSALS
        for version in versions
    ],
)
async def test_set_charging_profile_refuses_with_a_reason(
    autojump_clock: MockClock,
    what: str,
    evse_id: int,
    profile: dict[str, Any],
    reason: str,
    version: OcppVersion,
) -> None:
    config = StationConfig(ocpp_version=version)
    async with station_on_memory_link(config, ocpp_version=version) as (station, csms):
        answer = await _set_profile(csms, evse_id, profile)
        assert answer["status"] == "Rejected", what
        assert answer["statusInfo"]["reasonCode"] == reason, answer
        assert answer["statusInfo"]["additionalInfo"]
        held = peek_profiles(station)
        assert held is None or not len(held)


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
async def test_two_schedules_are_one_too_many_for_201_but_not_for_21(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = StationConfig(ocpp_version=version)
    async with station_on_memory_link(config, ocpp_version=version) as (_station, csms):
        answer = await _set_profile(csms, 1, _two_schedules())
        if version == "2.0.1":
            assert (answer["status"], answer["statusInfo"]["reasonCode"]) == (
                "Rejected",
                "InvalidSchedule",
            )
        else:
            assert answer["status"] == "Accepted"


async def test_an_unsupported_rate_unit_is_refused(autojump_clock: MockClock) -> None:
    async with station_on_memory_link() as (station, csms):
        station.device_model.store(("SmartChargingCtrlr", None, None, None, "RateUnit", None), "W")
        answer = await _set_profile(
            csms, 1, _profile(69, "TxDefaultProfile", _periods(0), unit="A")
        )
        assert (answer["status"], answer["statusInfo"]["reasonCode"]) == (
            "Rejected",
            "UnsupportedRateUnit",
        )


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
async def test_a_stack_level_clash_is_a_duplicate_profile(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = StationConfig(ocpp_version=version)
    async with station_on_memory_link(config, ocpp_version=version) as (_station, csms):
        first = await _set_profile(
            csms, 0, _profile(70, "TxDefaultProfile", _periods(0), stackLevel=2)
        )
        assert first["status"] == "Accepted"
        # The same stack level on an EVSE while the station's uses it (K01: station-wide and
        # EVSE TxDefaultProfiles need different stack levels).
        clash = await _set_profile(
            csms, 1, _profile(71, "TxDefaultProfile", _periods(0), stackLevel=2)
        )
        assert (clash["status"], clash["statusInfo"]["reasonCode"]) == (
            "Rejected",
            "DuplicateProfile",
        )
        # Same purpose, stack level and EVSE under another id, valid at the same time.
        again = await _set_profile(
            csms, 0, _profile(72, "TxDefaultProfile", _periods(0), stackLevel=2)
        )
        assert again["statusInfo"]["reasonCode"] == "DuplicateProfile"
        # The same id replaces it.
        replaced = await _set_profile(
            csms, 0, _profile(70, "TxDefaultProfile", _periods(0), stackLevel=2)
        )
        assert replaced["status"] == "Accepted"


async def test_the_21_purposes_and_kinds_are_accepted_and_reported_by_source(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link() as (station, csms):
        for profile in (
            _profile(80, "PriorityCharging", _periods(0)),
            _profile(81, "LocalGeneration", _periods(0), kind="Absolute", start=NOW),
            _profile(82, "TxDefaultProfile", _periods(0), kind="Dynamic", dynUpdateInterval=60),
        ):
            answer = await _set_profile(csms, 1 if profile["id"] != 81 else 0, profile)
            assert answer["status"] == "Accepted", profile
        external = _profile(83, "ChargingStationExternalConstraints", _periods(0))
        profiles_of(station).install(0, external, station.clock.sim_now(), source="EMS")
        answer = await csms.call(
            STATION_ID,
            "GetChargingProfiles",
            {"requestId": 5, "chargingProfile": {"chargingLimitSource": ["EMS"]}},
        )
        assert answer["status"] == "Accepted"
        with trio.fail_after(10):
            report = await csms.wait_for_message(STATION_ID, "ReportChargingProfiles")
        assert report["chargingLimitSource"] == "EMS"
        assert [p["id"] for p in report["chargingProfile"]] == [83]
        assert "tbc" not in report
        # The CSMS does not clear an EMS's constraint.
        cleared = await csms.call(STATION_ID, "ClearChargingProfile", {"chargingProfileId": 83})
        assert cleared["status"] == "Unknown"
        by_criteria = await csms.call(
            STATION_ID,
            "ClearChargingProfile",
            {
                "chargingProfileCriteria": {
                    "evseId": 1,
                    "chargingProfilePurpose": "PriorityCharging",
                }
            },
        )
        assert by_criteria["status"] == "Accepted"
        left = sorted(p.id for p in profiles_of(station).installed)
        assert left == [81, 82, 83]


# -- the embedded CSMS's daily TxDefaultProfile -------------------------------------------


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
async def test_the_embedded_csms_installs_its_daily_default_after_boot(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    scenario = one_station_scenario(
        {
            "embedded_csms": {
                "tx_default_profile": {
                    "periods": [
                        {"at": "17:00", "limit_w": 7_400},
                        {"at": "21:00", "limit_w": 11_000},
                    ]
                }
            }
        },
        ocpp_version=version,
    )
    csms_config = csms_config_for(scenario)
    config = StationConfig(ocpp_version=version)
    async with station_on_memory_link(config, csms_config, ocpp_version=version) as (
        station,
        csms,
    ):
        with trio.fail_after(60):
            while csms.statistics().pushes.get("tx_default_profile_set", 0) < 1:
                await trio.sleep(1)
        answer = await csms.call(
            STATION_ID,
            "GetCompositeSchedule",
            {"evseId": 1, "duration": 86_400, "chargingRateUnit": "W"},
        )
        schedule = answer["schedule"]
        elapsed_s = station.clock.sim_now()
        # Simulated time starts at 12:00 UTC: 11 kW (the day before's last period, past
        # midnight) until 17:00, 7.4 kW until 21:00, then 11 kW through the night.
        periods = schedule["chargingSchedulePeriod"]
        assert [p["limit"] for p in periods] == [11_000.0, 7_400.0, 11_000.0]
        assert periods[0]["startPeriod"] == 0
        assert periods[1]["startPeriod"] == pytest.approx(5 * 3600 - elapsed_s, abs=1)
        assert periods[2]["startPeriod"] == pytest.approx(9 * 3600 - elapsed_s, abs=1)
