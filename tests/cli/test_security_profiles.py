"""`fleetsim run` and `fleetsim csms` with security profiles 2 and 3, end to end on loopback,
and a password that shows up in no output of a run.
"""

from __future__ import annotations

import json
import os
import signal
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
SECRET = "Sup3r-Secret-Passw0rd-4711"

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _in_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("profile", [2, 3])
def test_a_fleet_runs_against_the_embedded_csms_over_tls(
    profile: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a password: profile 2 sends it and the CSMS checks it; profile 3 sends none, and
    the CSMS checks the certificates instead."""
    monkeypatch.setenv("FLEETSIM_TEST_SECRET", SECRET)
    summary_path = tmp_path / "summary.json"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "scenarios/quickstart.yaml",
            "--password-env",
            "FLEETSIM_TEST_SECRET",
            "--security-profile",
            str(profile),
            "--stations",
            "5",
            "--duration",
            "3",
            "--no-progress",
            "--summary-json",
            str(summary_path),
        ],
    )
    assert result.exit_code == ExitCode.OK, result.output
    assert "embedded CSMS on wss://127.0.0.1:" in result.output
    assert f"security profile {profile}" in result.output
    summary = json.loads(summary_path.read_text())
    assert summary["stations_booted"] == 5
    assert (summary["connection_attempts"], summary["connection_failures"]) == (5, 0)


def test_a_run_against_a_standalone_csms_with_client_certificates(tmp_path: Path) -> None:
    tls_dir = tmp_path / "tls"
    process = subprocess.Popen(
        [
            *FLEETSIM,
            "csms",
            "--port",
            "0",
            "--security-profile",
            "3",
            "--tls-dir",
            str(tls_dir),
            "--scenario",
            "scenarios/quickstart.yaml",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        line = _read_until(process, "embedded CSMS on", 60)
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        assert url.startswith("wss://127.0.0.1:")
        result = CliRunner().invoke(
            app,
            [
                "run",
                "scenarios/quickstart.yaml",
                "--csms",
                url,
                "--security-profile",
                "3",
                "--ca-file",
                str(tls_dir / "ca.pem"),
                "--client-cert",
                str(tls_dir / "stations" / "{station_id}.pem"),
                "--stations",
                "3",
                "--duration",
                "2",
                "--no-progress",
            ],
        )
        assert result.exit_code == ExitCode.OK, result.output
        assert "stations 3/3 booted" in result.output
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)


def test_a_missing_client_certificate_is_refused_before_the_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "run",
            "scenarios/quickstart.yaml",
            "--csms",
            "wss://127.0.0.1:1/ocpp",
            "--security-profile",
            "3",
            "--client-cert",
            str(tmp_path / "none.pem"),
        ],
    )
    assert result.exit_code == ExitCode.BAD_SCENARIO
    assert "csms.security.client_cert" in result.stderr
    assert f"there is no file {tmp_path / 'none.pem'}" in result.stderr


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


@pytest.mark.parametrize("profile", [1, 2])
def test_the_password_appears_in_no_output(profile: int, tmp_path: Path) -> None:
    """Trace, summary, metrics, console and logs of a run whose stations send a password."""
    trace_path = tmp_path / "trace.jsonl"
    summary_path = tmp_path / "summary.json"
    junit_path = tmp_path / "junit.xml"
    process = subprocess.Popen(
        [
            *FLEETSIM,
            "run",
            "scenarios/quickstart.yaml",
            "--security-profile",
            str(profile),
            "--password-env",
            "FLEETSIM_TEST_SECRET",
            "--stations",
            "4",
            "--duration",
            "6",
            "--metrics-port",
            "0",
            "--trace",
            str(trace_path),
            "--summary-json",
            str(summary_path),
            "--junit",
            str(junit_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200", "FLEETSIM_TEST_SECRET": SECRET},
    )
    try:
        line = _read_until(process, "Prometheus metrics on", 60)
        metrics_url = line.split(" on ", 1)[1].strip()
        metrics = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and 'fleetsim_stations{state="accepted"} 4.0' not in (
            metrics
        ):
            with urllib.request.urlopen(metrics_url, timeout=5) as response:
                metrics = response.read().decode()
            time.sleep(0.2)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == ExitCode.OK, line + output
    summary = json.loads(summary_path.read_text())
    assert summary["stations_booted"] == 4
    assert 'fleetsim_stations{state="accepted"} 4.0' in metrics
    for name, text in {
        "console and logs": line + output,
        "trace": trace_path.read_text(),
        "summary": summary_path.read_text(),
        "metrics": metrics,
        "junit": junit_path.read_text(),
    }.items():
        assert SECRET not in text, f"the password is in the {name}"
        assert SECRET[:12] not in text, f"part of the password is in the {name}"
