"""Thresholds: pass/fail criteria over the figures of a run's summary, for CI.

A threshold is one line of a small grammar, as k6 and Locust users know them:

    threshold  = metric [ "{" label "=" value { "," label "=" value } "}" ] comparison number
    comparison = "<" | "<=" | ">" | ">=" | "==" | "!="

such as `p99_ms{action=BootNotification} < 500`, `error_rate < 0.01`,
`callerrors{code=FormatViolation} == 0` or `transactions_ended >= 100`.  Every metric is a
figure of the summary JSON (`report/summary.py`); `METRICS` names them, with the labels each
may be filtered by.  A label filter narrows a figure kept per action (or per error code,
registration status, error type); without one the figure is over the whole run.

A threshold holds when its figure was measured and the comparison is true.  A figure the run
could not measure (a percentile of an action never answered) fails its threshold: a CI job
that asked for a latency must not pass because there was none.

Thresholds are parsed before a run starts, so a typo costs a second, not a load test: a bad
expression raises `ThresholdSyntaxError`, which points at the character and lists the metrics.
This module is plain Python (the scenario model imports it; `fleetsim validate` loads no event
loop); the run evaluates thresholds on its live figures on a timer, never per message
(`run.py`), and on the final summary.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .ocpp.actions import CSMS_INITIATED, STATION_INITIATED
from .ocpp.errors import ErrorCode

__all__ = [
    "COMPARISONS",
    "METRICS",
    "Metric",
    "Threshold",
    "ThresholdResult",
    "ThresholdSyntaxError",
    "evaluate",
    "first_to_abort",
    "format_figure",
    "measure",
    "parse_threshold",
]

Summary = Mapping[str, Any]
Labels = Mapping[str, str]

#: The comparisons a threshold may use, longest first so `<=` is not read as `<`.
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}

#: The values each label may take; None where any value is allowed (exception type names).
_CALL_ACTIONS = frozenset(STATION_INITIATED)
_ERROR_CODES = frozenset({code.value for code in ErrorCode} | {"other"})
_VIOLATION_ACTIONS = frozenset(STATION_INITIATED | CSMS_INITIATED | {"unknown"})
_REGISTRATIONS = frozenset({"Accepted", "Pending", "Rejected", "Unknown"})


@dataclass(frozen=True)
class Metric:
    """A figure of the summary that a threshold may compare, and how to read it."""

    name: str
    #: What it is, for the README and for error messages.
    meaning: str
    #: Label name -> the values it may take (None: any).
    labels: Mapping[str, frozenset[str] | None]
    read: Callable[[Summary, Labels], float | None] = field(repr=False)

    @property
    def signature(self) -> str:
        """`p99_ms{action}`: the name with the labels it takes, as error messages list it."""
        if not self.labels:
            return self.name
        return f"{self.name}{{{','.join(self.labels)}}}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _top_level(key: str) -> Callable[[Summary, Labels], float | None]:
    def read(summary: Summary, labels: Labels) -> float | None:
        return _number(summary.get(key))

    return read


def _call_figure(key: str, *, zero_when_absent: bool) -> Callable[[Summary, Labels], float | None]:
    """A figure of `calls[action]`, or of `all_calls` without an action.  An action the run
    never sent has count 0, but no latency or error rate."""

    def read(summary: Summary, labels: Labels) -> float | None:
        action = labels.get("action")
        row = summary.get("all_calls") if action is None else summary.get("calls", {}).get(action)
        if row is None:
            return 0.0 if zero_when_absent and action is not None else None
        return _number(row.get(key))

    return read


def _by_action_and_code(key: str) -> Callable[[Summary, Labels], float | None]:
    """The sum of `summary[key][action][code]` over the entries the labels select."""

    def read(summary: Summary, labels: Labels) -> float | None:
        table = summary.get(key)
        if table is None:
            return None
        action, code = labels.get("action"), labels.get("code")
        total = 0
        for row_action, codes in table.items():
            if action is not None and row_action != action:
                continue
            for row_code, count in codes.items():
                if code is None or row_code == code:
                    total += count
        return float(total)

    return read


def _breakdown(
    total_key: str, table_key: str, label: str
) -> Callable[[Summary, Labels], float | None]:
    """`summary[total_key]`, or with the label `summary[table_key][value]` (0 if absent)."""

    def read(summary: Summary, labels: Labels) -> float | None:
        value = labels.get(label)
        if value is None:
            return _number(summary.get(total_key))
        table = summary.get(table_key)
        if table is None:
            return None
        return float(table.get(value, 0))

    return read


def _metrics() -> dict[str, Metric]:
    action = {"action": _CALL_ACTIONS}
    per_call = [
        ("calls", "count", "station-initiated CALLs sent", True),
        (
            "call_errors",
            "errors",
            "CALLs answered with a CALLERROR or an invalid answer, or cut by a lost connection",
            True,
        ),
        ("call_timeouts", "timeouts", "CALLs with no answer within csms.call_timeout_s", True),
        ("error_rate", "error_rate", "(call_errors + call_timeouts) / calls", False),
        ("p50_ms", "p50_ms", "median round trip of a CALL, ms", False),
        ("p95_ms", "p95_ms", "95th percentile round trip of a CALL, ms", False),
        ("p99_ms", "p99_ms", "99th percentile round trip of a CALL, ms", False),
    ]
    metrics = [
        Metric(name, meaning, action, _call_figure(key, zero_when_absent=zero))
        for name, key, meaning, zero in per_call
    ]
    metrics += [
        Metric(
            "callerrors",
            "CALLERRORs the CSMS answered, by the action of the CALL and the error code",
            {"action": _CALL_ACTIONS, "code": _ERROR_CODES},
            _by_action_and_code("callerrors"),
        ),
        Metric(
            "schema_violations",
            "frames from the CSMS that broke OCPP-J or the schema, by action and error code",
            {"action": _VIOLATION_ACTIONS, "code": _ERROR_CODES},
            _by_action_and_code("schema_violations"),
        ),
        Metric(
            "stations",
            "stations in the fleet, by their registration at the end (the CSMS's last "
            "BootNotification answer; Unknown: none yet)",
            {"registration": _REGISTRATIONS},
            _breakdown("stations_total", "registrations", "registration"),
        ),
        Metric(
            "station_failures",
            "unexpected errors in station logic, by exception type",
            {"error": None},
            _breakdown("station_failures", "station_failures_by_error", "error"),
        ),
    ]
    plain = [
        ("stations_total", "stations in the fleet"),
        ("stations_connected_peak", "most stations connected at once"),
        ("stations_booted", "stations the CSMS accepted at least once"),
        ("messages_sent", "WebSocket messages the stations sent"),
        ("messages_received", "WebSocket messages the stations received"),
        ("callerrors_received", "CALLERRORs the CSMS sent"),
        ("csms_schema_violations", "frames from the CSMS that broke OCPP-J or the schema"),
        ("frames_dropped", "frames with no readable id, or answers to no outstanding CALL"),
        ("connection_attempts", "WebSocket handshakes tried"),
        ("connection_failures", "WebSocket handshakes that failed"),
        ("transactions_started", "transactions the simulation started (sent or not)"),
        ("transactions_ended", "transactions the simulation ended (sent or not)"),
        ("transactions_started_acknowledged", "TransactionEvent Started the CSMS answered"),
        ("transactions_ended_acknowledged", "TransactionEvent Ended the CSMS answered"),
        ("transaction_events_acknowledged", "TransactionEvents the CSMS answered"),
        ("transactions_started_offline", "transactions started while the station was offline"),
        ("transaction_events_queued_offline", "TransactionEvents made offline and queued"),
        ("transaction_events_unsent", "TransactionEvents still queued when the run ended"),
        ("transaction_events_dropped", "TransactionEvents given up after MessageAttempts"),
        ("energy_delivered_wh", "energy metered into EVs, Wh"),
        ("ev_sessions", "EV visits"),
        ("evs_turned_away", "EVs that found no free EVSE at their site"),
        ("wall_seconds", "how long the run took, wall seconds"),
        ("simulated_seconds", "how long the run took, simulated seconds"),
        ("workers_died", "worker processes of --workers that died"),
    ]
    metrics += [Metric(name, meaning, {}, _top_level(name)) for name, meaning in plain]
    return {metric.name: metric for metric in metrics}


#: Every metric a threshold may name, by name.
METRICS: dict[str, Metric] = _metrics()


# -- parsing -------------------------------------------------------------------------------


class ThresholdSyntaxError(ValueError):
    """A threshold that cannot be read; `explain()` shows where and what would be right."""

    def __init__(self, text: str, column: int, reason: str) -> None:
        self.text = text
        #: 0-based index into `text` of the character at fault.
        self.column = column
        self.reason = reason
        super().__init__(reason)

    def explain(self) -> str:
        """The reason, the expression with a caret under the character at fault, and the
        metrics a threshold may name."""
        return (
            f"{self.reason}\n"
            f"    {self.text}\n"
            f"    {' ' * self.column}^\n"
            f"  metrics: {', '.join(metric.signature for metric in METRICS.values())}"
        )


@dataclass(frozen=True)
class Threshold:
    """One parsed threshold, and what the run does when it fails."""

    metric: str
    #: Label filters, as (name, value) pairs in the order given.
    labels: tuple[tuple[str, str], ...]
    comparison: str
    value: float
    #: Stop the run as soon as the threshold fails on the live figures (k6's abortOnFail).
    abort_on_fail: bool = False
    #: Run seconds (wall, or simulated-trio with --fast) before abort_on_fail is first
    #: checked, so the first seconds of a ramp-up do not stop a run.
    delay_abort_eval_s: float = 0.0
    #: Where it was given: "scenario" or "command line".
    source: str = "scenario"

    @property
    def text(self) -> str:
        """The threshold written the one canonical way: `p99_ms{action=Heartbeat} < 500`."""
        labels = ",".join(f"{name}={value}" for name, value in self.labels)
        filtered = f"{self.metric}{{{labels}}}" if labels else self.metric
        return f"{filtered} {self.comparison} {format_figure(self.value)}"

    def holds_for(self, measured: float | None) -> bool:
        return measured is not None and COMPARISONS[self.comparison](measured, self.value)


#: Comparisons from other languages, with the one meant.
_NOT_COMPARISONS = {"<>": "!=", "=<": "<=", "=>": ">=", "===": "=="}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LABEL_VALUE = re.compile(r"[A-Za-z0-9_.\-]+")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class _Reader:
    """A cursor over the expression that knows how to complain at its position."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def skip_spaces(self) -> None:
        while self.at < len(self.text) and self.text[self.at].isspace():
            self.at += 1

    def peek(self, token: str) -> bool:
        self.skip_spaces()
        return self.text.startswith(token, self.at)

    def match(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        self.skip_spaces()
        found = pattern.match(self.text, self.at)
        if found is not None:
            self.at = found.end()
        return found

    def fail(self, reason: str, column: int | None = None) -> ThresholdSyntaxError:
        return ThresholdSyntaxError(self.text, self.at if column is None else column, reason)

    def found(self) -> str:
        """What stands at the cursor, for "found ..." in a message."""
        self.skip_spaces()
        if self.at >= len(self.text):
            return "the end"
        return repr(self.text[self.at : self.at + 10].split()[0])


def parse_threshold(
    text: str,
    *,
    abort_on_fail: bool = False,
    delay_abort_eval_s: float = 0.0,
    source: str = "scenario",
) -> Threshold:
    """The threshold `text` says; raises `ThresholdSyntaxError` pointing at what is wrong."""
    reader = _Reader(text)
    name = reader.match(_NAME)
    if name is None:
        raise reader.fail(f"expected a metric name, found {reader.found()}")
    metric = METRICS.get(name.group())
    if metric is None:
        close = difflib.get_close_matches(name.group(), METRICS, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise reader.fail(f"unknown metric {name.group()!r}{hint}", name.start())
    labels: list[tuple[str, str]] = []
    if reader.peek("{"):
        reader.at += 1
        labels = _read_labels(reader, metric)
    for wrong, right in _NOT_COMPARISONS.items():
        if reader.peek(wrong):
            raise reader.fail(f"{wrong!r} is not a comparison; use {right}")
    comparison = next((op for op in COMPARISONS if reader.peek(op)), None)
    if comparison is None:
        if reader.peek("="):
            raise reader.fail("'=' is not a comparison; use == (or <=, >=)")
        raise reader.fail(
            f"expected a comparison (<, <=, >, >=, ==, !=) after {metric.name}, "
            f"found {reader.found()}"
        )
    reader.at += len(comparison)
    number = reader.match(_NUMBER)
    if number is None:
        raise reader.fail(f"expected a number after {comparison}, found {reader.found()}")
    reader.skip_spaces()
    if reader.at < len(text):
        raise reader.fail(f"unexpected {reader.found()} after the number; one comparison only")
    if delay_abort_eval_s < 0:
        raise ValueError(f"delay_abort_eval_s must be >= 0, got {delay_abort_eval_s}")
    return Threshold(
        metric.name,
        tuple(labels),
        comparison,
        float(number.group()),
        abort_on_fail=abort_on_fail,
        delay_abort_eval_s=delay_abort_eval_s,
        source=source,
    )


def _read_labels(reader: _Reader, metric: Metric) -> list[tuple[str, str]]:
    """The `name=value, ...}` after a `{`, each checked against what `metric` takes."""
    labels: list[tuple[str, str]] = []
    while True:
        label = reader.match(_NAME)
        if label is None:
            raise reader.fail(f"expected a label name, found {reader.found()}")
        name = label.group()
        if name not in metric.labels:
            takes = (
                f"it takes {' and '.join(metric.labels)}" if metric.labels else "it takes no labels"
            )
            raise reader.fail(f"{metric.name} has no label {name!r}; {takes}", label.start())
        if any(name == seen for seen, _ in labels):
            raise reader.fail(f"label {name!r} is given twice", label.start())
        if not reader.peek("="):
            raise reader.fail(f"expected = after {name}, found {reader.found()}")
        reader.at += 1
        reader.skip_spaces()
        quoted = reader.peek('"')
        if quoted:
            reader.at += 1
        value = reader.match(_LABEL_VALUE)
        if value is None:
            raise reader.fail(f"expected a value for {name}, found {reader.found()}")
        allowed = metric.labels[name]
        if allowed is not None and value.group() not in allowed:
            given = value.group()
            # A unique prefix (Boot) or a near miss (BootNotifcation) names what was meant.
            close = [known for known in allowed if known.lower().startswith(given.lower())]
            if len(close) != 1:
                close = difflib.get_close_matches(given, allowed, n=1, cutoff=0.6)
            hint = (
                f"did you mean {close[0]}?"
                if close
                else "expected one of " + ", ".join(sorted(allowed))
            )
            raise reader.fail(f"{value.group()!r} is not a known {name}; {hint}", value.start())
        if quoted:
            if not reader.text.startswith('"', reader.at):
                raise reader.fail('expected the closing "')
            reader.at += 1
        labels.append((name, value.group()))
        if reader.peek(","):
            reader.at += 1
            continue
        if reader.peek("}"):
            reader.at += 1
            return labels
        raise reader.fail(f"expected , or }} after {name}={value.group()}, found {reader.found()}")


# -- evaluating ----------------------------------------------------------------------------


def measure(summary: Summary, threshold: Threshold) -> float | None:
    """The figure `threshold` names, read from `summary`; None when the run has none."""
    value = METRICS[threshold.metric].read(summary, dict(threshold.labels))
    if value is None or math.isnan(value):
        return None
    return value


@dataclass(frozen=True)
class ThresholdResult:
    """A threshold with the figure it was compared against and its verdict."""

    threshold: Threshold
    measured: float | None
    passed: bool
    #: This threshold failed on the live figures and stopped the run (abort_on_fail).
    aborted_run: bool = False

    def describe(self) -> str:
        """`p99_ms{action=Heartbeat} < 500: measured 734`, as a failure message says it."""
        if self.measured is None:
            return f"{self.threshold.text}: not measured"
        return f"{self.threshold.text}: measured {format_figure(self.measured)}"

    def to_json(self) -> dict[str, Any]:
        threshold = self.threshold
        return {
            "threshold": threshold.text,
            "metric": threshold.metric,
            "labels": dict(threshold.labels),
            "comparison": threshold.comparison,
            "value": threshold.value,
            "measured": self.measured,
            "passed": self.passed,
            "abort_on_fail": threshold.abort_on_fail,
            "aborted_run": self.aborted_run,
            "source": threshold.source,
        }


def evaluate(
    thresholds: Iterable[Threshold], summary: Summary, *, aborted_by: Threshold | None = None
) -> list[ThresholdResult]:
    """Each threshold judged against `summary`.  The one that stopped the run (`aborted_by`)
    fails even if the figure recovered by the end: the run it judged was cut short."""
    results = []
    for threshold in thresholds:
        measured = measure(summary, threshold)
        aborted = threshold is aborted_by
        passed = threshold.holds_for(measured) and not aborted
        results.append(ThresholdResult(threshold, measured, passed, aborted))
    return results


def first_to_abort(
    thresholds: Iterable[Threshold], summary: Summary, run_s: float
) -> ThresholdResult | None:
    """The first abort_on_fail threshold past its delay that fails on the live `summary`.

    A figure not measured yet (no answer so far) does not stop a run: only a measured figure
    that breaks its threshold does.
    """
    for threshold in thresholds:
        if not threshold.abort_on_fail or run_s < threshold.delay_abort_eval_s:
            continue
        measured = measure(summary, threshold)
        if measured is not None and not threshold.holds_for(measured):
            return ThresholdResult(threshold, measured, False, aborted_run=True)
    return None


def format_figure(value: float) -> str:
    """A figure as a person writes it: 500, 0.01, 1216.691."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"
