"""Every Prometheus metric fleetsim exports, defined here and nowhere else.

Naming follows Prometheus practice: a `fleetsim_` prefix, base units (seconds, joules), `_total`
on counters, and labels from small fixed sets (action, direction, outcome, error code, state).
A station id is never a label: 30,000 stations would make 30,000 series.  Error codes a CSMS
invents are folded into `other` for the same reason (`error_code_label`).

The values live in plain counters of `RunStats`, which the per-message path bumps for the
price of an integer addition; `RunStatsCollector` turns them into metric families when
Prometheus scrapes.  A client_python `Counter.inc()` per frame would take a lock and cost more
than the frame's own bookkeeping.  The collector takes several `RunStats` and adds them up, so
stations split over workers still export one set of totals.

Label values known in advance are exported at zero from the start, so a dashboard's `rate()`
sees the first increment.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .ocpp.errors import ErrorCode


class Snapshots(Protocol):
    """A source of counters (`stats.RunStats`): a copy of them per scrape."""

    def snapshot(self) -> dict[str, Any]: ...


__all__ = [
    "ALL_METRICS",
    "CALL_DURATION",
    "CALL_DURATION_BUCKETS_S",
    "CALLERRORS_RECEIVED",
    "CONNECTION_ATTEMPTS",
    "CONNECTION_OUTCOMES",
    "CSMS_SCHEMA_VIOLATIONS",
    "ENERGY_DELIVERED",
    "FRAMES_DROPPED",
    "MESSAGES",
    "MetricSpec",
    "RunStatsCollector",
    "STATIONS",
    "STATION_FAILURES",
    "STATION_STATES",
    "TRANSACTIONS_ENDED",
    "TRANSACTIONS_STARTED",
    "TRANSACTION_EVENTS_DROPPED",
    "WEBSOCKET_MESSAGES",
    "error_code_label",
]

#: How an exchange ended, from the station's side.  ok: a valid answer; callerror: a
#: CALLERROR; timeout: no answer in time; invalid: an answer that broke the schema; closed: the
#: connection went before the answer; sent: a SEND frame, which has no answer.
OUTCOMES = ("ok", "callerror", "timeout", "invalid", "closed", "sent")
STATION_STATES = ("disconnected", "connecting", "booting", "pending", "rejected", "accepted")
CONNECTION_OUTCOMES = ("ok", "refused", "rejected", "timeout")
#: Fine below 5 ms, where a CSMS's answers on a local network fall and where a load tester's
#: own share of the round trip would show; coarse beyond, up to the default CALL timeout.
CALL_DURATION_BUCKETS_S = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.004,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)

_KNOWN_CODES = frozenset(code.value for code in ErrorCode)


def error_code_label(code: str) -> str:
    """`code` if OCPP-J defines it, else `other`, so a CSMS cannot grow the label set."""
    return code if code in _KNOWN_CODES else "other"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """A metric's name, meaning, type and labels."""

    name: str
    documentation: str
    kind: str
    labels: tuple[str, ...] = ()


STATIONS = MetricSpec(
    "fleetsim_stations",
    "Virtual stations by connection and registration state.",
    "gauge",
    ("state",),
)
MESSAGES = MetricSpec(
    "fleetsim_ocpp_messages_total",
    "OCPP exchanges (a CALL and its answer, or a SEND) by action, who started them "
    "(station_to_csms, csms_to_station) and how they ended.",
    "counter",
    ("action", "direction", "outcome"),
)
CALL_DURATION = MetricSpec(
    "fleetsim_ocpp_call_duration_seconds",
    "Time from sending a station CALL until its CALLRESULT or CALLERROR arrives.",
    "histogram",
    ("action",),
)
WEBSOCKET_MESSAGES = MetricSpec(
    "fleetsim_websocket_messages_total",
    "WebSocket text messages, every frame of every station.",
    "counter",
    ("direction",),
)
CONNECTION_ATTEMPTS = MetricSpec(
    "fleetsim_connection_attempts_total",
    "Attempts to open a station's WebSocket, by result.",
    "counter",
    ("outcome",),
)
CALLERRORS_RECEIVED = MetricSpec(
    "fleetsim_callerrors_received_total",
    "CALLERRORs the CSMS sent in answer to station CALLs.",
    "counter",
    ("action", "code"),
)
CSMS_SCHEMA_VIOLATIONS = MetricSpec(
    "fleetsim_csms_schema_violations_total",
    "Messages from the CSMS that broke OCPP-J framing or the OCPP JSON schema.",
    "counter",
    ("action", "code"),
)
FRAMES_DROPPED = MetricSpec(
    "fleetsim_frames_dropped_total",
    "Frames from the CSMS that could not be used: no readable message id (unreadable), or an "
    "answer that matched no outstanding CALL (late).",
    "counter",
    ("reason",),
)
TRANSACTIONS_STARTED = MetricSpec(
    "fleetsim_transactions_started_total",
    "Transactions the stations started (TransactionEvent Started).",
    "counter",
)
TRANSACTIONS_ENDED = MetricSpec(
    "fleetsim_transactions_ended_total",
    "Transactions the stations ended (TransactionEvent Ended), by stoppedReason.",
    "counter",
    ("reason",),
)
TRANSACTION_EVENTS_DROPPED = MetricSpec(
    "fleetsim_transaction_events_dropped_total",
    "TransactionEvents given up after MessageAttempts CALLERRORs or timeouts (E13).",
    "counter",
)
ENERGY_DELIVERED = MetricSpec(
    "fleetsim_energy_delivered_joules_total",
    "Energy the stations metered into EVs, in joules (1 Wh = 3600 J; dashboards show kWh).",
    "counter",
)
STATION_FAILURES = MetricSpec(
    "fleetsim_station_failures_total",
    "Unexpected errors in station logic, by exception type; the rest of the fleet goes on.",
    "counter",
    ("error",),
)

ALL_METRICS = (
    STATIONS,
    MESSAGES,
    CALL_DURATION,
    WEBSOCKET_MESSAGES,
    CONNECTION_ATTEMPTS,
    CALLERRORS_RECEIVED,
    CSMS_SCHEMA_VIOLATIONS,
    FRAMES_DROPPED,
    TRANSACTIONS_STARTED,
    TRANSACTIONS_ENDED,
    TRANSACTION_EVENTS_DROPPED,
    ENERGY_DELIVERED,
    STATION_FAILURES,
)


def _family(spec: MetricSpec) -> CounterMetricFamily | GaugeMetricFamily:
    if spec.kind == "gauge":
        return GaugeMetricFamily(spec.name, spec.documentation, labels=spec.labels)
    return CounterMetricFamily(spec.name, spec.documentation, labels=spec.labels)


def _sum_by_key(dicts: Iterable[dict[tuple[Any, ...], float]]) -> dict[tuple[Any, ...], float]:
    total: dict[tuple[str, ...], float] = {}
    for values in dicts:
        for key, value in values.items():
            total[key] = total.get(key, 0) + value
    return total


class RunStatsCollector(Collector):
    """Exports the metrics of `ALL_METRICS` from the `RunStats` that `sources()` returns."""

    def __init__(self, sources: Callable[[], Iterable[Snapshots]]) -> None:
        self._sources = sources

    def describe(self) -> Iterator[Metric]:
        # Without describe(), registering would call collect() once to learn the names.
        for spec in ALL_METRICS:
            if spec.kind == "histogram":
                yield HistogramMetricFamily(spec.name, spec.documentation, labels=spec.labels)
            else:
                yield _family(spec)

    def collect(self) -> Iterator[Metric]:
        snapshots = [source.snapshot() for source in self._sources()]

        def labelled(spec: MetricSpec, key: str, known: Iterable[str] = ()) -> Metric:
            family = _family(spec)
            values = _sum_by_key(
                {k if isinstance(k, tuple) else (k,): v for k, v in snap[key].items()}
                for snap in snapshots
            )
            for label in known:
                values.setdefault((label,), 0)
            for labels, value in sorted(values.items()):
                family.add_metric(list(labels), value)
            return family

        def single(spec: MetricSpec, key: str, scale: float = 1.0) -> Metric:
            family = _family(spec)
            family.add_metric([], sum(snap[key] for snap in snapshots) * scale)
            return family

        yield labelled(STATIONS, "stations_by_state", STATION_STATES)
        yield labelled(MESSAGES, "exchanges")
        websocket = _family(WEBSOCKET_MESSAGES)
        websocket.add_metric(["sent"], sum(snap["messages_sent"] for snap in snapshots))
        websocket.add_metric(["received"], sum(snap["messages_received"] for snap in snapshots))
        yield websocket
        yield labelled(CONNECTION_ATTEMPTS, "connection_attempts_by_outcome", CONNECTION_OUTCOMES)
        yield labelled(CALLERRORS_RECEIVED, "callerrors")
        yield labelled(CSMS_SCHEMA_VIOLATIONS, "violations")
        yield labelled(FRAMES_DROPPED, "frames_dropped_by_reason", ("unreadable", "late"))
        yield single(TRANSACTIONS_STARTED, "transactions_started")
        yield labelled(TRANSACTIONS_ENDED, "transactions_ended_by_reason")
        yield single(TRANSACTION_EVENTS_DROPPED, "transaction_events_dropped")
        yield single(ENERGY_DELIVERED, "energy_delivered_wh", 3600.0)
        yield labelled(STATION_FAILURES, "station_failures_by_error")
        yield self._durations(snapshots)

    @staticmethod
    def _durations(snapshots: list[dict[str, Any]]) -> Metric:
        family = HistogramMetricFamily(
            CALL_DURATION.name, CALL_DURATION.documentation, labels=CALL_DURATION.labels
        )
        bounds = (*CALL_DURATION_BUCKETS_S, math.inf)
        merged: dict[str, tuple[list[int], float]] = {}
        for snap in snapshots:
            for action, (counts, total_s) in snap["durations"].items():
                into = merged.setdefault(action, ([0] * len(bounds), 0.0))
                for index, count in enumerate(counts):
                    into[0][index] += count
                merged[action] = (into[0], into[1] + total_s)
        for action, (counts, total_s) in sorted(merged.items()):
            cumulative = 0
            buckets = []
            for bound, count in zip(bounds, counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if math.isinf(bound) else repr(bound), cumulative))
            family.add_metric([action], buckets, total_s)
        return family
