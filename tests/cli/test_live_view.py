"""The live view's plain fallback in a CI log, and a summary that credits the CSMS only with
what it acknowledged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetsim.simulator.report.progress import fit_to_width

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FLEETSIM = [sys.executable, "-m", "fleetsim.cli"]

TINY = """\
name: tiny
speed: 10
start: "2026-01-15T12:00:00Z"
stations:
  count: 3
  evses: [{max_power_w: 22000, phases: 3, connectors: [cType2]}]
sites:
  - name: busy
    arrivals_per_evse_per_day: 150
    dwell_s: {min: 60, max: 150}
"""

SILENT_CSMS = """
import trio
from trio_websocket import serve_websocket, ConnectionClosed

async def station(request):
    connection = await request.accept(subprotocol="ocpp2.1")
    try:
        while True:
            await connection.get_message()  # and never answer
    except ConnectionClosed:
        pass

async def main():
    async with trio.open_nursery() as nursery:
        servers = await nursery.start(serve_websocket, station, "127.0.0.1", 0, None)
        print(servers.port, flush=True)

trio.run(main)
"""


def _environment(columns: int) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": str(columns), "TERM": "dumb"}


def test_fit_to_width_drops_the_least_needed_parts_and_keeps_rank_zero() -> None:
    parts = [(3, "messages 1,000"), (0, "errors 7"), (1, "booted 3"), (0, "connect failures 2")]
    assert fit_to_width(parts, 80) == "messages 1,000  errors 7  booted 3  connect failures 2"
    assert fit_to_width(parts, 40) == "errors 7  booted 3  connect failures 2"
    assert fit_to_width(parts, 30) == "errors 7  connect failures 2"
    assert len(fit_to_width(parts, 10)) == 10


@pytest.mark.parametrize("columns", [40, 80])
def test_a_run_without_a_terminal_prints_plain_lines_that_fit_the_width(
    tmp_path: Path, columns: int
) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY)
    result = subprocess.run(
        [*FLEETSIM, "run", str(scenario), "--fast", "--duration", "4000"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_environment(columns),
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stdout.splitlines() if "connect failures" in line]
    assert len(progress) >= 8  # a line per simulated hour of 40,000 s
    for line in progress:
        assert "\x1b" not in line  # no terminal codes in a log
        assert len(line) <= columns, line
        assert "errors 0" in line
        assert "connect failures 0" in line


@pytest.fixture
def silent_csms_url() -> Iterator[str]:
    """A WebSocket server on loopback that accepts every station and answers nothing."""
    process = subprocess.Popen(
        [sys.executable, "-c", SILENT_CSMS], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"ws://127.0.0.1:{port}/ocpp"
    finally:
        process.kill()
        process.wait(timeout=10)


def test_a_csms_that_never_answers_is_credited_with_no_transaction(
    tmp_path: Path, silent_csms_url: str
) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY.replace("speed: 10", "speed: 2000") + "csms: {call_timeout_s: 0.5}\n")
    summary_path = tmp_path / "summary.json"
    result = subprocess.run(
        [
            *FLEETSIM,
            "run",
            str(scenario),
            "--csms",
            silent_csms_url,
            # The scenario's own clock, not real time from now (the default against a CSMS).
            "--speed",
            "2000",
            "--duration",
            "6",
            "--summary-json",
            str(summary_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=_environment(60),
        cwd=ROOT,
    )
    summary = json.loads(summary_path.read_text())
    # The simulation charged EVs on stations the CSMS never accepted...
    assert summary["transactions_started"] > 0, result.stdout
    assert summary["transactions_started_offline"] == summary["transactions_started"]
    assert summary["transaction_events_queued_offline"] >= summary["transactions_started"]
    assert summary["transaction_events_unsent"] == summary["transaction_events_queued_offline"]
    assert summary["energy_delivered_wh"] > 0
    # ...and the CSMS heard of none of them.
    assert summary["transactions_started_acknowledged"] == 0
    assert summary["transactions_ended_acknowledged"] == 0
    assert summary["transaction_events_acknowledged"] == 0
    assert (
        "delivered to the CSMS (acknowledged): transactions 0 started, 0 ended; TransactionEvents 0"
    ) in result.stdout
    assert (
        f"simulated: transactions {summary['transactions_started']} started "
        f"({summary['transactions_started_offline']} while offline)"
    ) in result.stdout
    # The plain live lines fit the 60 columns and keep the errors and failed connections.
    progress = [line for line in result.stdout.splitlines() if "connect failures" in line]
    assert progress
    for line in progress:
        assert len(line) <= 60, line
        assert "errors " in line


def test_an_answering_csms_acknowledges_what_the_simulation_sent(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY)
    summary_path = tmp_path / "summary.json"
    result = subprocess.run(
        [
            *FLEETSIM,
            "run",
            str(scenario),
            "--fast",
            "--duration",
            "2000",
            "--no-progress",
            "--summary-json",
            str(summary_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=_environment(80),
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(summary_path.read_text())
    assert summary["transactions_started"] > 0
    assert summary["transactions_started_acknowledged"] == summary["transactions_started"]
    assert summary["transactions_ended_acknowledged"] == summary["transactions_ended"]
    assert (
        summary["transaction_events_acknowledged"] == summary["calls"]["TransactionEvent"]["count"]
    )
    assert summary["transactions_started_offline"] == 0
    assert summary["transaction_events_unsent"] == 0
