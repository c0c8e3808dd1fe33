"""The JUnit report: the shape CI systems read (testsuites > testsuite > testcase, failures
with a message), a case per threshold and per kind of failure the run saw."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from fleetsim.simulator.report import conclude, junit_report, write_junit
from fleetsim.simulator.thresholds import parse_threshold


def _summary(**changes: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "scenario": "ci",
        "csms_url": "ws://127.0.0.1:9000/ocpp",
        "stations_total": 10,
        "stations_booted": 10,
        "stations_connected_peak": 10,
        "connection_attempts": 10,
        "connection_failures": 0,
        "calls": {
            "BootNotification": {"count": 10, "errors": 0, "timeouts": 0, "p99_ms": 12.0},
            "TransactionEvent": {"count": 40, "errors": 3, "timeouts": 2, "p99_ms": 700.0},
        },
        "all_calls": {"count": 50, "errors": 3, "timeouts": 2, "p99_ms": 650.0},
        "callerrors": {"TransactionEvent": {"FormatViolation": 2, "InternalError": 1}},
        "schema_violations": {"Heartbeat": {"TypeConstraintViolation": 4}},
        "station_failures": 1,
        "station_failures_by_error": {"KeyError": 1},
        "transactions_ended": 7,
        "workers": 1,
        "workers_died": 0,
        "wall_seconds": 61.25,
        "errors": ["station CP00003 failed: KeyError 'x'"],
    }
    summary.update(changes)
    return summary


def _cases(root: ET.Element) -> dict[str, ET.Element]:
    return {case.attrib["name"]: case for case in root.iter("testcase")}


def test_a_case_per_threshold_and_per_kind_of_failure_with_the_figures(tmp_path: Path) -> None:
    summary = _summary()
    results = conclude(
        summary,
        [
            parse_threshold("p99_ms{action=TransactionEvent} < 500"),
            parse_threshold("transactions_ended >= 5"),
        ],
    )
    path = tmp_path / "reports" / "junit.xml"
    write_junit(summary, results, path)
    root = ET.parse(path).getroot()

    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [suite.attrib["name"] for suite in suites] == [
        "fleetsim ci: thresholds",
        "fleetsim ci: run",
    ]
    for suite in suites:
        cases = suite.findall("testcase")
        assert int(suite.attrib["tests"]) == len(cases)
        assert int(suite.attrib["failures"]) == sum(c.find("failure") is not None for c in cases)
        assert suite.attrib["time"] == "61.250"
    assert int(root.attrib["tests"]) == 7
    assert int(root.attrib["failures"]) == 5

    cases = _cases(root)
    assert list(cases) == [
        "p99_ms{action=TransactionEvent} < 500",
        "transactions_ended >= 5",
        "the CSMS accepted a station",
        "CALLERRORs to TransactionEvent",
        "CSMS schema violations in Heartbeat",
        "timeouts of TransactionEvent",
        "station failures: KeyError",
    ]
    failed = {name: case.find("failure") for name, case in cases.items()}
    messages = {name: f.attrib["message"] for name, f in failed.items() if f is not None}
    assert messages == {
        "p99_ms{action=TransactionEvent} < 500": (
            "p99_ms{action=TransactionEvent} < 500: measured 700"
        ),
        "CALLERRORs to TransactionEvent": (
            "3 of 40 TransactionEvent CALLs answered with a CALLERROR "
            "(FormatViolation 2, InternalError 1)"
        ),
        "CSMS schema violations in Heartbeat": (
            "4 frames of Heartbeat from the CSMS broke OCPP-J or the schema "
            "(TypeConstraintViolation 4)"
        ),
        "timeouts of TransactionEvent": (
            "2 of 40 TransactionEvent CALLs had no answer within csms.call_timeout_s"
        ),
        "station failures: KeyError": "1 unexpected KeyError errors in station logic",
    }
    assert cases["p99_ms{action=TransactionEvent} < 500"].attrib["classname"] == (
        "fleetsim.thresholds"
    )
    threshold_failure = failed["p99_ms{action=TransactionEvent} < 500"]
    assert threshold_failure is not None
    assert threshold_failure.attrib["type"] == "ThresholdFailed"
    assert "measured: 700" in (threshold_failure.text or "")


def test_a_run_without_an_accepted_station_and_with_a_dead_worker_fails_those_cases() -> None:
    summary = _summary(
        stations_booted=0,
        callerrors={"BootNotification": {"SecurityError": 10}},
        schema_violations={},
        station_failures_by_error={},
        calls={"BootNotification": {"count": 10, "errors": 10, "timeouts": 0}},
        workers=2,
        workers_died=1,
        errors=[],
    )
    conclude(summary, [])
    root = junit_report(summary, []).getroot()
    assert [suite.attrib["name"] for suite in root.findall("testsuite")] == ["fleetsim ci: run"]
    failures = {case.attrib["name"]: case.find("failure") for case in root.iter("testcase")}
    accepted = failures["the CSMS accepted a station"]
    assert accepted is not None
    assert accepted.attrib["message"] == (
        "the CSMS at ws://127.0.0.1:9000/ocpp accepted none of the 10 stations: it answered "
        "10 BootNotifications with CALLERROR SecurityError"
    )
    worker = failures["worker processes"]
    assert worker is not None
    assert worker.attrib["message"] == "1 of 2 worker processes died"


def test_a_clean_run_has_one_passing_case_and_one_per_threshold() -> None:
    summary = _summary(
        callerrors={},
        schema_violations={},
        station_failures_by_error={},
        calls={"Heartbeat": {"count": 5, "errors": 0, "timeouts": 0}},
    )
    results = conclude(summary, [parse_threshold("calls{action=Heartbeat} == 5")])
    root = junit_report(summary, results).getroot()
    assert (root.attrib["tests"], root.attrib["failures"]) == ("2", "0")
    assert all(case.find("failure") is None for case in root.iter("testcase"))
