"""The composite schedule (K08), worked out by hand, and read back over OCPP.

The station of these cases has two three-phase EVSEs rated 22 kW each at 230 V per phase;
simulated second 0 is Thursday 2026-01-15 12:00 UTC.  A ChargingStationMaxProfile's total is
shared equally over the two EVSEs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest
from trio.testing import MockClock

from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import EvseConfig, StationConfig
from fleetsim.simulator.station.blocks.smart_charging.composite import (
    CompositePeriod,
    EvseView,
    StationView,
    composite_schedule,
    instant,
)
from fleetsim.simulator.station.blocks.smart_charging.profiles import Installed, profiles_of
from tests.helpers import STATION_ID, T0, station_on_memory_link

VERSIONS = pytest.mark.parametrize("version", ["2.1", "2.0.1"])
RATED_W = 22_000.0


def at(offset_s: float) -> str:
    """The OCPP dateTime `offset_s` simulated seconds after the start."""
    moment = T0 + dt.timedelta(seconds=offset_s)
    return moment.isoformat().replace("+00:00", "Z")


def profile(
    profile_id: int,
    purpose: str,
    periods: Sequence[tuple[int, float] | dict[str, Any]],
    *,
    stack_level: int = 0,
    kind: str = "Absolute",
    unit: str = "W",
    start: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "id": 1,
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [
            p if isinstance(p, dict) else {"startPeriod": p[0], "limit": p[1]} for p in periods
        ],
    }
    if "duration" in extra:
        schedule["duration"] = extra.pop("duration")
    if kind != "Relative":
        schedule["startSchedule"] = start or at(0)
    return {
        "id": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": [schedule],
        **extra,
    }


def view(tx_started_s: float | None = None, evse_count: int = 2, phases: int = 3) -> StationView:
    evses = tuple(
        EvseView(
            evse_id,
            phases,
            RATED_W,
            "T1" if evse_id == 1 and tx_started_s is not None else None,
            tx_started_s if evse_id == 1 else None,
        )
        for evse_id in range(1, evse_count + 1)
    )
    return StationView(evses, T0.timestamp(), 230.0)


def limits(periods: list[CompositePeriod]) -> list[tuple[float, float | None]]:
    return [(p.start_s, p.limit_w) for p in periods]


#: Stacked profiles: a station max of 30 kW then 16 kW, an EMS's 12 kW constraint on EVSE 1
#: from 30 min, a station TxDefaultProfile of 11 kW with a stack level 1 one of 9 kW for 20
#: minutes from 10 min, and on EVSE 1 a TxProfile of 13 kW then 7 kW after 40 minutes.
STACKED = [
    Installed(0, profile(1, "ChargingStationMaxProfile", [(0, 30_000), (3600, 16_000)]), 0.0),
    Installed(
        1,
        profile(2, "ChargingStationExternalConstraints", [(0, 20_000), (1800, 12_000)]),
        0.0,
        "EMS",
    ),
    Installed(0, profile(3, "TxDefaultProfile", [(0, 11_000)]), 0.0),
    Installed(
        0,
        profile(4, "TxDefaultProfile", [(0, 9_000)], stack_level=1, start=at(600), duration=1200),
        0.0,
    ),
    Installed(
        1,
        profile(5, "TxProfile", [(0, 13_000), (2400, 7_000)], kind="Relative", transactionId="T1"),
        0.0,
    ),
]


def test_stacked_tx_and_default_profiles_under_a_station_max_and_an_external_constraint() -> None:
    station = view(tx_started_s=0.0)
    # EVSE 1: the TxProfile, under half the station max and the EMS's constraint.
    assert limits(composite_schedule(STACKED, station, 1, 0.0, 7200)) == [
        (0.0, 13_000),
        (1800.0, 12_000),
        (2400.0, 7_000),
    ]
    # EVSE 2 has no transaction: the default profiles, stack level 1 while in force.
    assert limits(composite_schedule(STACKED, station, 2, 0.0, 7200)) == [
        (0.0, 11_000),
        (600.0, 9_000),
        (1800.0, 11_000),
        (3600.0, 8_000),
    ]
    # The station: the sum of its EVSEs' limits, under its max.
    assert limits(composite_schedule(STACKED, station, 0, 0.0, 7200)) == [
        (0.0, 24_000),
        (600.0, 22_000),
        (1800.0, 23_000),
        (2400.0, 18_000),
        (3600.0, 15_000),
    ]


def test_the_limit_now_is_the_composite_at_this_second_and_says_when_it_changes() -> None:
    station = view(tx_started_s=0.0)
    now = instant(STACKED, station, 1, 1000.0)
    assert (now.limit_w, now.next_change_s) == (13_000, 1800.0)
    assert now.profile is not None and now.profile.id == 5
    later = instant(STACKED, station, 2, 1800.0)
    assert (later.limit_w, later.next_change_s) == (11_000, 3600.0)


def test_a_daily_recurring_profile_runs_across_midnight() -> None:
    evening = profile(
        6,
        "TxDefaultProfile",
        [(0, 7_000), (6 * 3600, 3_000)],
        kind="Recurring",
        recurrencyKind="Daily",
        start="2026-01-14T18:00:00Z",
        duration=14 * 3600,
    )
    periods = composite_schedule([Installed(0, evening, 0.0)], view(), 1, 0.0, 86_400)
    # 12:00 nothing; 18:00 7 kW; midnight 3 kW; 08:00 the schedule's 14 hours are over.
    assert limits(periods) == [
        (0.0, None),
        (6 * 3600.0, 7_000),
        (12 * 3600.0, 3_000),
        (20 * 3600.0, None),
    ]


def test_a_weekly_profile_limits_weekdays_only() -> None:
    weekdays = profile(
        7,
        "TxDefaultProfile",
        [(0, 7_000)],
        kind="Recurring",
        recurrencyKind="Weekly",
        start="2026-01-12T00:00:00Z",  # a Monday
        duration=5 * 86_400,
    )
    periods = composite_schedule([Installed(0, weekdays, 0.0)], view(), 1, 0.0, 4 * 86_400)
    # Thursday noon: 7 kW until Saturday 00:00 (36 h on), free until Monday 00:00.
    assert limits(periods) == [(0.0, 7_000), (36 * 3600.0, None), (84 * 3600.0, 7_000)]


def test_amperes_and_watts_with_one_and_three_phases() -> None:
    amperes = profile(
        8,
        "TxDefaultProfile",
        [
            {"startPeriod": 0, "limit": 16, "numberPhases": 1},
            {"startPeriod": 600, "limit": 16, "numberPhases": 3},
        ],
        unit="A",
    )
    station_max = profile(9, "ChargingStationMaxProfile", [(0, 20_000)])
    installed = [Installed(0, amperes, 0.0), Installed(0, station_max, 0.0)]
    periods = composite_schedule(installed, view(), 1, 0.0, 3600)
    # 16 A on one phase is 3680 W; on three 11 040 W, above half the station's 20 kW.
    assert [(p.start_s, p.limit_w, p.number_phases) for p in periods] == [
        (0.0, 16 * 230.0, 1),
        (600.0, 10_000.0, 3),
    ]


def test_a_relative_profile_starts_with_its_transaction() -> None:
    relative = profile(
        10,
        "TxProfile",
        [(0, 5_000), (1200, 8_000)],
        kind="Relative",
        transactionId="T1",
    )
    installed = [Installed(1, relative, 0.0)]
    # The transaction began ten minutes before the window.
    periods = composite_schedule(installed, view(tx_started_s=-600.0), 1, 0.0, 3600)
    assert limits(periods) == [(0.0, 5_000), (600.0, 8_000)]
    now = instant(installed, view(tx_started_s=-600.0), 1, 0.0)
    assert (now.limit_w, now.next_change_s) == (5_000, 600.0)


def test_local_generation_raises_the_station_max_and_priority_replaces_the_tx_profile() -> None:
    installed = [
        Installed(0, profile(11, "ChargingStationMaxProfile", [(0, 10_000)]), 0.0),
        Installed(0, profile(12, "LocalGeneration", [(0, 6_000)]), 0.0),
        Installed(1, profile(13, "TxProfile", [(0, 4_000)], kind="Relative"), 0.0),
        Installed(1, profile(14, "PriorityCharging", [(0, 22_000)], kind="Relative"), 0.0),
    ]
    plain = view(tx_started_s=0.0)
    assert instant(installed, plain, 1, 0.0).limit_w == 4_000
    assert instant(installed, plain, 2, 0.0).limit_w == 8_000  # (10 + 6) / 2 kW
    prioritized = StationView(plain.evses, plain.start_epoch_s, 230.0, frozenset({1}))
    assert instant(installed, prioritized, 1, 0.0).limit_w == 8_000


def test_the_schedule_an_ev_picked_rules_its_evse() -> None:
    two = profile(15, "TxProfile", [(0, 6_000)], kind="Relative")
    two["chargingSchedule"].append(
        {
            "id": 2,
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 9_000}],
        }
    )
    installed = [Installed(1, two, 0.0)]
    plain = view(tx_started_s=0.0)
    assert instant(installed, plain, 1, 0.0).limit_w == 6_000
    picked = StationView(plain.evses, plain.start_epoch_s, 230.0, selected_schedule_ids={1: 2})
    assert instant(installed, picked, 1, 0.0).limit_w == 9_000


def test_offline_a_profile_with_a_max_offline_duration_gives_way_to_the_one_below() -> None:
    """2.1: a profile with maxOfflineDuration is invalid that long after the station went
    offline (the limit's next change is that moment); online, offline_since_s is None."""
    setpoint = profile(
        16,
        "TxProfile",
        [{"startPeriod": 0, "limit": 11_000, "operationMode": "CentralSetpoint", "setpoint": -8e3}],
        kind="Relative",
        stack_level=1,
        transactionId="T1",
        maxOfflineDuration=600,
    )
    installed = [
        Installed(1, profile(17, "TxDefaultProfile", [(0, 3_000)], kind="Relative"), 0.0),
        Installed(1, setpoint, 0.0),
    ]
    online = view(tx_started_s=0.0)
    offline = StationView(online.evses, online.start_epoch_s, 230.0, offline_since_s=100.0)
    assert instant(installed, online, 1, 800.0).profile is installed[1]
    before = instant(installed, offline, 1, 650.0)
    assert (before.profile, before.next_change_s) == (installed[1], 700.0)
    after = instant(installed, offline, 1, 700.0)
    assert (after.profile, after.limit_w) == (installed[0], 3_000)


# -- over OCPP ----------------------------------------------------------------------------

TWO_EVSES = StationConfig(evses=(EvseConfig(), EvseConfig()))


async def _set(csms: Any, evse_id: int, charging_profile: dict[str, Any]) -> None:
    answer = await csms.call(
        STATION_ID, "SetChargingProfile", {"evseId": evse_id, "chargingProfile": charging_profile}
    )
    assert answer["status"] == "Accepted", answer


async def _composite(csms: Any, evse_id: int, duration_s: int, unit: str) -> dict[str, Any]:
    answer = await csms.call(
        STATION_ID,
        "GetCompositeSchedule",
        {"evseId": evse_id, "duration": duration_s, "chargingRateUnit": unit},
    )
    assert answer["status"] == "Accepted", answer
    return dict(answer["schedule"])


def shifted(expected: list[tuple[int, float]], elapsed: int) -> list[tuple[int, float]]:
    """The golden periods of a window starting `elapsed` seconds after simulated second 0."""
    current = [(0, limit) for start, limit in expected if start <= elapsed][-1:]
    return current + [(start - elapsed, limit) for start, limit in expected if start > elapsed]


def _points(schedule: dict[str, Any]) -> list[tuple[int, float]]:
    return [(p["startPeriod"], p["limit"]) for p in schedule["chargingSchedulePeriod"]]


@VERSIONS
async def test_get_composite_schedule_reports_the_golden_values(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = StationConfig(ocpp_version=version, evses=(EvseConfig(), EvseConfig()))
    async with station_on_memory_link(config, ocpp_version=version) as (station, csms):
        start_s = station.clock.sim_now()
        profiles_of(station).install(1, STACKED[1].profile, start_s, source="EMS")
        for evse_id, charging_profile in [(0, p.profile) for p in STACKED if p.id in (1, 3, 4)]:
            await _set(csms, evse_id, charging_profile)
        schedule = await _composite(csms, 2, 7200, "W")
        assert schedule["evseId"] == 2 and schedule["duration"] == 7200
        elapsed = int(start_s)
        assert schedule["scheduleStart"].startswith(at(elapsed)[:19])
        assert _points(schedule) == shifted(
            [(0, 11_000), (600, 9_000), (1800, 11_000), (3600, 8_000)], elapsed
        )
        # The station's total: EVSE 1 has no transaction, so it follows the defaults too,
        # under the EMS's 12 kW from 30 minutes (not binding below 11 kW).
        station_total = await _composite(csms, 0, 7200, "W")
        assert station_total["evseId"] == 0
        assert _points(station_total) == shifted(
            [(0, 22_000), (600, 18_000), (1800, 22_000), (3600, 16_000)], elapsed
        )
        in_amperes = await _composite(csms, 2, 600, "A")
        assert in_amperes["chargingRateUnit"] == "A"
        assert _points(in_amperes) == [(0, round(11_000 / 690, 1))]


@VERSIONS
async def test_get_composite_schedule_of_a_recurring_profile_in_amperes(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = StationConfig(ocpp_version=version, evses=(EvseConfig(), EvseConfig()))
    async with station_on_memory_link(config, ocpp_version=version) as (station, csms):
        await _set(
            csms,
            0,
            profile(
                20,
                "TxDefaultProfile",
                [
                    {"startPeriod": 0, "limit": 16, "numberPhases": 1},
                    {"startPeriod": 600, "limit": 16, "numberPhases": 3},
                ],
                unit="A",
                start=at(0),
            ),
        )
        await _set(csms, 0, profile(21, "ChargingStationMaxProfile", [(0, 20_000)]))
        elapsed = int(station.clock.sim_now())
        assert elapsed < 600
        amperes = await _composite(csms, 1, 3600, "A")
        assert [
            (p["startPeriod"], p["limit"], p["numberPhases"])
            for p in amperes["chargingSchedulePeriod"]
        ] == [(0, 16.0, 1), (600 - elapsed, round(10_000 / 690, 1), 3)]
        watts = await _composite(csms, 1, 3600, "W")
        assert _points(watts) == [(0, 3_680.0), (600 - elapsed, 10_000.0)]


async def test_get_composite_schedule_of_an_unknown_evse_is_rejected(
    autojump_clock: MockClock,
) -> None:
    async with station_on_memory_link(TWO_EVSES) as (_station, csms):
        answer = await csms.call(STATION_ID, "GetCompositeSchedule", {"evseId": 3, "duration": 600})
        assert answer["status"] == "Rejected"
        assert answer["statusInfo"]["reasonCode"] == "UnknownEvse"
        assert "schedule" not in answer
