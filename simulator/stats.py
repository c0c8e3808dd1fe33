"""`RunStats`: what one process's stations did, for Prometheus and for the end-of-run summary.

Every link reports its frames and exchanges here, and every report is a few integer additions:
this runs for each message of each station.  `metrics.RunStatsCollector` reads these counters
when Prometheus scrapes, and `totals()` feeds the summary.  Round-trip times are kept twice,
cheaply: in the Prometheus buckets of `metrics.CALL_DURATION_BUCKETS_S`, and rounded to two
significant digits (as Locust keeps them), so a million calls cost a few hundred dictionary
entries and the summary's percentiles stay exact to that rounding.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .link import ConnectOutcome
from .metrics import (
    CALL_DURATION_BUCKETS_S,
    CONNECT_DURATION_BUCKETS_S,
    FrameDropReason,
    error_code_label,
)
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
    def frame_dropped(self, reason: FrameDropReason) -> None: ...
    def malformed_frame(self, kind: str) -> None: ...
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

    def frame_dropped(self, reason: FrameDropReason) -> None:
        pass

    def malformed_frame(self, kind: str) -> None:
        pass

    def internal_error(self, error: BaseException) -> None:
        pass


def _round_to_two_digits(value: int) -> int:
    """`value` rounded to two significant digits (1234 -> 1200), without a logarithm."""
    if value < 100:
        return value
    magnitude = 10
    while value >= magnitude * 100:
        magnitude *= 10
    return (value + magnitude // 2) // magnitude * magnitude


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
    #: Non-cumulative counts per bucket of `CALL_DURATION_BUCKETS_S`, then +Inf.
    duration_buckets: list[int] = field(
        default_factory=lambda: [0] * (len(CALL_DURATION_BUCKETS_S) + 1)
    )
    duration_sum_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        return _call_row(self.count, self.errors, self.timeouts, self.round_trips_us)


def _call_row(
    count: int, errors: int, timeouts: int, round_trips_us: dict[int, int]
) -> dict[str, Any]:
    """A row of the summary's `calls` (or its `all_calls`): counts, error rate, percentiles."""
    return {
        "count": count,
        "errors": errors,
        "timeouts": timeouts,
        "error_rate": round((errors + timeouts) / count, 6) if count else None,
        "p50_ms": percentile_ms(round_trips_us, 0.50),
        "p95_ms": percentile_ms(round_trips_us, 0.95),
        "p99_ms": percentile_ms(round_trips_us, 0.99),
    }


def _all_calls_row(calls: Iterable[ActionStats]) -> dict[str, Any]:
    """The `calls` figures over every action at once; percentiles from the merged histogram."""
    count = errors = timeouts = 0
    merged: dict[int, int] = {}
    for stats in calls:
        count += stats.count
        errors += stats.errors
        timeouts += stats.timeouts
        _add_counts(merged, stats.round_trips_us)
    return _call_row(count, errors, timeouts, merged)


def _by_action(counts: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    """{(action, code): n} as {action: {code: n}}, sorted, as the summary JSON shows it."""
    table: dict[str, dict[str, int]] = {}
    for (action, code), count in sorted(counts.items()):
        table.setdefault(action, {})[code] = count
    return table


#: The plain number attributes of `RunStats`, and its dictionaries of counts, for `to_wire`.
_WIRE_COUNTERS = (
    "messages_sent",
    "messages_received",
    "transactions_started",
    "transaction_events_dropped",
    "transaction_events_acknowledged",
    "transactions_started_acknowledged",
    "transactions_ended_acknowledged",
    "transactions_started_offline",
    "transaction_events_queued_offline",
    "transaction_events_unsent",
    "cost_limits_reached",
    "energy_delivered_wh",
    "stations_connected",
    "stations_connected_peak",
    "stations_booted",
    "reconnects",
    "connect_duration_sum_s",
    "ramp_written_per_s",
    "ramp_rate_per_s",
    "ramp_lowest_per_s",
    "ramp_slowdowns",
    "handshakes_in_flight",
    "handshakes_waiting",
)
#: Numbers of `RunStats` that combine as the largest of the parts, not their sum.
_WIRE_MAXIMA = ("ramp_slowed_by_timeouts",)
_WIRE_MAPS = (
    "exchanges",
    "callerrors",
    "violations",
    "frames_dropped_by_reason",
    "malformed_frames_by_kind",
    "connection_attempts_by_outcome",
    "stations_by_state",
    "transactions_ended_by_reason",
    "station_failures_by_error",
    "payments_by_outcome",
    "battery_swaps_by_outcome",
    "faults_injected_by_kind",
)


def _pairs(counts: dict[Any, int]) -> list[list[Any]]:
    """A dictionary of counts as JSON pairs; tuple keys become lists."""
    return [[list(key) if isinstance(key, tuple) else key, count] for key, count in counts.items()]


def _key(key: Any) -> Any:
    """The dictionary key `_pairs` wrote: a list back to a tuple."""
    return tuple(key) if isinstance(key, list) else key


def _add_counts(into: dict[Any, int], counts: dict[Any, int]) -> None:
    for key, count in counts.items():
        into[key] = into.get(key, 0) + count


def _bump(counts: dict[Any, int], key: Any) -> None:
    counts[key] = counts.get(key, 0) + 1


class RunStats:
    """The recorder for one process's fleet; see the module docstring."""

    def __init__(self, trace: FrameTrace | None = None) -> None:
        self.trace = trace
        self.messages_sent = 0
        self.messages_received = 0
        self.calls: dict[str, ActionStats] = {}
        #: (action, direction, outcome) -> exchanges; see `metrics.MESSAGES`.
        self.exchanges: dict[tuple[str, str, str], int] = {}
        self.callerrors: dict[tuple[str, str], int] = {}
        self.violations: dict[tuple[str, str], int] = {}
        self.frames_dropped_by_reason: dict[str, int] = {}
        #: Broken frames from the CSMS by what was wrong (`ocpp.MALFORMED_FRAME_KINDS`).
        self.malformed_frames_by_kind: dict[str, int] = {}
        #: Connection attempts by `link.ConnectOutcome`.
        self.connection_attempts_by_outcome: dict[str, int] = {}
        self.stations_by_state: dict[str, int] = {}
        self.transactions_started = 0
        self.transactions_ended_by_reason: dict[str, int] = {}
        self.transaction_events_dropped = 0
        #: What the CSMS confirmed: TransactionEvents it answered with a CALLRESULT, and of
        #: those the Started and Ended ones.  The counters above count what the simulation did.
        self.transaction_events_acknowledged = 0
        self.transactions_started_acknowledged = 0
        self.transactions_ended_acknowledged = 0
        #: Transactions that began while their station was not online, and the events made
        #: offline (queued for the next boot), and those still queued when the run ended.
        self.transactions_started_offline = 0
        self.transaction_events_queued_offline = 0
        self.transaction_events_unsent = 0
        self.energy_delivered_wh = 0.0
        self.station_failures_by_error: dict[str, int] = {}
        #: Ad hoc payments (C17-C25), by outcome (`metrics.PAYMENT_OUTCOMES`): settlements
        #: settled, canceled, settlement_failed; cards refused: declined, no_tariff (no tariff
        #: prices the session), not_authorized; prepaid_exhausted (a prepaid card's balance
        #: ran out while charging); web payments web_started, web_timeout.
        self.payments_by_outcome: dict[str, int] = {}
        #: Transactions whose running cost reached their maxCost limit (E16, CostLimitReached);
        #: those that ended for it are `transactions_ended_by_reason["LocalOutOfCredit"]`.
        self.cost_limits_reached = 0
        #: Battery swaps (S01-S04), by outcome (`metrics.BATTERY_SWAP_OUTCOMES`).
        self.battery_swaps_by_outcome: dict[str, int] = {}
        #: Faults the scenario's `faults` section made happen, by kind (simulator/faults.py):
        #: connections dropped, stations cut off, answers delayed or withheld, frames sent.
        self.faults_injected_by_kind: dict[str, int] = {}
        self.stations_connected = 0
        self.stations_connected_peak = 0
        self.stations_booted = 0
        #: Connections lost while the run went on (each one sends its station reconnecting).
        self.reconnects = 0
        #: Non-cumulative counts per bucket of `CONNECT_DURATION_BUCKETS_S`, then +Inf.
        self.connect_duration_buckets = [0] * (len(CONNECT_DURATION_BUCKETS_S) + 1)
        self.connect_duration_sum_s = 0.0
        #: The ramp (`fleet.Ramp`): the start rate written in the scenario, the rate now (0
        #: once every station has started), the lowest it fell to, how often it was slowed
        #: down and the most handshakes that timed out in one look (one second) that slowed
        #: it; handshakes running now and stations waiting for a handshake slot.  Set per
        #: connection, never per message.
        self.ramp_written_per_s = 0.0
        self.ramp_rate_per_s = 0.0
        self.ramp_lowest_per_s = 0.0
        self.ramp_slowdowns = 0
        self.ramp_slowed_by_timeouts = 0
        self.handshakes_in_flight = 0
        self.handshakes_waiting = 0
        #: Set when the run ends: CALLs cut short by our own shutdown are not CSMS errors.
        self.stopping = False

    # -- frames and exchanges (called per message: keep these cheap) ----------------------

    def frame_sent(self) -> None:
        self.messages_sent += 1

    def frame_received(self) -> None:
        self.messages_received += 1

    def call_done(self, action: str, outcome: str, round_trip_s: float | None) -> None:
        if self.stopping and outcome == "closed":
            return
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
            rounded = stats.round_trips_us
            rounded[micros] = rounded.get(micros, 0) + 1
            stats.duration_buckets[bisect_left(CALL_DURATION_BUCKETS_S, round_trip_s)] += 1
            stats.duration_sum_s += round_trip_s
        _bump(self.exchanges, (action, "station_to_csms", outcome))

    def callerror_received(self, action: str, code: str) -> None:
        _bump(self.callerrors, (action, error_code_label(code)))

    def incoming_done(self, action: str, outcome: str) -> None:
        _bump(self.exchanges, (action, "csms_to_station", outcome))

    def csms_violation(self, action: str | None, code: str) -> None:
        _bump(self.violations, (action or "unknown", error_code_label(code)))

    def frame_dropped(self, reason: FrameDropReason) -> None:
        _bump(self.frames_dropped_by_reason, reason)

    def malformed_frame(self, kind: str) -> None:
        _bump(self.malformed_frames_by_kind, kind)

    def internal_error(self, error: BaseException) -> None:
        """A station handler failed while answering the CSMS; the station goes on."""
        self.station_failed(error)

    # -- stations and transactions --------------------------------------------------------

    def connection_attempt(self, outcome: ConnectOutcome) -> None:
        _bump(self.connection_attempts_by_outcome, outcome)

    def station_state_changed(self, old: str | None, new: str | None) -> None:
        by_state = self.stations_by_state
        if old is not None:
            by_state[old] -= 1
        if new is not None:
            by_state[new] = by_state.get(new, 0) + 1
        was_connected = old is not None and old not in _NOT_CONNECTED
        is_connected = new is not None and new not in _NOT_CONNECTED
        if is_connected and not was_connected:
            self.stations_connected += 1
            self.stations_connected_peak = max(
                self.stations_connected_peak, self.stations_connected
            )
        elif was_connected and not is_connected:
            self.stations_connected -= 1
            if not self.stopping:
                self.reconnects += 1

    def connected(self, duration_s: float) -> None:
        """A connection opened (TCP, TLS and the WebSocket handshake) in `duration_s`."""
        self.connect_duration_buckets[bisect_left(CONNECT_DURATION_BUCKETS_S, duration_s)] += 1
        self.connect_duration_sum_s += duration_s

    def station_booted(self) -> None:
        self.stations_booted += 1

    def station_failed(self, error: BaseException) -> None:
        _bump(self.station_failures_by_error, type(error).__name__)

    def transaction_started(self) -> None:
        self.transactions_started += 1

    def transaction_ended(self, stopped_reason: str) -> None:
        _bump(self.transactions_ended_by_reason, stopped_reason)

    def payment(self, outcome: str) -> None:
        """An ad hoc payment came to `outcome` (C17-C25; see `payments_by_outcome`)."""
        _bump(self.payments_by_outcome, outcome)

    def cost_limit_reached(self) -> None:
        """A transaction's running cost reached its maxCost limit (E16, CostLimitReached)."""
        self.cost_limits_reached += 1

    def battery_swap(self, outcome: str) -> None:
        """A battery swap came to `outcome`: local or remote (done), no_battery_available,
        not_authorized (refused), out_timeout (the driver left the pack, BatteryOutTimeout)."""
        _bump(self.battery_swaps_by_outcome, outcome)

    def fault_injected(self, kind: str, count: int = 1) -> None:
        """A fault on purpose happened `count` times (one per station or frame it hit)."""
        if count:
            self.faults_injected_by_kind[kind] = self.faults_injected_by_kind.get(kind, 0) + count

    def transaction_event_dropped(self) -> None:
        """A TransactionEvent the CSMS refused MessageAttempts times (E13)."""
        self.transaction_events_dropped += 1

    def transaction_event_acknowledged(self, event_type: str) -> None:
        """The CSMS answered a TransactionEvent with a CALLRESULT: it heard of it."""
        self.transaction_events_acknowledged += 1
        if event_type == "Started":
            self.transactions_started_acknowledged += 1
        elif event_type == "Ended":
            self.transactions_ended_acknowledged += 1

    def transaction_event_queued_offline(self, event_type: str) -> None:
        """A TransactionEvent was made while its station was offline (E12): it waits in the
        station's queue for the next boot."""
        self.transaction_events_queued_offline += 1
        if event_type == "Started":
            self.transactions_started_offline += 1

    def energy_delivered(self, energy_wh: float) -> None:
        if energy_wh > 0:
            self.energy_delivered_wh += energy_wh

    # -- totals ---------------------------------------------------------------------------

    @property
    def transactions_ended(self) -> int:
        return sum(self.transactions_ended_by_reason.values())

    @property
    def callerrors_received(self) -> int:
        return sum(self.callerrors.values())

    @property
    def csms_schema_violations(self) -> int:
        return sum(self.violations.values())

    @property
    def frames_dropped(self) -> int:
        return sum(self.frames_dropped_by_reason.values())

    @property
    def connection_attempts(self) -> int:
        return sum(self.connection_attempts_by_outcome.values())

    @property
    def connection_failures(self) -> int:
        return self.connection_attempts - self.connection_attempts_by_outcome.get("ok", 0)

    @property
    def station_failures(self) -> int:
        return sum(self.station_failures_by_error.values())

    def snapshot(self) -> dict[str, Any]:
        """Copies of the counters the Prometheus collector exports.

        The metrics endpoint runs in its own thread; each copy is made by a single C-level
        call, so the trio thread cannot change a dictionary while it is being read.
        """
        return {
            "stations_by_state": dict(self.stations_by_state),
            "exchanges": dict(self.exchanges),
            "messages_sent": self.messages_sent,
            "messages_received": self.messages_received,
            "connection_attempts_by_outcome": dict(self.connection_attempts_by_outcome),
            "callerrors": dict(self.callerrors),
            "violations": dict(self.violations),
            "frames_dropped_by_reason": dict(self.frames_dropped_by_reason),
            "malformed_frames_by_kind": dict(self.malformed_frames_by_kind),
            "transactions_started": self.transactions_started,
            "transactions_ended_by_reason": dict(self.transactions_ended_by_reason),
            "transaction_events_dropped": self.transaction_events_dropped,
            "energy_delivered_wh": self.energy_delivered_wh,
            "station_failures_by_error": dict(self.station_failures_by_error),
            "payments_by_outcome": dict(self.payments_by_outcome),
            "cost_limits_reached": self.cost_limits_reached,
            "battery_swaps_by_outcome": dict(self.battery_swaps_by_outcome),
            "reconnects": self.reconnects,
            "faults_injected_by_kind": dict(self.faults_injected_by_kind),
            "handshakes_in_flight": self.handshakes_in_flight,
            "handshakes_waiting": self.handshakes_waiting,
            "ramp_rate_per_s": self.ramp_rate_per_s,
            "connect_durations": (list(self.connect_duration_buckets), self.connect_duration_sum_s),
            "durations": {
                action: (list(stats.duration_buckets), stats.duration_sum_s)
                for action, stats in list(self.calls.items())
            },
        }

    # -- across processes ---------------------------------------------------------------

    def to_wire(self) -> dict[str, Any]:
        """Everything this recorder counted, as JSON-able data: what a worker process sends
        its parent, which rebuilds it with `from_wire` and adds the workers up with `combined`.
        """
        return {
            "counters": {name: getattr(self, name) for name in _WIRE_COUNTERS + _WIRE_MAXIMA},
            "maps": {name: _pairs(getattr(self, name)) for name in _WIRE_MAPS},
            "calls": {
                action: [
                    stats.count,
                    stats.errors,
                    stats.timeouts,
                    list(stats.round_trips_us.items()),
                    stats.duration_buckets,
                    stats.duration_sum_s,
                ]
                for action, stats in self.calls.items()
            },
            "connect_duration_buckets": self.connect_duration_buckets,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> RunStats:
        """The recorder `to_wire` described (without a trace: frames stay with the worker)."""
        stats = cls()
        for name, value in data["counters"].items():
            setattr(stats, name, value)
        for name, pairs in data["maps"].items():
            setattr(stats, name, {_key(key): count for key, count in pairs})
        stats.connect_duration_buckets = list(data["connect_duration_buckets"])
        for action, (count, errors, timeouts, rounded, buckets, sum_s) in data["calls"].items():
            stats.calls[action] = ActionStats(
                count, errors, timeouts, {int(us): n for us, n in rounded}, list(buckets), sum_s
            )
        return stats

    @classmethod
    def combined(cls, parts: Iterable[RunStats]) -> RunStats:
        """One recorder holding the sums of `parts` (the workers of one run).

        `stations_connected_peak` becomes the sum of the parts' peaks, an upper bound: the
        parts may have peaked at different times.  A caller that samples the parts over time
        knows better and may set it.
        """
        total = cls()
        for part in parts:
            for name in _WIRE_COUNTERS:
                setattr(total, name, getattr(total, name) + getattr(part, name))
            for name in _WIRE_MAXIMA:
                setattr(total, name, max(getattr(total, name), getattr(part, name)))
            for name in _WIRE_MAPS:
                _add_counts(getattr(total, name), getattr(part, name))
            for bucket, count in enumerate(part.connect_duration_buckets):
                total.connect_duration_buckets[bucket] += count
            for action, stats in part.calls.items():
                into_stats = total.calls.get(action)
                if into_stats is None:
                    into_stats = total.calls[action] = ActionStats()
                into_stats.count += stats.count
                into_stats.errors += stats.errors
                into_stats.timeouts += stats.timeouts
                _add_counts(into_stats.round_trips_us, stats.round_trips_us)
                buckets = into_stats.duration_buckets
                for bucket, count in enumerate(stats.duration_buckets):
                    buckets[bucket] += count
                into_stats.duration_sum_s += stats.duration_sum_s
        return total

    def totals(self) -> dict[str, Any]:
        """The counters of the summary JSON that this process knows; those of features a run
        may not use (payments, cost limits, battery swaps) only when they counted something."""
        totals = self._core_totals()
        if self.payments_by_outcome:
            totals["payments"] = dict(sorted(self.payments_by_outcome.items()))
        out_of_credit = self.transactions_ended_by_reason.get("LocalOutOfCredit", 0)
        if self.cost_limits_reached or out_of_credit:
            totals["cost_limits"] = {
                "reached": self.cost_limits_reached,
                "ended_local_out_of_credit": out_of_credit,
            }
        if self.ramp_written_per_s:
            totals["ramp"] = self.ramp_totals()
        if self.battery_swaps_by_outcome:
            totals["battery_swaps"] = dict(sorted(self.battery_swaps_by_outcome.items()))
        return totals

    def ramp_totals(self) -> dict[str, Any]:
        """How the ramp went (summed over workers, each ramping its share): the start rate
        written in the scenario, the lowest it was slowed to, how often, and the most
        handshakes that timed out in one second of the ramp and slowed it."""
        return {
            "written_per_s": round(self.ramp_written_per_s, 3),
            "lowest_per_s": round(self.ramp_lowest_per_s, 3),
            "slowdowns": self.ramp_slowdowns,
            "slowed_by_timeouts": self.ramp_slowed_by_timeouts,
        }

    def _core_totals(self) -> dict[str, Any]:
        return {
            "stations_connected_peak": self.stations_connected_peak,
            "stations_booted": self.stations_booted,
            "messages_sent": self.messages_sent,
            "messages_received": self.messages_received,
            "calls": {action: s.summary() for action, s in sorted(self.calls.items())},
            "all_calls": _all_calls_row(self.calls.values()),
            "callerrors_received": self.callerrors_received,
            "callerrors": _by_action(self.callerrors),
            "csms_schema_violations": self.csms_schema_violations,
            "schema_violations": _by_action(self.violations),
            "frames_dropped": self.frames_dropped,
            "malformed_frames": dict(sorted(self.malformed_frames_by_kind.items())),
            "connection_attempts": self.connection_attempts,
            "connection_failures": self.connection_failures,
            "connection_failures_by_outcome": {
                outcome: count
                for outcome, count in sorted(self.connection_attempts_by_outcome.items())
                if outcome != "ok"
            },
            "station_failures": self.station_failures,
            "station_failures_by_error": dict(sorted(self.station_failures_by_error.items())),
            "transactions_started": self.transactions_started,
            "transactions_ended": self.transactions_ended,
            "transaction_events_dropped": self.transaction_events_dropped,
            "energy_delivered_wh": round(self.energy_delivered_wh, 3),
            "transaction_events_acknowledged": self.transaction_events_acknowledged,
            "transactions_started_acknowledged": self.transactions_started_acknowledged,
            "transactions_ended_acknowledged": self.transactions_ended_acknowledged,
            "transactions_started_offline": self.transactions_started_offline,
            "transaction_events_queued_offline": self.transaction_events_queued_offline,
            "transaction_events_unsent": self.transaction_events_unsent,
            "faults_injected": dict(sorted(self.faults_injected_by_kind.items())),
        }
