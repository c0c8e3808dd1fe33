"""`--junit PATH`: the run's verdicts as JUnit XML, which CI systems show as test results.

GitHub Actions (through a JUnit report action), GitLab (`artifacts:reports:junit`) and Jenkins
(the `junit` step) all read the same shape: `testsuites` > `testsuite` > `testcase`, a failed
case holding a `failure` whose `message` attribute is the one line shown in the list, and whose
text is the detail shown when it is opened.  So the report has two suites:

- `thresholds`: one case per threshold, failed with the measured figure when it did not hold;
- `run`: one case that the CSMS accepted a station (always present, so the suite is never
  empty), and one failed case per kind of failure the run saw: CALLERRORs by action, answers
  that broke the schema by action, timeouts by action, station failures by error type, and
  worker processes that died.

Built with the standard library's ElementTree: no new dependency for one file.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..thresholds import ThresholdResult, format_figure

__all__ = ["junit_report", "write_junit"]


@dataclass(frozen=True)
class _Case:
    classname: str
    name: str
    #: The one-line failure message; None for a case that passed.
    failure: str | None = None
    details: str = ""
    failure_type: str = ""


def junit_report(summary: dict[str, Any], results: Sequence[ThresholdResult]) -> ET.ElementTree:
    """The JUnit document of a run: its thresholds, and the failures its summary counts."""
    scenario = summary["scenario"]
    wall_s = float(summary["wall_seconds"])
    root = ET.Element("testsuites", name=f"fleetsim {scenario}")
    suites = [
        ("thresholds", [_threshold_case(result) for result in results]),
        ("run", _run_cases(summary)),
    ]
    for suite_name, cases in suites:
        if not cases:
            continue
        failed = sum(case.failure is not None for case in cases)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"fleetsim {scenario}: {suite_name}",
            tests=str(len(cases)),
            failures=str(failed),
            errors="0",
            skipped="0",
            time=f"{wall_s:.3f}",
        )
        for case in cases:
            element = ET.SubElement(
                suite, "testcase", classname=case.classname, name=case.name, time="0"
            )
            if case.failure is not None:
                failure = ET.SubElement(
                    element, "failure", message=case.failure, type=case.failure_type
                )
                failure.text = case.details or case.failure
    root.set("tests", str(sum(int(suite.get("tests", "0")) for suite in root)))
    root.set("failures", str(sum(int(suite.get("failures", "0")) for suite in root)))
    root.set("errors", "0")
    root.set("time", f"{wall_s:.3f}")
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(summary: dict[str, Any], results: Sequence[ThresholdResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_report(summary, results).write(path, encoding="utf-8", xml_declaration=True)


def _threshold_case(result: ThresholdResult) -> _Case:
    threshold = result.threshold
    if result.passed:
        return _Case("fleetsim.thresholds", threshold.text)
    if result.aborted_run:
        message = f"{result.describe()}; it stopped the run (abort_on_fail)"
    else:
        message = result.describe()
    measured = (
        "none: the run has no such figure"
        if result.measured is None
        else format_figure(result.measured)
    )
    details = f"threshold: {threshold.text} (from the {threshold.source})\nmeasured: {measured}\n"
    return _Case("fleetsim.thresholds", threshold.text, message, details, "ThresholdFailed")


def _run_cases(summary: dict[str, Any]) -> list[_Case]:
    reason = summary.get("no_station_accepted")
    cases = [
        _Case(
            "fleetsim.run",
            "the CSMS accepted a station",
            reason,
            "\n".join(summary["errors"]),
            "NoStationAccepted",
        )
    ]
    calls = summary["calls"]
    for action, codes in summary.get("callerrors", {}).items():
        total = sum(codes.values())
        sent = calls.get(action, {}).get("count", total)
        by_code = ", ".join(f"{code} {count}" for code, count in codes.items())
        cases.append(
            _Case(
                "fleetsim.callerrors",
                f"CALLERRORs to {action}",
                f"{total} of {sent} {action} CALLs answered with a CALLERROR ({by_code})",
                failure_type="CallError",
            )
        )
    for action, codes in summary.get("schema_violations", {}).items():
        total = sum(codes.values())
        by_code = ", ".join(f"{code} {count}" for code, count in codes.items())
        cases.append(
            _Case(
                "fleetsim.schema_violations",
                f"CSMS schema violations in {action}",
                f"{total} frames of {action} from the CSMS broke OCPP-J or the schema ({by_code})",
                failure_type="SchemaViolation",
            )
        )
    for action, row in calls.items():
        if row["timeouts"]:
            cases.append(
                _Case(
                    "fleetsim.timeouts",
                    f"timeouts of {action}",
                    f"{row['timeouts']} of {row['count']} {action} CALLs had no answer within "
                    "csms.call_timeout_s",
                    failure_type="Timeout",
                )
            )
    for error, count in summary.get("station_failures_by_error", {}).items():
        cases.append(
            _Case(
                "fleetsim.station_failures",
                f"station failures: {error}",
                f"{count} unexpected {error} errors in station logic",
                "\n".join(summary["errors"]),
                "StationFailure",
            )
        )
    died = summary.get("workers_died", 0)
    if died:
        cases.append(
            _Case(
                "fleetsim.run",
                "worker processes",
                f"{died} of {summary['workers']} worker processes died",
                "\n".join(summary["errors"]),
                "WorkerDied",
            )
        )
    return cases
