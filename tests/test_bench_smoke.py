"""`bench/scale.py --smoke`: every workload of `make bench`, small and short, end to end.

The full benchmark is not a timed test; this checks that each of its workloads runs against
the real target over real sockets (two worker processes and two source addresses for the
largest fleet, the baseline client beside fleetsim) and that the report holds every figure the
README quotes.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FLEET_FIGURES = (
    "ramp_up_s",
    "calls_per_s",
    "p50_ms_bucket",
    "p95_ms_bucket",
    "p99_ms_bucket",
    "client_cpu_percent",
    "client_cpu_bare_round_trips_per_s",
    "cpu_us_per_call",
    "cpu_us_per_call_over_bare",
    "rss_mb",
    "rss_kb_per_station",
)


@pytest.mark.slow
def test_the_smoke_benchmark_runs_every_workload(tmp_path: Path) -> None:
    output = tmp_path / "scale.json"
    finished = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale.py"), "--smoke", "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    report = json.loads(output.read_text())

    for name in ("nominal", "reference", "largest", "half_load"):
        median = report[name]["median"]
        stations = report[name]["workload"]["stations"]
        assert median["stations_accepted_at_end"] == stations, name
        assert median["connection_failures"] == 0, name
        for figure in FLEET_FIGURES:
            assert median[figure] > 0, (name, figure)
    assert report["largest"]["workload"]["workers"] == 2
    # Both worker processes' memory counts: one process of 300 stations is far below this.
    assert report["largest"]["median"]["rss_mb"] > report["reference"]["median"]["rss_mb"]

    # The machine's yardstick, measured in the same run, and every CPU figure set against it.
    bare_us = report["bare_reference"]["cpu_us_per_round_trip"]
    assert bare_us > 0
    reference = report["reference"]["median"]
    assert reference["cpu_us_per_call_over_bare"] == pytest.approx(
        reference["cpu_us_per_call"] / bare_us
    )
    assert reference["client_cpu_bare_round_trips_per_s"] == pytest.approx(
        reference["client_cpu_percent"] / 100 * 1e6 / bare_us
    )

    verdicts = report["verdicts"]
    assert verdicts["bare_reference_cpu_us_per_round_trip"] == bare_us
    assert set(verdicts["cpu_per_round_trip_over_bare_reference"]) == {
        "bare",
        "fleetsim",
        "fleetsim-default-gc",
        "baseline",
    }
    for name in (
        "largest_share_of_nominal_rate",
        "half_load_latency_overhead_ms_at_most",
        "fleetsim_over_bare_cpu_per_round_trip",
        "baseline_over_fleetsim_cpu_per_round_trip",
        "idle_cpu_percent_per_1000_stations",
        "idle_cpu_bare_round_trips_per_s_per_1000_stations",
        "reference_cpu_us_per_call_over_bare",
        "reference_cpu_bare_round_trips_per_s",
    ):
        assert math.isfinite(verdicts[name]), name
    assert set(verdicts["cpu_us_per_round_trip"]) == {"bare", "fleetsim", "baseline"}
    assert "fleetsim / bare" in finished.stdout and "workload" in finished.stdout
    assert "bare reference:" in finished.stdout and "x bare" in finished.stdout


@pytest.mark.slow
def test_the_soak_smoke_run_prints_every_minute_and_a_verdict(tmp_path: Path) -> None:
    """`bench/soak.py --smoke`: 200 stations for 2 minutes with a drop every 30 s, each figure
    of the per-minute table measured, and the flatness verdict written."""
    output = tmp_path / "soak.json"
    finished = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), "--smoke", "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["smoke"] and report["stations"] == 200 and report["minutes"] == 2
    rows = report["rows"]
    assert [row["minute"] for row in rows] == [1, 2]
    for row in rows:
        assert row["rss_mb"] > 20, row
        # A few tasks per station and the fleet's own: the gauge counts the client's tasks.
        assert 200 < row["trio_tasks"] < 200 * 10, row
        assert row["open_files"] >= 150, row  # a socket per connected station
        assert row["calls_per_s"] > 10, row
        assert row["accepted"] > 100, row
    # Drops at 30, 60 and 90 s closed connections, and the stations opened them again.
    assert report["drops_injected"] > 0
    assert 0 < report["connections_reopened"] <= report["drops_injected"]
    for figure in ("rss_mb", "trio_tasks", "open_files"):
        verdict = report[figure]
        assert verdict["warmup_value"] == rows[0][figure]
        assert isinstance(verdict["flat"], bool)
    assert report["flat"] == (report["rss_mb"]["flat"] and report["trio_tasks"]["flat"])
    assert "RSS MB" in finished.stdout and "trio tasks" in finished.stdout
    assert "flat" in finished.stdout.splitlines()[-2]
