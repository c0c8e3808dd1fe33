"""`fleetsim run` in CI: thresholds decide exit codes 0 and 1, a bad one is exit 2 before
anything runs, `--junit` writes a report CI can read, and a CSMS that accepted no station is
exit 3 with the reason.

The runs are tiny: three stations, `--fast` (in memory, simulated time) against the embedded
CSMS, made to reject or refuse where a test needs it; one run uses a real loopback socket for
a CSMS that never answers.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fleetsim.cli.exit_codes import ExitCode
from fleetsim.cli.main import app
from fleetsim.simulator.csms.policy import AlwaysAnswer, CsmsConfig
from fleetsim.simulator.ocpp import ErrorCode, RpcError
from fleetsim.simulator.scenario import Scenario

pytestmark = pytest.mark.slow

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


def _scenario(directory: Path, extra: str = "") -> Path:
    path = directory / "tiny.yaml"
    path.write_text(TINY + extra)
    return path


def _run_fast(scenario: Path, directory: Path, *flags: str) -> tuple[Any, dict[str, Any]]:
    """`fleetsim run --fast` for 20 run seconds; the result and the summary JSON."""
    summary_path = directory / "summary.json"
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(scenario),
            "--fast",
            "--duration",
            "20",
            "--no-progress",
            "--summary-json",
            str(summary_path),
            *flags,
        ],
    )
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return result, summary


def test_thresholds_that_hold_exit_0(tmp_path: Path) -> None:
    result, summary = _run_fast(
        _scenario(tmp_path),
        tmp_path,
        "--threshold",
        "p99_ms{action=BootNotification} < 500",
        "--threshold",
        "error_rate < 0.01",
        "--threshold",
        "callerrors{code=FormatViolation} == 0",
        "--threshold",
        "stations_booted == 3",
    )
    assert result.exit_code == ExitCode.OK, result.output
    assert [(row["threshold"], row["passed"]) for row in summary["thresholds"]] == [
        ("p99_ms{action=BootNotification} < 500", True),
        ("error_rate < 0.01", True),
        ("callerrors{code=FormatViolation} == 0", True),
        ("stations_booted == 3", True),
    ]
    assert summary["thresholds"][3]["measured"] == 3
    assert "all 4 thresholds passed" in result.output


def test_a_failed_threshold_exits_1_and_the_junit_report_says_which(tmp_path: Path) -> None:
    junit_path = tmp_path / "junit.xml"
    scenario = _scenario(tmp_path, 'thresholds:\n  - "stations_booted >= 3"\n')
    result, summary = _run_fast(
        scenario,
        tmp_path,
        "--threshold",
        "transactions_ended >= 100000",
        "--junit",
        str(junit_path),
    )
    assert result.exit_code == ExitCode.THRESHOLD_FAILED, result.output
    assert "1 of 2 thresholds failed" in result.output
    failed = summary["thresholds"][1]
    assert (failed["source"], failed["passed"]) == ("command line", False)
    assert failed["measured"] == summary["transactions_ended"]

    root = ET.parse(junit_path).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [suite.attrib["name"] for suite in suites] == [
        "fleetsim tiny: thresholds",
        "fleetsim tiny: run",
    ]
    for suite in suites:
        cases = suite.findall("testcase")
        assert int(suite.attrib["tests"]) == len(cases)
        assert int(suite.attrib["failures"]) == sum(c.find("failure") is not None for c in cases)
    cases = {case.attrib["name"]: case for case in root.iter("testcase")}
    assert cases["stations_booted >= 3"].find("failure") is None
    assert cases["the CSMS accepted a station"].find("failure") is None
    failure = cases["transactions_ended >= 100000"].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == (
        f"transactions_ended >= 100000: measured {summary['transactions_ended']}"
    )


def test_abort_on_fail_stops_the_run_after_its_grace_period_and_exits_1(tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path,
        "thresholds:\n"
        "  - expr: stations_booted > 3\n"
        "    abort_on_fail: true\n"
        "    delay_abort_eval_s: 5\n",
    )
    result, summary = _run_fast(scenario, tmp_path, "--duration", "600")
    assert result.exit_code == ExitCode.THRESHOLD_FAILED, result.output
    assert "stopping: threshold stations_booted > 3 failed after 5 s (measured 3)" in (
        result.output
    )
    # Speed 10: stopped 5 run seconds in, not at the end of its 600.
    assert summary["simulated_seconds"] < 100
    assert summary["thresholds"][0]["aborted_run"] is True


def test_a_bad_threshold_on_the_command_line_exits_2_pointing_at_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["run", str(_scenario(tmp_path)), "--fast", "--threshold", "p99_ms{action=Boot} < 500"],
    )
    assert result.exit_code == ExitCode.BAD_SCENARIO
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "command line: --threshold 'p99_ms{action=Boot} < 500': 'Boot' is not a known action; "
        "did you mean BootNotification?"
    )
    assert lines[1:3] == ["    p99_ms{action=Boot} < 500", "                  ^"]
    assert lines[3].startswith("  metrics: calls{action}, call_errors{action}, ")


def test_a_bad_threshold_in_the_scenario_is_found_by_validate_at_its_line(
    tmp_path: Path,
) -> None:
    scenario = _scenario(tmp_path, "thresholds:\n  - error_rate < 0.01\n  - error_rate =< 1\n")
    for command in (["validate"], ["run", "--fast"]):
        result = CliRunner().invoke(app, [*command, str(scenario)])
        assert result.exit_code == ExitCode.BAD_SCENARIO, result.output
        assert result.stderr.splitlines()[:3] == [
            f"{scenario}:13 thresholds[1].expr: '=<' is not a comparison; use <=",
            "    error_rate =< 1",
            "               ^",
        ]


# -- a CSMS that accepts no station --------------------------------------------------------


@pytest.fixture
def embedded_csms_answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Changes to the embedded CSMS's settings for the runs of one test."""
    changes: dict[str, Any] = {}
    import fleetsim.simulator.run as run_module

    original = run_module.csms_config_for

    def config_for(scenario: Scenario) -> CsmsConfig:
        return dataclasses.replace(original(scenario), **changes)

    monkeypatch.setattr(run_module, "csms_config_for", config_for)
    yield changes


def test_a_csms_that_rejects_every_boot_exits_3_and_says_so(
    tmp_path: Path, embedded_csms_answers: dict[str, Any]
) -> None:
    embedded_csms_answers["boot_policy"] = AlwaysAnswer("Rejected", retry_interval_s=30)
    junit_path = tmp_path / "junit.xml"
    result, summary = _run_fast(
        _scenario(tmp_path), tmp_path, "--threshold", "calls >= 0", "--junit", str(junit_path)
    )
    assert result.exit_code == ExitCode.CSMS_UNREACHABLE, result.output
    reason = (
        "the embedded CSMS (in memory) accepted none of the 3 stations: it answered Rejected "
        "to the BootNotification of 3 stations"
    )
    assert f"error: {reason}" in result.output
    assert summary["no_station_accepted"] == reason
    assert summary["errors"][0] == reason
    assert summary["registrations"] == {"Rejected": 3}
    assert summary["stations_booted"] == 0
    cases = {case.attrib["name"]: case for case in ET.parse(junit_path).getroot().iter("testcase")}
    failure = cases["the CSMS accepted a station"].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == reason


def test_a_csms_that_answers_every_boot_with_a_callerror_exits_3_with_the_code(
    tmp_path: Path, embedded_csms_answers: dict[str, Any]
) -> None:
    def refuse(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        raise RpcError(ErrorCode.SECURITY_ERROR, "unknown station")

    embedded_csms_answers["response_overrides"] = {"BootNotification": refuse}
    result, summary = _run_fast(_scenario(tmp_path), tmp_path)
    assert result.exit_code == ExitCode.CSMS_UNREACHABLE, result.output
    boots = summary["calls"]["BootNotification"]["count"]
    assert boots >= 3
    assert summary["callerrors"] == {"BootNotification": {"SecurityError": boots}}
    assert summary["no_station_accepted"] == (
        "the embedded CSMS (in memory) accepted none of the 3 stations: it answered "
        f"{boots} BootNotifications with CALLERROR SecurityError"
    )


SILENT_CSMS = """
import sys, trio
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


def test_a_csms_that_never_answers_exits_3_and_says_so(
    tmp_path: Path, silent_csms_url: str
) -> None:
    scenario = _scenario(tmp_path, "csms: {call_timeout_s: 0.5}\n")
    summary_path = tmp_path / "summary.json"
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(scenario),
            "--csms",
            silent_csms_url,
            "--duration",
            "2",
            "--no-progress",
            "--summary-json",
            str(summary_path),
        ],
    )
    assert result.exit_code == ExitCode.CSMS_UNREACHABLE, result.output
    summary = json.loads(summary_path.read_text())
    timeouts = summary["calls"]["BootNotification"]["timeouts"]
    assert timeouts >= 3
    reason = (
        f"the CSMS at {silent_csms_url} accepted none of the 3 stations: it did not answer "
        f"{timeouts} BootNotifications within csms.call_timeout_s"
    )
    assert summary["no_station_accepted"] == reason
    assert f"error: {reason}" in result.output
