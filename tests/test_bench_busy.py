"""`bench/scale.py --smoke --only busy`: the busy-machine case, small and short, end to end.

A small fleet over two workers and two source addresses beside a process that keeps a core
busy, then a SIGTERM: the report holds the figures the README quotes, the fleet booted, and
the stop wrote its summary within the bound.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUSY_FIGURES = (
    "ramp_up_s",
    "reopened_in_worst_minute",
    "connection_timeouts",
    "ramp_peak_rss_mb",
    "ramp_most_handshakes_in_flight",
    "summary_after_stop_s",
    "stop_s",
    "summary_written",
)


@pytest.mark.slow
def test_the_busy_case_boots_the_fleet_and_stops_it_with_a_summary(tmp_path: Path) -> None:
    output = tmp_path / "busy.json"
    finished = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "scale.py"),
            "--smoke",
            "--only",
            "busy",
            "--json",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    busy = json.loads(output.read_text())["busy"]
    for figure in BUSY_FIGURES:
        assert busy[figure] is not None, figure
    assert busy["stations_accepted_at_end"] == 300
    assert busy["connection_timeouts"] == 0
    assert busy["summary_written"] is True
    assert busy["stop_s"] < 10
    assert busy["summary_stop"]["cut_short"] == []
    assert busy["summary_ramp"]["written_per_s"] == 1000
