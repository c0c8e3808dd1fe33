"""`RunStats`: what one process's stations did, for Prometheus and for the end-of-run summary.

Every link reports its frames and exchanges here.  Each report updates the Prometheus metrics of
`metrics.py` (through label children looked up once and kept) and the plain counters the summary
is built from.  Round-trip times are kept per action the way Locust keeps them: rounded to two
significant digits, so a million calls cost a few hundred dictionary entries and percentiles
stay exact to that rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import Counter

from . import metrics
from .trace import FrameTrace

__all__ = ["ActionStats", "LinkObserver", "NullObserver", "RunStats", "percentile_ms"]


_NOT_CONNECTED = frozenset({"disconnected", "connecting"})


class LinkObserver(Protocol):
    """What a link reports; `RunStats` records it, `NullObserver` drops it."""

    trace: FrameTrace | None

    def frame_sent(self) -> None: ...
    def frame_received(self) -> None: ...
    def call_done(self, action: str, outcome: str, round_trip_s: float | None) -> None: ...
    def callerror_received(self, action: str, code: str) -> None: ...
    def incoming_done(self, action: str, outcome: str) -> None: ...
    def csms_violation(self, action: str | None, code: str) -> None: ...
    def frame_dropped(self, reason: str) -> None: ...
    def internal_error(self, error: BaseException) -> None: ...


class NullObserver:
    """An observer that records nothing (the embedded CSMS's links use it)."""

    trace: FrameTrace | None = None

    def frame_sent(self) -> None:
        pass

    def frame_received(self) -> None:
        pass

    def call_done(self, action: str, outcome: str, round_trip_s: float | None) -> None:
        pass

    def callerror_received(self, action: str, code: str) -> None:
        pass

    def incoming_done(self, action: str, outcome: str) -> None:
        pass

    def csms_violation(self, action: str | None, code: str) -> None:
        pass

    def frame_dropped(self, reason: str) -> None:
        pass

    def internal_error(self, error: BaseException) -> None:
        pass


def _round_to_two_digits(value: int) -> int:
    if value < 100:
        return value
    magnitude: int = 10 ** (int(math.log10(value)) - 1)
    return round(value / magnitude) * magnitude


def percentile_ms(histogram_us: dict[int, int], fraction: float) -> float | None:
    """The `fraction` percentile (0..1) of a rounded round-trip histogram, in milliseconds."""
    total = sum(histogram_us.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for micros in sorted(histogram_us):
        seen += histogram_us[micros]
        if seen >= rank:
            return micros / 1000
    return None  # pragma: no cover - rank <= total


@dataclass
class ActionStats:
    """Station-initiated CALLs of one action."""

    count: int = 0
    errors: int = 0
    timeouts: int = 0
    round_trips_us: dict[int, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "p50_ms": percentile_ms(self.round_trips_us, 0.50),
            "p95_ms": percentile_ms(self.round_trips_us, 0.95),
            "p99_ms": percentile_ms(self.round_trips_us, 0.99),
        }


class RunStats:
    """The recorder for one process's fleet; see the module docstring."""

    def __init__(self, trace: FrameTrace | None = None) -> None:
        self.trace = trace
        self.messages_sent = 0
        self.messages_received = 0
        self.calls: dict[str, ActionStats] = {}
        self.callerrors_received = 0
        self.csms_schema_violations = 0
        self.frames_dropped = 0
        self.transactions_started = 0
        self.transactions_ended = 0
        self.energy_delivered_wh = 0.0
        self.transaction_events_dropped = 0
        self.connection_attempts = 0
        self.connection_failures = 0
        self.stations_connected = 0
        self.stations_connected_peak = 0
        self.stations_booted = 0
        self.station_failures = 0
        self._sent = metrics.WEBSOCKET_MESSAGES.labels("sent")
        self._received = metrics.WEBSOCKET_MESSAGES.labels("received")
        self._message_children: dict[tuple[str, str, str], Counter] = {}
        self._duration_children: dict[str, Any] = {}

    # -- frames and exchanges (called per message: keep these cheap) ----------------------

    def frame_sent(self) -> None:
        self.messages_sent += 1
        self._sent.inc()

    def frame_received(self) -> None:
        self.messages_received += 1
        self._received.inc()

    def _count_message(self, action: str, direction: str, outcome: str) -> None:
        key = (action, direction, outcome)
        child = self._message_children.get(key)
        if child is None:
            child = self._message_children[key] = metrics.MESSAGES.labels(*key)
        child.inc()

    def call_done(self, action: str, outcome: str, round_trip_s: float | None) -> None:
        stats = self.calls.get(action)
        if stats is None:
            stats = self.calls[action] = ActionStats()
        stats.count += 1
        if outcome == "timeout":
            stats.timeouts += 1
        elif outcome != "ok" and outcome != "sent":
            stats.errors += 1
        if round_trip_s is not None:
            micros = _round_to_two_digits(int(round_trip_s * 1_000_000))
            stats.round_trips_us[micros] = stats.round_trips_us.get(micros, 0) + 1
            duration = self._duration_children.get(action)
            if duration is None:
                duration = self._duration_children[action] = metrics.CALL_DURATION.labels(action)
            duration.observe(round_trip_s)
        self._count_message(action, "station_to_csms", outcome)

    def callerror_received(self, action: str, code: str) -> None:
        self.callerrors_received += 1
        metrics.CALLERRORS_RECEIVED.labels(action, metrics.error_code_label(code)).inc()

    def incoming_done(self, action: str, outcome: str) -> None:
        self._count_message(action, "csms_to_station", outcome)

    def csms_violation(self, action: str | None, code: str) -> None:
        self.csms_schema_violations += 1
        metrics.CSMS_SCHEMA_VIOLATIONS.labels(action or "unknown", code).inc()

    def frame_dropped(self, reason: str) -> None:
        self.frames_dropped += 1
        metrics.FRAMES_DROPPED.labels(reason).inc()

    # -- stations and transactions --------------------------------------------------------

    def connection_attempt(self, outcome: str) -> None:
        self.connection_attempts += 1
        if outcome != "ok":
            self.connection_failures += 1
        metrics.CONNECTION_ATTEMPTS.labels(outcome).inc()

    def station_state_changed(self, old: str | None, new: str | None) -> None:
        if old is not None:
            metrics.STATIONS.labels(old).dec()
        if new is not None:
            metrics.STATIONS.labels(new).inc()
        was_connected = old is not None and old not in _NOT_CONNECTED
        is_connected = new is not None and new not in _NOT_CONNECTED
        if is_connected and not was_connected:
            self.stations_connected += 1
            self.stations_connected_peak = max(
                self.stations_connected_peak, self.stations_connected
            )
        elif was_connected and not is_connected:
            self.stations_connected -= 1

    def station_booted(self) -> None:
        self.stations_booted += 1

    def internal_error(self, error: BaseException) -> None:
        """A station handler failed while answering the CSMS; the station goes on."""
        self.station_failed(error)

    def station_failed(self, error: BaseException) -> None:
        self.station_failures += 1
        metrics.STATION_FAILURES.labels(type(error).__name__).inc()

    def transaction_started(self) -> None:
        self.transactions_started += 1
        metrics.TRANSACTIONS_STARTED.inc()

    def transaction_ended(self, stopped_reason: str) -> None:
        self.transactions_ended += 1
        metrics.TRANSACTIONS_ENDED.labels(stopped_reason).inc()

    def transaction_event_dropped(self) -> None:
        """A TransactionEvent the CSMS refused MessageAttempts times (E13)."""
        self.transaction_events_dropped += 1
        metrics.TRANSACTION_EVENTS_DROPPED.inc()

    def energy_delivered(self, energy_wh: float) -> None:
        if energy_wh > 0:
            self.energy_delivered_wh += energy_wh
            metrics.ENERGY_DELIVERED.inc(energy_wh * 3600.0)

    # -- the summary ----------------------------------------------------------------------

    def totals(self) -> dict[str, Any]:
        """The counters of the summary JSON that this process knows."""
        return {
            "stations_connected_peak": self.stations_connected_peak,
            "stations_booted": self.stations_booted,
            "messages_sent": self.messages_sent,
            "messages_received": self.messages_received,
            "calls": {action: s.summary() for action, s in sorted(self.calls.items())},
            "callerrors_received": self.callerrors_received,
            "csms_schema_violations": self.csms_schema_violations,
            "frames_dropped": self.frames_dropped,
            "connection_attempts": self.connection_attempts,
            "connection_failures": self.connection_failures,
            "station_failures": self.station_failures,
            "transactions_started": self.transactions_started,
            "transactions_ended": self.transactions_ended,
            "transaction_events_dropped": self.transaction_events_dropped,
            "energy_delivered_wh": round(self.energy_delivered_wh, 3),
        }
