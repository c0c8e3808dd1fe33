"""The `faults` section and the flags that add to it: the moments and durations it reads, the
errors that name the field and the fix, and the command-line grammar."""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from pathlib import Path

import pytest

from fleetsim.simulator.faults import chosen
from fleetsim.simulator.scenario import Scenario, ScenarioError, load_scenario
from fleetsim.simulator.scenario.faults import at_s, duration_s, fault_from_flag

START = dt.datetime(2026, 1, 15, 6, 0, tzinfo=dt.UTC)


def problems(tmp_path: Path, faults: str) -> list[str]:
    """The problem lines of a scenario with these faults, its file named as the user wrote it."""
    path = Path("s.yaml")
    path.write_text(
        "name: t\nstations: {count: 4}\nsites: [{name: depot}]\nfaults:\n"
        + textwrap.indent(textwrap.dedent(faults).strip("\n"), "  ")
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    return list(caught.value.problems)


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("08:00", 7200.0),
        ("05:30", 23.5 * 3600),  # before the start: the next day's
        ("+90m", 5400.0),
        ("+1h30m", 5400.0),
        (600, 600.0),
        ("2026-01-15T07:00:00Z", 3600.0),
        ("2026-01-15T09:00:00+01:00", 7200.0),
        (None, 0.0),
    ],
)
def test_a_moment_is_a_time_of_day_an_offset_or_a_date(
    written: str | float | None, seconds: float
) -> None:
    assert at_s(written, START) == seconds


def test_a_time_of_day_is_read_in_the_start_time_zone() -> None:
    start = dt.datetime(2026, 1, 15, 6, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert at_s("08:00", start) == 7200.0


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("10m", 600.0),
        ("1h30m", 5400.0),
        ("90s", 90.0),
        ("2d", 172800.0),
        (45, 45.0),
        ("1.5h", 5400.0),
    ],
)
def test_a_duration_has_units_or_is_seconds(written: str | float, seconds: float) -> None:
    assert duration_s(written) == seconds


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_each_problem_names_the_field_and_the_fix(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """
        - {kind: partition, at: 8h, for: 10m}
        - {kind: partition, at: "08:00", for: ten minutes}
        - {kind: drop, share: 0.1}
        - {kind: drop, at: "+1h", for: 10m}
        - {kind: slow, at: "+1h", delay_s: 0}
        - {kind: power_cut, site: depot, at: "+1h", fro: 5m}
        - {kind: clock_drift, drift_s_per_day: 0}
        - {kind: blackout, at: "+1h"}
        """,
    ) == [
        "s.yaml:5 faults[0].at: '8h' is not a moment; for an offset from the start write +8h",
        "s.yaml:6 faults[1].for: 'ten minutes' is not a duration; write seconds (600) or a "
        "number with units d, h, m, s in that order (10m, 1h30m, 90s)",
        "s.yaml:7 faults[2].at: a drop needs at (when to close the connections) or "
        "rate_per_station_hour (how often)",
        "s.yaml:8 faults[3].for: a single drop has no duration; remove for, or give "
        "rate_per_station_hour to drop connections at a rate during it",
        "s.yaml:9 faults[4].delay_s: Input should be greater than 0",
        "s.yaml:10 faults[5].for: Field required",
        "s.yaml:10 faults[5].fro: unknown key; did you mean for?",
        "s.yaml:11 faults[6].drift_s_per_day: drift_s_per_day must be non-zero and at most "
        "86400 either way, got 0",
        "s.yaml:12 faults[7]: Input tag 'blackout' found using 'kind' does not match any of the "
        "expected tags: 'drop', 'partition', 'storm', 'slow', 'stuck', 'clock_drift', "
        "'power_cut', 'malformed', 'duplicate_id'",
    ]


def test_a_power_cut_names_a_site_of_the_scenario(tmp_path: Path) -> None:
    assert problems(tmp_path, '- {kind: power_cut, site: depto, at: "+1h", for: 5m}') == [
        "s.yaml:5 faults[0].site: no site is named 'depto'; the sites are 'depot'"
    ]


def test_a_date_before_the_start_is_refused() -> None:
    with pytest.raises(ValueError, match="before the scenario's start"):
        Scenario.model_validate(
            {
                "name": "t",
                "start": START.isoformat(),
                "stations": {"count": 1},
                "faults": [{"kind": "storm", "at": "2026-01-15T05:00:00Z"}],
            }
        )


def test_the_flags_add_faults_to_the_scenario() -> None:
    scenario = Scenario.model_validate(
        {"name": "t", "stations": {"count": 2}, "faults": [{"kind": "storm", "at": "+1h"}]}
    )
    flagged = scenario.with_overrides(
        fault_flags=(
            ("partition", "20%@08:00+10m"),
            ("drop", "0.1@+30m"),
            ("drop_rate", "0.5"),
            ("storm", "1@2026-01-15T09:00:00+01:00"),
            ("malformed_rate", "2"),
            ("duplicate_id_rate", "3"),
        )
    )
    assert [fault.model_dump() for fault in flagged.faults] == [
        {"kind": "storm", "at": "+1h", "share": 1.0},
        {"kind": "partition", "at": "08:00", "for": "10m", "share": 0.2},
        {"kind": "drop", "at": "+30m", "for": None, "share": 0.1, "rate_per_station_hour": None},
        {"kind": "drop", "at": None, "for": None, "share": 1.0, "rate_per_station_hour": 0.5},
        {"kind": "storm", "at": "2026-01-15T09:00:00+01:00", "share": 1.0},
        {"kind": "malformed", "at": None, "for": None, "share": 1.0, "rate_per_station_hour": 2.0},
        {
            "kind": "duplicate_id",
            "at": None,
            "for": None,
            "share": 1.0,
            "rate_per_station_hour": 3.0,
        },
    ]


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("partition", "20%@08:00", "--partition 20%@08:00: write SHARE@AT+FOR"),
        ("storm", "all", "--storm all: write SHARE@AT"),
        ("drop_rate", "often", "--drop-rate often: write RATE"),
    ],
)
def test_a_bad_flag_says_how_to_write_it(flag: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        fault_from_flag(flag, value)
    scenario = Scenario.model_validate({"name": "t", "stations": {"count": 2}})
    with pytest.raises(ScenarioError, match=re.escape("command line: " + message)):
        scenario.with_overrides(fault_flags=((flag, value),))


def test_a_flag_whose_value_breaks_a_rule_is_blamed_on_the_command_line() -> None:
    scenario = Scenario.model_validate({"name": "t", "stations": {"count": 2}})
    with pytest.raises(ScenarioError, match=r"command line: faults\[0\]\.share"):
        scenario.with_overrides(fault_flags=(("storm", "150%@+1h"),))


def test_the_stations_a_fault_hits_depend_on_the_seed_and_the_id_only() -> None:
    ids = [f"CP{index:04d}" for index in range(2000)]
    hit = [station_id for station_id in ids if chosen(7, 0, 0.2, station_id)]
    assert 300 < len(hit) < 500
    assert (
        hit == [station_id for station_id in reversed(ids) if chosen(7, 0, 0.2, station_id)][::-1]
    )
    assert hit != [station_id for station_id in ids if chosen(8, 0, 0.2, station_id)]
    assert hit != [station_id for station_id in ids if chosen(7, 1, 0.2, station_id)]


def test_a_shard_of_the_fleet_keeps_the_faults() -> None:
    scenario = Scenario.model_validate(
        {
            "name": "t",
            "stations": {"count": 4},
            "faults": [
                {"kind": "partition", "at": "08:00", "for": "10m", "share": 0.5},
                {"kind": "slow", "delay_s": 2},
            ],
        }
    )
    shard = scenario.for_block(range(2, 4))
    assert shard.faults == scenario.faults
