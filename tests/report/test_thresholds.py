"""Thresholds: the grammar (good and bad expressions, where the caret points), their
evaluation against a summary built from real counters, and the reason a run gives when the
CSMS accepted no station."""

from __future__ import annotations

from typing import Any

import pytest

from fleetsim.simulator.report import build_summary, conclude, no_station_accepted
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.thresholds import (
    METRICS,
    Threshold,
    ThresholdSyntaxError,
    evaluate,
    first_to_abort,
    measure,
    parse_threshold,
)

# -- the grammar ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "metric", "labels", "comparison", "value"),
    [
        (
            "p99_ms{action=BootNotification} < 500",
            "p99_ms",
            (("action", "BootNotification"),),
            "<",
            500,
        ),
        ("error_rate < 0.01", "error_rate", (), "<", 0.01),
        (
            "callerrors{code=FormatViolation} == 0",
            "callerrors",
            (("code", "FormatViolation"),),
            "==",
            0,
        ),
        ("transactions_ended >= 100", "transactions_ended", (), ">=", 100),
        ("  calls{ action = Heartbeat }>=1e3 ", "calls", (("action", "Heartbeat"),), ">=", 1000),
        (
            'callerrors{action="TransactionEvent",code=InternalError}!=-1',
            "callerrors",
            (("action", "TransactionEvent"), ("code", "InternalError")),
            "!=",
            -1,
        ),
        (
            "stations{registration=Rejected} <= 0",
            "stations",
            (("registration", "Rejected"),),
            "<=",
            0,
        ),
        (
            "station_failures{error=KeyError} == 0",
            "station_failures",
            (("error", "KeyError"),),
            "==",
            0,
        ),
        ("energy_delivered_wh > .5", "energy_delivered_wh", (), ">", 0.5),
    ],
)
def test_good_expressions_parse_into_metric_labels_comparison_and_number(
    text: str,
    metric: str,
    labels: tuple[tuple[str, str], ...],
    comparison: str,
    value: float,
) -> None:
    threshold = parse_threshold(text)
    assert (threshold.metric, threshold.labels, threshold.comparison, threshold.value) == (
        metric,
        labels,
        comparison,
        value,
    )
    # The canonical text parses back to the same threshold.
    assert parse_threshold(threshold.text) == threshold


def test_every_metric_parses_with_each_of_its_labels() -> None:
    for metric in METRICS.values():
        assert parse_threshold(f"{metric.name} >= 0").metric == metric.name
        for label, allowed in metric.labels.items():
            value = sorted(allowed)[0] if allowed is not None else "AnyName"
            threshold = parse_threshold(f"{metric.name}{{{label}={value}}} >= 0")
            assert threshold.labels == ((label, value),)


@pytest.mark.parametrize(
    ("text", "column", "reason"),
    [
        ("", 0, "expected a metric name, found the end"),
        ("p99{action=BootNotification} < 500", 0, "unknown metric 'p99'; did you mean p99_ms?"),
        ("p99_ms{action=BootNotifcation} < 500", 14, "did you mean BootNotification?"),
        ("p99_ms{code=FormatViolation} < 500", 7, "p99_ms has no label 'code'; it takes action"),
        ("transactions_ended{action=Heartbeat} > 1", 19, "it takes no labels"),
        ("callerrors{code=Bogus} == 0", 16, "'Bogus' is not a known code; expected one of"),
        ("calls{action=Heartbeat,action=Authorize} > 1", 23, "label 'action' is given twice"),
        ("calls{action Heartbeat} > 1", 13, "expected = after action"),
        ("calls{action=Heartbeat > 1", 23, "expected , or } after action=Heartbeat"),
        ("error_rate 0.01", 11, "expected a comparison (<, <=, >, >=, ==, !=) after error_rate"),
        ("error_rate = 0.01", 11, "'=' is not a comparison; use =="),
        ("error_rate <> 0.01", 11, "'<>' is not a comparison; use !="),
        ("error_rate => 0.01", 11, "'=>' is not a comparison; use >="),
        ("error_rate < ", 13, "expected a number after <, found the end"),
        ("p99_ms < 500ms", 12, "unexpected 'ms' after the number"),
        ("p99_ms < 500 and error_rate < 1", 13, "unexpected 'and' after the number"),
    ],
)
def test_a_bad_expression_points_at_the_character_and_lists_the_metrics(
    text: str, column: int, reason: str
) -> None:
    with pytest.raises(ThresholdSyntaxError) as raised:
        parse_threshold(text)
    error = raised.value
    assert error.column == column
    assert reason in error.reason
    reason_line, expression_line, caret_line, metrics_line = error.explain().splitlines()
    assert reason_line == error.reason
    assert expression_line == f"    {text}"
    assert caret_line == " " * (4 + column) + "^"
    assert metrics_line.startswith("  metrics: calls{action}, ")
    assert all(name in metrics_line for name in METRICS)


# -- evaluation ----------------------------------------------------------------------------


def _recorded_run() -> dict[str, Any]:
    """The summary of counters recorded the way links and stations record them."""
    stats = RunStats()
    for _ in range(98):
        stats.call_done("Heartbeat", "ok", 0.004)
    stats.call_done("Heartbeat", "timeout", None)
    stats.call_done("Heartbeat", "error", 0.002)
    stats.callerror_received("Heartbeat", "InternalError")
    for millis in range(1, 11):
        stats.call_done("BootNotification", "ok", millis / 1000)
    stats.callerror_received("TransactionEvent", "FormatViolation")
    stats.callerror_received("TransactionEvent", "FormatViolation")
    stats.call_done("TransactionEvent", "error", 0.001)
    stats.call_done("TransactionEvent", "error", 0.001)
    stats.csms_violation("BootNotification", "TypeConstraintViolation")
    stats.station_failed(KeyError("x"))
    for state in ("accepted", "accepted", "accepted", "rejected"):
        stats.station_state_changed(None, "connecting")
        stats.station_state_changed("connecting", state)
    for _ in range(3):
        stats.station_booted()
    stats.transaction_started()
    stats.transaction_ended("EVDisconnected")
    stats.connection_attempt("ok")
    stats.connection_attempt("refused")
    summary = build_summary(
        stats,
        scenario_name="t",
        stations_total=4,
        wall_seconds=12.5,
        simulated_seconds=125.0,
        csms_url="ws://127.0.0.1:9/ocpp",
        ocpp_version="2.1",
        errors=[],
    )
    summary.update(
        shard=None,
        workers=1,
        workers_died=0,
        ev_sessions=2,
        evs_turned_away=0,
        registrations={"Accepted": 3, "Rejected": 1},
    )
    return summary


@pytest.mark.parametrize(
    ("text", "measured"),
    [
        ("calls{action=Heartbeat} > 0", 100),
        ("calls > 0", 112),
        ("call_timeouts{action=Heartbeat} > 0", 1),
        ("call_errors > 0", 3),
        ("error_rate{action=Heartbeat} > 0", 0.02),
        ("error_rate{action=TransactionEvent} > 0", 1.0),
        ("error_rate > 0", 4 / 112),
        ("p50_ms{action=BootNotification} > 0", 5.0),
        ("p99_ms{action=BootNotification} > 0", 10.0),
        ("p95_ms > 0", 5.0),
        ("p99_ms > 0", 9.0),
        ("calls{action=Authorize} > 0", 0),
        ("callerrors > 0", 3),
        ("callerrors{code=FormatViolation} > 0", 2),
        ("callerrors{action=Heartbeat} > 0", 1),
        ("callerrors{action=Heartbeat,code=FormatViolation} > 0", 0),
        ("schema_violations{action=BootNotification} > 0", 1),
        ("csms_schema_violations > 0", 1),
        ("stations{registration=Rejected} > 0", 1),
        ("stations{registration=Pending} > 0", 0),
        ("stations > 0", 4),
        ("station_failures{error=KeyError} > 0", 1),
        ("station_failures > 0", 1),
        ("stations_booted > 0", 3),
        ("transactions_ended > 0", 1),
        ("connection_failures > 0", 1),
        ("stations_connected_peak > 0", 4),
        ("wall_seconds > 0", 12.5),
        ("workers_died > 0", 0),
    ],
)
def test_each_metric_reads_its_figure_of_the_summary(text: str, measured: float) -> None:
    assert measure(_recorded_run(), parse_threshold(text)) == pytest.approx(measured, abs=1e-6)


def test_every_number_of_the_summary_is_a_metric() -> None:
    summary = _recorded_run()
    numbers = {
        key
        for key, value in summary.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    numbers -= {"summary_version", "workers"}  # what the run is, not what it measured
    assert numbers <= set(METRICS)
    # The figures kept per action (and their totals over every action) are metrics too.
    row_metrics = {"count": "calls", "errors": "call_errors", "timeouts": "call_timeouts"}
    for key in summary["all_calls"]:
        assert row_metrics.get(key, key) in METRICS
    # And every metric reads a number from a summary that has each figure.
    for metric in METRICS.values():
        assert measure(summary, parse_threshold(f"{metric.name} >= 0")) is not None, metric


def test_thresholds_hold_or_fail_by_their_comparison_and_go_into_the_summary() -> None:
    summary = _recorded_run()
    thresholds = [
        parse_threshold("p99_ms{action=BootNotification} < 500"),
        parse_threshold("error_rate < 0.01"),
        parse_threshold("callerrors{code=FormatViolation} == 0"),
        parse_threshold("transactions_ended >= 1"),
        parse_threshold("p99_ms{action=Authorize} < 500"),
    ]
    results = conclude(summary, thresholds)
    assert [result.passed for result in results] == [True, False, False, True, False]
    assert results[4].measured is None  # never sent: no latency, and that fails
    assert results[1].describe() == "error_rate < 0.01: measured 0.035714"
    assert summary["thresholds"][2] == {
        "threshold": "callerrors{code=FormatViolation} == 0",
        "metric": "callerrors",
        "labels": {"code": "FormatViolation"},
        "comparison": "==",
        "value": 0.0,
        "measured": 2.0,
        "passed": False,
        "abort_on_fail": False,
        "aborted_run": False,
        "source": "scenario",
    }
    assert summary["no_station_accepted"] is None


def test_the_threshold_that_stopped_the_run_fails_even_if_it_recovered() -> None:
    threshold = parse_threshold("stations_booted >= 1", abort_on_fail=True)
    (result,) = evaluate([threshold], _recorded_run(), aborted_by=threshold)
    assert (result.passed, result.aborted_run, result.measured) == (False, True, 3)


def test_abort_on_fail_waits_for_its_delay_and_for_a_measured_figure() -> None:
    summary = _recorded_run()
    late = parse_threshold("stations_booted > 10", abort_on_fail=True, delay_abort_eval_s=30)
    unmeasured = parse_threshold("p99_ms{action=Authorize} < 1", abort_on_fail=True)
    plain = parse_threshold("stations_booted > 10")
    assert first_to_abort([late, unmeasured, plain], summary, run_s=29.0) is None
    aborting = first_to_abort([late, unmeasured, plain], summary, run_s=30.0)
    assert aborting is not None
    assert (aborting.threshold, aborting.measured, aborting.aborted_run) == (late, 3, True)


# -- a CSMS that accepted no station -------------------------------------------------------


def _nothing_booted(**changes: Any) -> dict[str, Any]:
    summary = _recorded_run()
    summary.update(
        stations_booted=0,
        callerrors={},
        schema_violations={},
        registrations={"Unknown": 4},
        calls={"BootNotification": {"count": 8, "errors": 0, "timeouts": 0}},
        errors=["station CP1: something"],
    )
    summary.update(changes)
    return summary


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"calls": {"BootNotification": {"count": 8, "errors": 0, "timeouts": 8}}},
            "it did not answer 8 BootNotifications within csms.call_timeout_s",
        ),
        (
            {"callerrors": {"BootNotification": {"SecurityError": 8}}},
            "it answered 8 BootNotifications with CALLERROR SecurityError",
        ),
        (
            {"registrations": {"Rejected": 4}},
            "it answered Rejected to the BootNotification of 4 stations",
        ),
        ({"registrations": {"Pending": 4}}, "it left 4 stations Pending"),
        (
            {"schema_violations": {"BootNotification": {"FormatViolation": 2}}},
            "2 of its answers to BootNotification broke the OCPP schema (FormatViolation)",
        ),
        (
            {"stations_connected_peak": 0, "connection_attempts": 9, "connection_failures": 9},
            "no station could connect to ws://127.0.0.1:9/ocpp (9 of 9 connection attempts failed",
        ),
        (
            {"connection_attempts": 0, "stations_connected_peak": 0},
            "the run ended before any station tried to connect",
        ),
        (
            {"calls": {"BootNotification": {"count": 4, "errors": 0, "timeouts": 0}}},
            "no BootNotification had been answered when the run ended",
        ),
    ],
)
def test_a_run_without_an_accepted_station_says_why(changes: dict[str, Any], reason: str) -> None:
    summary = _nothing_booted(**changes)
    said = no_station_accepted(summary)
    assert said is not None
    assert said.startswith("the CSMS at ws://127.0.0.1:9/ocpp accepted none of the 4 stations: ")
    assert reason in said
    conclude(summary, [])
    assert summary["no_station_accepted"] == said
    assert summary["errors"] == [said, "station CP1: something"]


def test_one_accepted_station_is_enough() -> None:
    assert no_station_accepted(_nothing_booted(stations_booted=1)) is None


def test_threshold_records_where_it_came_from() -> None:
    assert parse_threshold("calls > 1", source="command line") == Threshold(
        "calls", (), ">", 1.0, source="command line"
    )


def test_a_run_stopped_before_any_station_tried_blames_nothing_on_the_csms() -> None:
    untried = _nothing_booted(connection_attempts=0, stations_connected_peak=0)
    assert no_station_accepted(untried, interrupted=True) is None
    assert no_station_accepted(untried) is not None
    # Stopped after the CSMS had refused every station: the reason still stands.
    assert no_station_accepted(_nothing_booted(registrations={"Rejected": 4}), interrupted=True)
