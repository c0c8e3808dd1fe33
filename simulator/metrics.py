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

What the world and the stations already hold -- site power, plugged-in EVs, their SoC, the
charging limits and V2X setpoints in force, the grid frequency, CALLs in flight, the offline
queues, the simulated clock -- is not counted at all: `read_fleet_state` reads it on the trio
thread when Prometheus scrapes (`FleetStateCollector`), in one pass over the plugged-in EVs and
one over the stations, with no per-station label.  The trio task count
(`fleetsim_trio_tasks`, what a soak run watches for leaks) is kept by a trio instrument as
tasks start and end, installed at the first reading, so a scrape walks no task tree.

With `--workers N` each worker sends its parent its counters and its `read_fleet_state` once a
second; the parent's endpoint exports the fleet's figures, combined as each `MetricSpec.combine`
says: `sum` for counts, power, energy and histograms; `max` for the simulated clock and the DER
events in force (every worker runs the whole grid schedule); `mean` for the grid frequency
(every worker models the same grid).
"""

from __future__ import annotations

import contextlib
import math
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

import trio
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from fleetsim.grid_models.der import DER_KINDS

from .link import CONNECT_OUTCOMES
from .ocpp.errors import MALFORMED_FRAME_KINDS, ErrorCode


class Snapshots(Protocol):
    """A source of counters (`stats.RunStats`): a copy of them per scrape."""

    def snapshot(self) -> dict[str, Any]: ...


__all__ = [
    "ALL_METRICS",
    "FLEET_METRICS",
    "FleetStateCollector",
    "SOC_BUCKETS",
    "combine_fleet_states",
    "empty_fleet_state",
    "read_fleet_state",
    "scrape_on_trio_thread",
    "trio_task_count",
    "walk_trio_tasks",
    "CALL_DURATION",
    "CALL_DURATION_BUCKETS_S",
    "CALLERRORS_RECEIVED",
    "CONNECTION_ATTEMPTS",
    "CONNECTION_OUTCOMES",
    "BATTERY_SWAPS",
    "BATTERY_SWAP_OUTCOMES",
    "COST_LIMITS_REACHED",
    "CSMS_SCHEMA_VIOLATIONS",
    "ENERGY_DELIVERED",
    "FRAMES_DROPPED",
    "FRAME_DROP_REASONS",
    "FrameDropReason",
    "HANDSHAKES_IN_FLIGHT",
    "HANDSHAKES_WAITING",
    "MALFORMED_FRAMES",
    "RAMP_RATE",
    "MESSAGES",
    "MetricSpec",
    "PAYMENTS",
    "PAYMENT_OUTCOMES",
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
#: Every outcome of a connection attempt (`link.ConnectOutcome`, where each is explained).
CONNECTION_OUTCOMES = CONNECT_OUTCOMES
#: Why a frame from the CSMS could not be used: no readable message id, or an answer that
#: matched no outstanding CALL.
FrameDropReason = Literal["unreadable", "late"]
FRAME_DROP_REASONS: tuple[FrameDropReason, ...] = get_args(FrameDropReason)
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

#: Reconnecting takes one round trip on a LAN and seconds through a loaded TLS terminator.
CONNECT_DURATION_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: State of charge in tenths: a fleet's SoC spread is what a dashboard shows, not one EV's.
SOC_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: Kinds of fault fleetsim injects on purpose (the scenario's `faults` section); each series
#: exists from the first scrape, so a dashboard's panel reads 0 until one happens.
FAULT_KINDS: tuple[str, ...] = (
    "drop",
    "partition",
    "storm",
    "slow",
    "stuck",
    "clock_drift",
    "power_cut",
    "malformed",
    "duplicate_id",
)
#: The `direction` of site power and energy: into the EVs from the grid, and back (V2X).
POWER_DIRECTIONS = ("import", "export")
#: The CALLs every station of every run sends: their exchange, latency and error series exist
#: from the first scrape, so a panel of them reads 0, not "No data".  Others appear when used.
CORE_STATION_ACTIONS = (
    "Authorize",
    "BootNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
    "TransactionEvent",
)
#: The CSMS's requests the embedded CSMS's scenarios send most; exported at zero likewise.
CORE_CSMS_ACTIONS = (
    "GetVariables",
    "RequestStartTransaction",
    "RequestStopTransaction",
    "SetChargingProfile",
    "SetVariables",
    "TriggerMessage",
)
#: How a CSMS request to a station ended (`RunStats.incoming_done`).
INCOMING_OUTCOMES = ("ok", "callerror", "invalid")
#: TransactionEvent stoppedReason (ReasonEnumType of OCPP 2.0.1 and 2.1).
STOPPED_REASONS = (
    "DeAuthorized",
    "EmergencyStop",
    "EnergyLimitReached",
    "EVDisconnected",
    "GroundFault",
    "ImmediateReset",
    "Local",
    "LocalOutOfCredit",
    "MasterPass",
    "Other",
    "OvercurrentFault",
    "PowerLoss",
    "PowerQuality",
    "Reboot",
    "Remote",
    "ReqEnergyTransferRejected",
    "SOCLimitReached",
    "StoppedByEV",
    "TimeLimitReached",
    "Timeout",
)

#: How an ad hoc payment ended (C17-C25, `RunStats.payment`): a settlement Settled, Canceled
#: or Failed (NotifySettlement); a card the terminal refused (declined by the provider, no
#: tariff to price the session, the CSMS did not authorize the DirectPayment token); a prepaid
#: card's balance spent while charging; a web payment whose transaction started or timed out.
PAYMENT_OUTCOMES = (
    "settled",
    "canceled",
    "settlement_failed",
    "declined",
    "no_tariff",
    "not_authorized",
    "prepaid_exhausted",
    "web_started",
    "web_timeout",
)
#: How a battery swap ended (S01-S04, `RunStats.battery_swap`): done for a driver at the
#: station (local) or the CSMS's RequestBatterySwap (remote); refused for want of a charged
#: pack and an empty slot (NoBatteryAvailable) or the driver's token; the charged pack left in
#: its slot (BatteryOutTimeout).
BATTERY_SWAP_OUTCOMES = ("local", "remote", "no_battery_available", "not_authorized", "out_timeout")

_KNOWN_CODES = frozenset(code.value for code in ErrorCode)
_KNOWN_EXCHANGES = (
    *(
        (action, "station_to_csms", outcome)
        for action in CORE_STATION_ACTIONS
        for outcome in OUTCOMES
        if outcome != "sent"
    ),
    *(
        (action, "csms_to_station", outcome)
        for action in CORE_CSMS_ACTIONS
        for outcome in INCOMING_OUTCOMES
    ),
)
_KNOWN_ERRORS = tuple(
    (action, code) for action in CORE_STATION_ACTIONS for code in sorted(_KNOWN_CODES)
)


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
    #: How the parent of `--workers` combines the workers' values: sum, max or mean.
    combine: str = "sum"


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
    "Attempts to open a station's WebSocket, by result: ok, or what failed (refused, rejected, "
    "timeout, a TLS cause, or a cause on this machine: source_address, local_ports, "
    "local_files); every outcome is a series from the first scrape.",
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
MALFORMED_FRAMES = MetricSpec(
    "fleetsim_malformed_frames_total",
    "Frames from the CSMS that broke OCPP-J or the schema, by what was wrong: not_json, "
    "not_array, bad_message_id, message_id_too_long, bad_message_type, unknown_message_type, "
    "bad_structure, bad_payload, unknown_action, wrong_direction, schema.",
    "counter",
    ("kind",),
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
PAYMENTS = MetricSpec(
    "fleetsim_payments_total",
    "Ad hoc payments at the stations' terminals and on the web (C17-C25), by outcome: "
    "settlements, refused cards, prepaid balances spent, web payments.",
    "counter",
    ("outcome",),
)
COST_LIMITS_REACHED = MetricSpec(
    "fleetsim_cost_limits_reached_total",
    "Transactions whose running cost reached their maxCost limit (E16, CostLimitReached); "
    "those that ended for it count as fleetsim_transactions_ended_total{reason=LocalOutOfCredit}.",
    "counter",
)
BATTERY_SWAPS = MetricSpec(
    "fleetsim_battery_swaps_total",
    "Battery swaps at swap stations (S01-S04), by outcome: local or remote swaps done, refused "
    "(no_battery_available, not_authorized), packs left behind (out_timeout).",
    "counter",
    ("outcome",),
)

CONNECT_DURATION = MetricSpec(
    "fleetsim_connect_duration_seconds",
    "Time to open a station's connection (TCP, TLS, WebSocket handshake), successful ones.",
    "histogram",
)
RECONNECTS = MetricSpec(
    "fleetsim_reconnects_total",
    "Connections the stations lost while the run went on; each sends its station reconnecting.",
    "counter",
)
HANDSHAKES_IN_FLIGHT = MetricSpec(
    "fleetsim_handshakes_in_flight",
    "Connections opening now (TCP, TLS, WebSocket handshake), each holding a handshake slot.",
    "gauge",
)
HANDSHAKES_WAITING = MetricSpec(
    "fleetsim_handshakes_waiting",
    "Stations waiting for a handshake slot before they start connecting.",
    "gauge",
)
RAMP_RATE = MetricSpec(
    "fleetsim_ramp_up_stations_per_second",
    "The rate stations are started at now: the scenario's ramp_up_per_s, less while slow "
    "handshakes slow the ramp down; 0 once every station has started.",
    "gauge",
)
CALLS_IN_FLIGHT = MetricSpec(
    "fleetsim_ocpp_calls_in_flight",
    "Station CALLs sent and not yet answered (at most one per station, as OCPP-J allows).",
    "gauge",
)
OFFLINE_QUEUE = MetricSpec(
    "fleetsim_offline_queue_messages",
    "TransactionEvents the stations hold for the CSMS and have not delivered (E11-E14).",
    "gauge",
)
WEBSOCKET_BYTES = MetricSpec(
    "fleetsim_websocket_bytes_total",
    "Bytes of WebSocket frames the stations wrote and read (0 in an in-memory run).",
    "counter",
    ("direction",),
)
EVS_PLUGGED_IN = MetricSpec(
    "fleetsim_evs_plugged_in", "EVs plugged in now, by site.", "gauge", ("site",)
)
EVS_CHARGING = MetricSpec(
    "fleetsim_evs_charging",
    "EVs plugged in and drawing power from the grid now, by site.",
    "gauge",
    ("site",),
)
SITE_POWER = MetricSpec(
    "fleetsim_site_power_watts",
    "Power at the site's grid connection in simulated watts: import into the EVs, export from "
    "them (V2X), by site.",
    "gauge",
    ("site", "direction"),
)
SITE_ENERGY = MetricSpec(
    "fleetsim_site_energy_joules_total",
    "Energy through the site's grid connection, imported and exported, in joules.",
    "counter",
    ("site", "direction"),
)
GRID_FREQUENCY = MetricSpec(
    "fleetsim_grid_frequency_hertz",
    "Frequency of the simulated grid now.",
    "gauge",
    combine="mean",
)
EV_SOC = MetricSpec(
    "fleetsim_plugged_in_ev_soc_ratio",
    "State of charge (0..1) of the EVs plugged in now: a gauge histogram, read at the scrape.",
    "gaugehistogram",
)
CHARGING_LIMIT = MetricSpec(
    "fleetsim_site_charging_limit_watts",
    "Sum of the charging limits that installed charging profiles put on the site's plugged-in "
    "EVs now.",
    "gauge",
    ("site",),
)
EVS_LIMITED = MetricSpec(
    "fleetsim_evs_with_charging_limit",
    "Plugged-in EVs under a charging limit from a charging profile now, by site.",
    "gauge",
    ("site",),
)
V2X_SETPOINT = MetricSpec(
    "fleetsim_site_v2x_setpoint_watts",
    "Sum of the V2X setpoints in force at the site (positive charges, negative discharges).",
    "gauge",
    ("site",),
)
EVS_V2X = MetricSpec(
    "fleetsim_evs_with_v2x_setpoint",
    "Plugged-in EVs following a V2X setpoint now, by site.",
    "gauge",
    ("site",),
)
DER_EVENTS_ACTIVE = MetricSpec(
    "fleetsim_der_events_active",
    "Grid (DER) events of the scenario in force now, by kind.",
    "gauge",
    ("kind",),
    combine="max",
)
TRIO_TASKS = MetricSpec(
    "fleetsim_trio_tasks",
    "trio tasks alive in the fleet's processes now: a few per connected station and the "
    "fleet's own; flat in a long run unless something leaks.",
    "gauge",
)
SIMULATED_TIME = MetricSpec(
    "fleetsim_simulated_time_seconds",
    "The simulated clock, as seconds since the Unix epoch.",
    "gauge",
    combine="max",
)
FAULTS_INJECTED = MetricSpec(
    "fleetsim_faults_injected_total",
    "Faults fleetsim injected into the run on purpose, by kind: connections dropped, "
    "stations cut off by a partition or a storm or a power cut, clocks set drifting, answers "
    "delayed (slow) or withheld (stuck), frames sent malformed or with a duplicate id.",
    "counter",
    ("kind",),
)

#: The metrics `FleetStateCollector` reads at scrape time from the world and the stations.
FLEET_METRICS = (
    CALLS_IN_FLIGHT,
    OFFLINE_QUEUE,
    WEBSOCKET_BYTES,
    EVS_PLUGGED_IN,
    EVS_CHARGING,
    SITE_POWER,
    SITE_ENERGY,
    GRID_FREQUENCY,
    EV_SOC,
    CHARGING_LIMIT,
    EVS_LIMITED,
    V2X_SETPOINT,
    EVS_V2X,
    DER_EVENTS_ACTIVE,
    SIMULATED_TIME,
    TRIO_TASKS,
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
    MALFORMED_FRAMES,
    TRANSACTIONS_STARTED,
    TRANSACTIONS_ENDED,
    TRANSACTION_EVENTS_DROPPED,
    ENERGY_DELIVERED,
    STATION_FAILURES,
    PAYMENTS,
    COST_LIMITS_REACHED,
    BATTERY_SWAPS,
    CONNECT_DURATION,
    RECONNECTS,
    FAULTS_INJECTED,
    HANDSHAKES_IN_FLIGHT,
    HANDSHAKES_WAITING,
    RAMP_RATE,
    *FLEET_METRICS,
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
            if spec in FLEET_METRICS:
                continue
            if spec.kind == "histogram":
                yield HistogramMetricFamily(spec.name, spec.documentation, labels=spec.labels)
            else:
                yield _family(spec)

    def collect(self) -> Iterator[Metric]:
        snapshots = [source.snapshot() for source in self._sources()]

        def labelled(spec: MetricSpec, key: str, known: Iterable[Any] = ()) -> Metric:
            family = _family(spec)
            values = _sum_by_key(
                {k if isinstance(k, tuple) else (k,): v for k, v in snap[key].items()}
                for snap in snapshots
            )
            for label in known:
                values.setdefault(label if isinstance(label, tuple) else (label,), 0)
            if not values:
                # No label value is known in advance: one series without it, the total (0),
                # so that a panel reads 0 until the first one comes.
                values[("",) * len(spec.labels)] = 0
            for labels, value in sorted(values.items()):
                family.add_metric(list(labels), value)
            return family

        def single(spec: MetricSpec, key: str, scale: float = 1.0) -> Metric:
            family = _family(spec)
            family.add_metric([], sum(snap[key] for snap in snapshots) * scale)
            return family

        yield labelled(STATIONS, "stations_by_state", STATION_STATES)
        yield labelled(MESSAGES, "exchanges", _KNOWN_EXCHANGES)
        websocket = _family(WEBSOCKET_MESSAGES)
        websocket.add_metric(["sent"], sum(snap["messages_sent"] for snap in snapshots))
        websocket.add_metric(["received"], sum(snap["messages_received"] for snap in snapshots))
        yield websocket
        yield labelled(CONNECTION_ATTEMPTS, "connection_attempts_by_outcome", CONNECTION_OUTCOMES)
        yield labelled(CALLERRORS_RECEIVED, "callerrors", _KNOWN_ERRORS)
        yield labelled(CSMS_SCHEMA_VIOLATIONS, "violations", _KNOWN_ERRORS)
        yield labelled(FRAMES_DROPPED, "frames_dropped_by_reason", FRAME_DROP_REASONS)
        yield labelled(MALFORMED_FRAMES, "malformed_frames_by_kind", MALFORMED_FRAME_KINDS)
        yield single(TRANSACTIONS_STARTED, "transactions_started")
        yield labelled(TRANSACTIONS_ENDED, "transactions_ended_by_reason", STOPPED_REASONS)
        yield single(TRANSACTION_EVENTS_DROPPED, "transaction_events_dropped")
        yield single(ENERGY_DELIVERED, "energy_delivered_wh", 3600.0)
        yield labelled(STATION_FAILURES, "station_failures_by_error")
        yield labelled(PAYMENTS, "payments_by_outcome", PAYMENT_OUTCOMES)
        yield single(COST_LIMITS_REACHED, "cost_limits_reached")
        yield labelled(BATTERY_SWAPS, "battery_swaps_by_outcome", BATTERY_SWAP_OUTCOMES)
        yield self._durations(snapshots)
        yield single(RECONNECTS, "reconnects")
        yield labelled(FAULTS_INJECTED, "faults_injected_by_kind", FAULT_KINDS)
        yield single(HANDSHAKES_IN_FLIGHT, "handshakes_in_flight")
        yield single(HANDSHAKES_WAITING, "handshakes_waiting")
        yield single(RAMP_RATE, "ramp_rate_per_s")
        counts = [0] * (len(CONNECT_DURATION_BUCKETS_S) + 1)
        total_s = 0.0
        for snap in snapshots:
            buckets, sum_s = snap["connect_durations"]
            for index, count in enumerate(buckets):
                counts[index] += count
            total_s += sum_s
        yield _histogram(CONNECT_DURATION, [([], CONNECT_DURATION_BUCKETS_S, counts, total_s)])

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
        for action in CORE_STATION_ACTIONS:
            merged.setdefault(action, ([0] * len(bounds), 0.0))
        for action, (counts, total_s) in sorted(merged.items()):
            cumulative = 0
            buckets = []
            for bound, count in zip(bounds, counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if math.isinf(bound) else repr(bound), cumulative))
            family.add_metric([action], buckets, total_s)
        return family


def _histogram(
    spec: MetricSpec,
    series: Iterable[tuple[list[str], Sequence[float], Sequence[int], float]],
) -> Metric:
    """A histogram family from non-cumulative bucket counts (the last one +Inf)."""
    family = HistogramMetricFamily(spec.name, spec.documentation, labels=spec.labels)
    for labels, bounds, counts, total in series:
        cumulative = 0
        buckets = []
        for bound, count in zip((*bounds, math.inf), counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if math.isinf(bound) else repr(bound), cumulative))
        family.add_metric(labels, buckets, total)
    return family


# -- the fleet's state, read when Prometheus scrapes ---------------------------------------


def empty_fleet_state(site_names: Iterable[str] = ()) -> dict[str, Any]:
    """The state of a fleet that has done nothing yet: every known series at 0."""
    return {
        "calls_in_flight": 0,
        "offline_queue": 0,
        "bytes_sent": 0,
        "bytes_received": 0,
        "grid_frequency_hz": 0.0,
        "simulated_time_s": 0.0,
        "trio_tasks": 0,
        "der_events_active": dict.fromkeys(DER_KINDS, 0),
        "soc_buckets": [0] * (len(SOC_BUCKETS) + 1),
        "soc_sum": 0.0,
        "sites": {name: _empty_site() for name in site_names},
    }


def _empty_site() -> dict[str, float]:
    return {
        "evs_plugged_in": 0,
        "evs_charging": 0,
        "import_w": 0.0,
        "export_w": 0.0,
        "imported_j": 0.0,
        "exported_j": 0.0,
        "limit_w": 0.0,
        "evs_limited": 0,
        "setpoint_w": 0.0,
        "evs_v2x": 0,
    }


def read_fleet_state(world: Any, stations: Sequence[Any], wire: Any) -> dict[str, Any]:
    """What the world (`world.World`) and the stations hold now, as plain JSON-able data.

    Runs on the trio thread (the simulated clock reads trio's), at a scrape or once a second in
    a worker: one pass over the plugged-in EVs and one over the stations, nothing counted per
    message.  `wire` is the process's `transport.websocket.WIRE_BYTES`.
    """
    clock = world.clock
    now_s = clock.sim_now()
    state = empty_fleet_state()
    in_flight = queued = 0
    for station in stations:
        link = station.link
        if link is not None and getattr(link, "call_in_flight", False):
            in_flight += 1
        queued += len(station.tx_queue)
    state["calls_in_flight"] = in_flight
    state["offline_queue"] = queued
    state["bytes_sent"] = wire.sent
    state["bytes_received"] = wire.received
    state["grid_frequency_hz"] = float(world.frequency_hz)
    state["simulated_time_s"] = clock.epoch_s(now_s)
    state["trio_tasks"] = trio_task_count()
    for event in world.der.active_at(now_s):
        state["der_events_active"][event.kind] += 1
    soc_buckets = state["soc_buckets"]
    soc_sum = 0.0
    for site in world.sites:
        row = _empty_site()
        imported_wh = site.imported_wh_ended
        exported_wh = site.exported_wh_ended
        plugged = charging = limited = v2x = 0
        limit_w = setpoint_w = 0.0
        for session in site.plugged_in():
            plugged += 1
            if session.power_w > 0:
                charging += 1
            soc, session_imported_wh, session_exported_wh = session.readings_at(now_s)
            soc_sum += soc
            soc_buckets[bisect_left(SOC_BUCKETS, soc)] += 1
            imported_wh += session_imported_wh
            exported_wh += session_exported_wh
            session_limit_w = session.limit_w
            if session_limit_w is not None:
                limited += 1
                limit_w += session_limit_w
            session_setpoint_w = session.setpoint_w
            if session_setpoint_w is not None:
                v2x += 1
                setpoint_w += session_setpoint_w
        row.update(
            evs_plugged_in=plugged,
            evs_charging=charging,
            import_w=site.import_w,
            export_w=site.export_w,
            imported_j=imported_wh * 3600.0,
            exported_j=exported_wh * 3600.0,
            limit_w=limit_w,
            evs_limited=limited,
            setpoint_w=setpoint_w,
            evs_v2x=v2x,
        )
        state["sites"][site.name] = row
    state["soc_sum"] = soc_sum
    return state


def walk_trio_tasks() -> int:
    """How many tasks the current trio run has, counted by walking its task tree (a pass over
    every task: for tests and the first reading, not for a timer)."""
    count = 0
    pending = [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        if task is None:
            continue
        count += 1
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return count


class _TaskCounter(trio.abc.Instrument):
    """Keeps the number of living tasks of one trio run: +1 per task spawned, -1 per task
    exited.  One integer step per task started, never per message, and nothing per scrape."""

    __slots__ = ("count", "root")

    def __init__(self, root: trio.lowlevel.Task, count: int) -> None:
        self.root = weakref.ref(root)
        self.count = count

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.count += 1

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.count -= 1


_task_counter: _TaskCounter | None = None


def trio_task_count() -> int:
    """The current trio run's living tasks (`fleetsim_trio_tasks`): walked once, at the first
    reading of a run, then kept by an instrument, so that a scrape or a worker's report costs
    no walk over tens of thousands of tasks."""
    global _task_counter
    root = trio.lowlevel.current_root_task()
    counter = _task_counter
    if counter is None or counter.root() is not root:
        assert root is not None
        counter = _task_counter = _TaskCounter(root, walk_trio_tasks())
        trio.lowlevel.add_instrument(counter)
    return counter.count


def _add_into(into: dict[str, Any], part: dict[str, Any]) -> None:
    for key, value in part.items():
        if isinstance(value, dict):
            _add_into(into.setdefault(key, {}), value)
        elif isinstance(value, list):
            target = into.setdefault(key, [0] * len(value))
            for index, item in enumerate(value):
                target[index] += item
        else:
            into[key] = into.get(key, 0) + value


def combine_fleet_states(
    states: Iterable[dict[str, Any]], site_names: Iterable[str] = ()
) -> dict[str, Any]:
    """The fleet's state from its workers' (see the module docstring for each figure's rule)."""
    states = list(states)
    total = empty_fleet_state(site_names)
    for state in states:
        _add_into(total, {k: v for k, v in state.items() if k not in _NOT_SUMMED})
    total["simulated_time_s"] = max((s["simulated_time_s"] for s in states), default=0.0)
    total["grid_frequency_hz"] = (
        sum(s["grid_frequency_hz"] for s in states) / len(states) if states else 0.0
    )
    for kind in total["der_events_active"]:
        total["der_events_active"][kind] = max(
            (s["der_events_active"].get(kind, 0) for s in states), default=0
        )
    return total


#: The figures `combine_fleet_states` does not add up (max or mean; see FLEET_METRICS).
_NOT_SUMMED = frozenset({"simulated_time_s", "grid_frequency_hz", "der_events_active"})


def scrape_on_trio_thread(
    token: trio.lowlevel.TrioToken, read: Callable[[], dict[str, Any]]
) -> Callable[[], list[dict[str, Any]]]:
    """A source for `FleetStateCollector` that runs `read` on the trio thread of `token`.

    The metrics endpoint answers in its own thread, and the world is trio's to read: the scrape
    hands `read` to the trio loop and waits for it.  Once the run is over, the last state read
    stands.
    """
    last: list[dict[str, Any]] = []

    def source() -> list[dict[str, Any]]:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            with contextlib.suppress(trio.RunFinishedError):
                last[:] = [trio.from_thread.run_sync(read, trio_token=token)]
        else:
            last[:] = [read()]  # already on the trio thread (a test reading the registry)
        return list(last)

    return source


class FleetStateCollector(Collector):
    """Exports `FLEET_METRICS` from the states `sources()` returns, combined across workers.

    `site_names` are the scenario's sites: their series exist before any state is read.
    """

    def __init__(
        self, sources: Callable[[], Iterable[dict[str, Any]]], site_names: Iterable[str] = ()
    ) -> None:
        self._sources = sources
        self._site_names = tuple(site_names)

    def describe(self) -> Iterator[Metric]:
        for spec in FLEET_METRICS:
            if spec.kind == "gaugehistogram":
                yield GaugeHistogramMetricFamily(spec.name, spec.documentation, labels=spec.labels)
            else:
                yield _family(spec)

    def collect(self) -> Iterator[Metric]:
        state = combine_fleet_states(self._sources(), self._site_names)
        sites = sorted(state["sites"].items())

        def plain(spec: MetricSpec, value: float) -> Metric:
            family = _family(spec)
            family.add_metric([], value)
            return family

        def per_site(spec: MetricSpec, key: str) -> Metric:
            family = _family(spec)
            for name, row in sites:
                family.add_metric([name], row[key])
            return family

        yield plain(CALLS_IN_FLIGHT, state["calls_in_flight"])
        yield plain(OFFLINE_QUEUE, state["offline_queue"])
        wire = _family(WEBSOCKET_BYTES)
        wire.add_metric(["sent"], state["bytes_sent"])
        wire.add_metric(["received"], state["bytes_received"])
        yield wire
        yield per_site(EVS_PLUGGED_IN, "evs_plugged_in")
        yield per_site(EVS_CHARGING, "evs_charging")
        power = _family(SITE_POWER)
        energy = _family(SITE_ENERGY)
        for name, row in sites:
            for direction, power_key, energy_key in zip(
                POWER_DIRECTIONS,
                ("import_w", "export_w"),
                ("imported_j", "exported_j"),
                strict=True,
            ):
                power.add_metric([name, direction], row[power_key])
                energy.add_metric([name, direction], row[energy_key])
        yield power
        yield energy
        yield plain(GRID_FREQUENCY, state["grid_frequency_hz"])
        soc = GaugeHistogramMetricFamily(EV_SOC.name, EV_SOC.documentation)
        cumulative = 0
        buckets = []
        for bound, count in zip((*SOC_BUCKETS, math.inf), state["soc_buckets"], strict=True):
            cumulative += count
            buckets.append(("+Inf" if math.isinf(bound) else repr(bound), cumulative))
        soc.add_metric([], buckets, state["soc_sum"])
        yield soc
        yield per_site(CHARGING_LIMIT, "limit_w")
        yield per_site(EVS_LIMITED, "evs_limited")
        yield per_site(V2X_SETPOINT, "setpoint_w")
        yield per_site(EVS_V2X, "evs_v2x")
        der = _family(DER_EVENTS_ACTIVE)
        for kind, count in sorted(state["der_events_active"].items()):
            der.add_metric([kind], count)
        yield der
        yield plain(SIMULATED_TIME, state["simulated_time_s"])
        yield plain(TRIO_TASKS, state["trio_tasks"])
