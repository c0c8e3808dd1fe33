"""Every Prometheus metric fleetsim exports, defined here and nowhere else.

Naming follows Prometheus practice: a `fleetsim_` prefix, base units (seconds, joules), `_total`
on counters, and labels from small fixed sets (action, direction, outcome, error code, state).
A station id is never a label: 30,000 stations would make 30,000 series.  Error codes the CSMS
invents are folded into `other` for the same reason (`error_code_label`).

Label values that are known in advance are touched at import, so their series start at zero and
a dashboard's `rate()` sees the first increment.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from .ocpp.errors import ErrorCode

__all__ = [
    "CALL_DURATION",
    "CALLERRORS_RECEIVED",
    "CONNECTION_ATTEMPTS",
    "CSMS_SCHEMA_VIOLATIONS",
    "ENERGY_DELIVERED",
    "FRAMES_DROPPED",
    "MESSAGES",
    "STATIONS",
    "STATION_FAILURES",
    "TRANSACTIONS_ENDED",
    "TRANSACTION_EVENTS_DROPPED",
    "TRANSACTIONS_STARTED",
    "WEBSOCKET_MESSAGES",
    "error_code_label",
]

#: Who started an exchange: the station (`station_to_csms`) or the CSMS (`csms_to_station`).
DIRECTIONS = ("station_to_csms", "csms_to_station")

#: How an exchange ended, from the station's side.
#: ok: a valid answer; callerror: a CALLERROR; timeout: no answer in time; invalid: an answer
#: that broke the schema; closed: the connection went before the answer; sent: a SEND frame,
#: which has no answer.
OUTCOMES = ("ok", "callerror", "timeout", "invalid", "closed", "sent")

STATION_STATES = ("disconnected", "connecting", "booting", "pending", "rejected", "accepted")

_KNOWN_CODES = frozenset(code.value for code in ErrorCode)


def error_code_label(code: str) -> str:
    """`code` if OCPP-J defines it, else `other`, so a CSMS cannot grow the label set."""
    return code if code in _KNOWN_CODES else "other"


STATIONS = Gauge(
    "fleetsim_stations",
    "Virtual stations by connection and registration state.",
    ["state"],
)

MESSAGES = Counter(
    "fleetsim_ocpp_messages_total",
    "OCPP exchanges (a CALL and its answer, or a SEND) by action, who started them and how "
    "they ended.",
    ["action", "direction", "outcome"],
)

CALL_DURATION = Histogram(
    "fleetsim_ocpp_call_duration_seconds",
    "Time from sending a station CALL until its CALLRESULT or CALLERROR arrives.",
    ["action"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

WEBSOCKET_MESSAGES = Counter(
    "fleetsim_websocket_messages_total",
    "WebSocket text messages, every frame of every station.",
    ["direction"],
)

CONNECTION_ATTEMPTS = Counter(
    "fleetsim_connection_attempts_total",
    "Attempts to open a station's WebSocket, by result.",
    ["outcome"],
)

CALLERRORS_RECEIVED = Counter(
    "fleetsim_callerrors_received_total",
    "CALLERRORs the CSMS sent in answer to station CALLs.",
    ["action", "code"],
)

CSMS_SCHEMA_VIOLATIONS = Counter(
    "fleetsim_csms_schema_violations_total",
    "Messages from the CSMS that broke OCPP-J framing or the OCPP JSON schema.",
    ["action", "code"],
)

FRAMES_DROPPED = Counter(
    "fleetsim_frames_dropped_total",
    "Frames from the CSMS that could not be used: no readable message id, or an answer that "
    "matched no outstanding CALL (late after a timeout, or unknown).",
    ["reason"],
)

TRANSACTIONS_STARTED = Counter(
    "fleetsim_transactions_started_total",
    "Transactions the stations started (TransactionEvent Started).",
)

TRANSACTIONS_ENDED = Counter(
    "fleetsim_transactions_ended_total",
    "Transactions the stations ended (TransactionEvent Ended), by stoppedReason.",
    ["reason"],
)

TRANSACTION_EVENTS_DROPPED = Counter(
    "fleetsim_transaction_events_dropped_total",
    "TransactionEvents given up after MessageAttempts CALLERRORs or timeouts (E13).",
)

ENERGY_DELIVERED = Counter(
    "fleetsim_energy_delivered_joules_total",
    "Energy the stations metered into EVs, in joules (1 Wh = 3600 J; dashboards show kWh).",
)

STATION_FAILURES = Counter(
    "fleetsim_station_failures_total",
    "Stations whose own logic failed with an unexpected error; the rest of the fleet goes on.",
    ["error"],
)

for _state in STATION_STATES:
    STATIONS.labels(_state)
for _outcome in ("ok", "refused", "rejected", "timeout", "error"):
    CONNECTION_ATTEMPTS.labels(_outcome)
for _direction in ("sent", "received"):
    WEBSOCKET_MESSAGES.labels(_direction)
for _reason in ("unreadable", "late"):
    FRAMES_DROPPED.labels(_reason)
