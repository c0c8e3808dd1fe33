"""`fleetsim run` and `fleetsim csms` as a user runs them: exit codes, messages, outputs.

The runs use real processes where a signal or a port is involved, and loopback addresses only.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetsim.cli.exit_codes import ExitCode
from fleetsim.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
FLEETSIM = [sys.executable, "-m", "fleetsim.cli"]

pytestmark = pytest.mark.slow

SUMMARY_KEYS = {
    "stations_total",
    "stations_connected_peak",
    "stations_booted",
    "messages_sent",
    "messages_received",
    "calls",
    "callerrors_received",
    "csms_schema_violations",
    "transactions_started",
    "transactions_ended",
    "energy_delivered_wh",
    "wall_seconds",
    "simulated_seconds",
}


@pytest.fixture(autouse=True)
def _in_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_csms_exits_3_and_says_why(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    url = f"ws://127.0.0.1:{_unused_port()}/ocpp"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "scenarios/quickstart.yaml",
            "--csms",
            url,
            "--stations",
            "5",
            "--duration",
            "30",
            "--no-progress",
            "--summary-json",
            str(summary_path),
        ],
    )
    assert result.exit_code == ExitCode.CSMS_UNREACHABLE, result.output
    assert f"no station could connect to {url}" in result.output
    assert "is the CSMS running and the URL right?" in result.output
    summary = json.loads(summary_path.read_text())
    assert summary["stations_booted"] == 0
    assert summary["wall_seconds"] < 10


def test_a_broken_scenario_exits_2_before_running() -> None:
    result = CliRunner().invoke(app, ["run", "tests/cli/broken/count_zero.yaml"])
    assert result.exit_code == ExitCode.BAD_SCENARIO
    assert "stations.count" in result.stderr


def test_a_bad_flag_value_exits_2_naming_the_flag() -> None:
    result = CliRunner().invoke(app, ["run", "scenarios/quickstart.yaml", "--speed", "0"])
    assert result.exit_code == ExitCode.BAD_SCENARIO
    assert "command line: speed" in result.stderr


def test_a_missing_password_variable_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    scenario = tmp_path / "auth.yaml"
    scenario.write_text(
        "name: auth\nstations: {count: 1}\ncsms: {password_env: FLEETSIM_TEST_NO_SUCH_VAR}\n"
    )
    monkeypatch.delenv("FLEETSIM_TEST_NO_SUCH_VAR", raising=False)
    result = CliRunner().invoke(app, ["run", str(scenario)])
    assert result.exit_code == ExitCode.BAD_SCENARIO
    assert "FLEETSIM_TEST_NO_SUCH_VAR" in result.stderr


@pytest.mark.parametrize("scenario", sorted(p.name for p in (ROOT / "scenarios").glob("*.yaml")))
def test_every_example_scenario_runs(scenario: str, tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    result = CliRunner().invoke(
        app,
        [
            "run",
            f"scenarios/{scenario}",
            "--duration",
            "3",
            "--stations",
            "20",
            "--no-progress",
            "--summary-json",
            str(summary_path),
        ],
    )
    assert result.exit_code == ExitCode.OK, result.output
    summary = json.loads(summary_path.read_text())
    assert summary.keys() >= SUMMARY_KEYS
    assert summary["stations_total"] == 20
    assert summary["stations_booted"] == 20
    assert summary["csms_schema_violations"] == 0


def test_trace_has_every_frame_with_station_direction_and_time(tmp_path: Path) -> None:
    trace_path = tmp_path / "trace.jsonl"
    summary_path = tmp_path / "summary.json"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "scenarios/quickstart.yaml",
            "--duration",
            "2",
            "--stations",
            "3",
            "--no-progress",
            "--trace",
            str(trace_path),
            "--summary-json",
            str(summary_path),
        ],
    )
    assert result.exit_code == ExitCode.OK, result.output
    entries = [json.loads(line) for line in trace_path.read_text().splitlines()]
    summary = json.loads(summary_path.read_text())
    assert sum(e["direction"] == "sent" for e in entries) == summary["messages_sent"]
    assert sum(e["direction"] == "received" for e in entries) == summary["messages_received"]
    assert {e["station"] for e in entries} == {"CP00001", "CP00002", "CP00003"}
    assert all(e["time"].endswith("Z") and len(e["time"]) == 24 for e in entries)
    assert entries[0]["frame"][2] == "BootNotification"


def _start(args: list[str], tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*FLEETSIM, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def _read_until(process: subprocess.Popen[str], marker: str, timeout_s: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if marker in line:
            return line
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"{marker!r} did not appear within {timeout_s} s")


def test_metrics_endpoint_serves_the_fleet_and_sigterm_stops_cleanly(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    process = _start(
        [
            "run",
            "scenarios/quickstart.yaml",
            "--stations",
            "10",
            "--duration",
            "120",
            "--metrics-port",
            "0",
            "--no-progress",
            "--summary-json",
            str(summary_path),
        ],
        tmp_path,
    )
    try:
        line = _read_until(process, "Prometheus metrics on", 30)
        url = line.split(" on ", 1)[1].strip()
        deadline = time.monotonic() + 20
        accepted = 0.0
        while time.monotonic() < deadline and accepted < 10:
            with urllib.request.urlopen(url, timeout=5) as response:
                body = response.read().decode()
            for metric in body.splitlines():
                if metric.startswith('fleetsim_stations{state="accepted"}'):
                    accepted = float(metric.split()[-1])
            time.sleep(0.2)
        assert accepted == 10
        assert "fleetsim_ocpp_call_duration_seconds_bucket" in body
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert exit_code == ExitCode.INTERRUPTED
    summary = json.loads(summary_path.read_text())
    assert summary["stations_booted"] == 10
    assert summary["wall_seconds"] < 60


def test_csms_command_serves_stations(tmp_path: Path) -> None:
    port = _unused_port()
    process = _start(["csms", "--port", str(port)], tmp_path)
    try:
        _read_until(process, "embedded CSMS on", 30)
        result = CliRunner().invoke(
            app,
            [
                "run",
                "scenarios/quickstart.yaml",
                "--csms",
                f"ws://127.0.0.1:{port}/ocpp",
                "--stations",
                "5",
                "--duration",
                "2",
                "--no-progress",
            ],
        )
        assert result.exit_code == ExitCode.OK, result.output
        assert "stations 5/5 booted" in result.output
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
