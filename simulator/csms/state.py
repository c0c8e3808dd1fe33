"""What the embedded CSMS knows about each station, kept for tests and summaries to read.

A `StationState` is updated from each valid request the station sends (`record_request`), from
the CSMS's answer to its BootNotifications, and from its link's reports of broken frames.  It
holds no connection and imports no trio, so it is plain data a test can assert on:

    station = csms.station("CP0001")
    assert station.connectors[(1, 1)] == "Occupied"
    assert station.transactions["tx-1"].missing_seq_nos() == []

Messages are kept in a bounded deque (`max_messages`), because a station that heartbeats for a
week must not grow without end; counters keep counting after the oldest messages are dropped.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..ocpp import OcppVersion, subprotocol_for

__all__ = ["ReceivedMessage", "StationState", "TransactionRecord"]


class ReceivedMessage(NamedTuple):
    """One valid CALL or SEND a station sent, as the CSMS received it."""

    action: str
    payload: Mapping[str, Any]


@dataclass(slots=True)
class TransactionRecord:
    """The TransactionEvents of one transaction (block E), in the order they arrived."""

    transaction_id: str
    evse_id: int | None = None
    seq_nos: list[int] = field(default_factory=list)
    event_types: list[str] = field(default_factory=list)
    trigger_reasons: list[str] = field(default_factory=list)
    #: Events the station flagged `offline: true` (queued while the connection was down).
    offline_events: int = 0
    ended: bool = False
    stopped_reason: str | None = None
    #: The idToken of the last event that carried one.
    id_token: str | None = None

    def missing_seq_nos(self) -> list[int]:
        """The seqNos between 0 and the highest one seen that never arrived.

        seqNo starts at 0 with each transaction and grows by one per event (E01, E11-E13), so a
        gap means the station lost an event, e.g. from its offline queue.
        """
        if not self.seq_nos:
            return []
        seen = set(self.seq_nos)
        return [seq_no for seq_no in range(max(seen) + 1) if seq_no not in seen]

    def duplicate_seq_nos(self) -> list[int]:
        """seqNos that arrived more than once (a resent event), in increasing order."""
        counts = Counter(self.seq_nos)
        return sorted(seq_no for seq_no, count in counts.items() if count > 1)

    @property
    def seq_nos_complete(self) -> bool:
        """True when seqNos 0..n all arrived: no gap, whatever the order or repeats."""
        return bool(self.seq_nos) and not self.missing_seq_nos()


def _evse_connector(evse: Mapping[str, Any]) -> tuple[int, int] | None:
    connector_id = evse.get("connectorId")
    if connector_id is None:
        return None
    return int(evse["id"]), int(connector_id)


#: The fields of a ChargingScheduleUpdateType (K28).
_UPDATE_FIELDS = frozenset(
    f"{name}{phase}"
    for name in ("limit", "dischargeLimit", "setpoint", "setpointReactive")
    for phase in ("", "_L2", "_L3")
)


class StationState:
    """Everything recorded about one station id, across all its connections."""

    __slots__ = (
        "_max_transactions",
        "boots",
        "charging_station",
        "connected",
        "connections",
        "connectors",
        "disconnections",
        "dynamic_schedules",
        "frames_dropped",
        "internal_errors",
        "last_boot_reason",
        "last_boot_status",
        "malformed_frames",
        "messages",
        "messages_received",
        "station_id",
        "transactions",
        "version",
        "violations",
    )

    def __init__(
        self,
        station_id: str,
        *,
        record_messages: bool = True,
        max_messages: int = 10_000,
        max_transactions: int = 1_000,
    ) -> None:
        self.station_id = station_id
        self.connected = False
        #: The OCPP version negotiated on the current (or last) connection.
        self.version: OcppVersion | None = None
        self.connections = 0
        self.disconnections = 0
        self.boots = 0
        self.last_boot_status: str | None = None
        self.last_boot_reason: str | None = None
        #: The `chargingStation` object of the last BootNotification (model, vendorName, ...).
        self.charging_station: Mapping[str, Any] | None = None
        #: Connector status by (evseId, connectorId), from StatusNotification and from
        #: NotifyEvent reports of a Connector's AvailabilityState.
        self.connectors: dict[tuple[int, int], str] = {}
        #: Every valid CALL and SEND received, counted even when not kept in `messages`.
        self.messages_received = 0
        self.messages: deque[ReceivedMessage] | None = (
            deque(maxlen=max_messages) if record_messages else None
        )
        self.transactions: dict[str, TransactionRecord] = {}
        self._max_transactions = max_transactions
        #: Broken frames and invalid payloads the station sent, by (action, OCPP-J error code);
        #: action is None when the frame could not be read far enough to name one.
        self.violations: Counter[tuple[str | None, str]] = Counter()
        #: Frames that could not be used: no readable message id (answered to id "-1"), or
        #: a broken frame that gets no answer.
        self.frames_dropped = 0
        #: Broken frames by what was wrong (`ocpp.MALFORMED_FRAME_KINDS`).
        self.malformed_frames: Counter[str] = Counter()
        #: Requests the CSMS itself failed to answer (a bug, or an override that raised).
        self.internal_errors = 0
        #: The values of each Dynamic charging profile this CSMS set or last updated on the
        #: station, by profile id: what it answers a PullDynamicScheduleUpdate with (K28).
        #: None until it sets one.
        self.dynamic_schedules: dict[int, Mapping[str, Any]] | None = None

    def remember_dynamic_schedule(self, action: str, payload: Mapping[str, Any]) -> None:
        """Keep the values a SetChargingProfile of a Dynamic profile or an
        UpdateDynamicSchedule the station accepted puts in force."""
        if action == "UpdateDynamicSchedule":
            profile_id, update = payload["chargingProfileId"], payload["scheduleUpdate"]
        else:
            profile = payload["chargingProfile"]
            if profile.get("chargingProfileKind") != "Dynamic":
                return
            period = profile["chargingSchedule"][0]["chargingSchedulePeriod"][0]
            profile_id = profile["id"]
            update = {name: value for name, value in period.items() if name in _UPDATE_FIELDS}
        if self.dynamic_schedules is None:
            self.dynamic_schedules = {}
        kept = dict(self.dynamic_schedules.get(profile_id, {}))
        kept.update(update)
        self.dynamic_schedules[profile_id] = kept

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return (
            f"<StationState {self.station_id} {state} version={self.version} boots={self.boots} "
            f"messages={self.messages_received}>"
        )

    @property
    def subprotocol(self) -> str | None:
        """The WebSocket subprotocol of the current (or last) connection, e.g. `ocpp2.1`."""
        return None if self.version is None else subprotocol_for(self.version)

    @property
    def violation_count(self) -> int:
        """How many broken frames or invalid payloads this station has sent."""
        return sum(self.violations.values())

    # -- messages -------------------------------------------------------------------------

    def messages_since(self, index: int) -> Iterator[ReceivedMessage]:
        """The kept messages whose position in the station's whole history is `index` or later.

        Positions count every message ever received (`messages_received`), so a test can take
        `messages_received` before causing something and then look only at what came after.
        """
        messages = self.messages
        if messages is None:
            return iter(())
        first_kept = self.messages_received - len(messages)
        skip = max(0, index - first_kept)
        return (message for position, message in enumerate(messages) if position >= skip)

    def actions(self) -> list[str]:
        """The actions of the kept messages, oldest first."""
        return [message.action for message in self.messages or ()]

    def record_request(self, action: str, payload: Mapping[str, Any]) -> None:
        """Take in one valid request; called before the CSMS answers it."""
        self.messages_received += 1
        if self.messages is not None:
            self.messages.append(ReceivedMessage(action, payload))
        recorder = _RECORDERS.get(action)
        if recorder is not None:
            recorder(self, payload)

    def record_boot_answer(self, status: str | None) -> None:
        self.last_boot_status = status

    # -- what the link reports ------------------------------------------------------------

    def record_violation(self, action: str | None, code: str) -> None:
        self.violations[(action, code)] += 1

    # -- connections ----------------------------------------------------------------------

    def record_connected(self, version: OcppVersion) -> None:
        self.connected = True
        self.version = version
        self.connections += 1

    def record_disconnected(self) -> None:
        self.connected = False
        self.disconnections += 1

    # -- per-action recorders -------------------------------------------------------------

    def _record_boot(self, payload: Mapping[str, Any]) -> None:
        self.boots += 1
        self.last_boot_reason = payload["reason"]
        self.charging_station = payload["chargingStation"]

    def _record_status(self, payload: Mapping[str, Any]) -> None:
        key = (payload["evseId"], payload["connectorId"])
        self.connectors[key] = payload["connectorStatus"]

    def _record_event(self, payload: Mapping[str, Any]) -> None:
        # OCPP 2.1 lets a station report connector status as a NotifyEvent of the Connector
        # component's AvailabilityState instead of a StatusNotification.
        for event in payload["eventData"]:
            component = event["component"]
            if component["name"] != "Connector" or event["variable"]["name"] != (
                "AvailabilityState"
            ):
                continue
            evse = component.get("evse")
            key = None if evse is None else _evse_connector(evse)
            if key is not None:
                self.connectors[key] = event["actualValue"]

    def _record_transaction_event(self, payload: Mapping[str, Any]) -> None:
        transaction_id = payload["transactionInfo"]["transactionId"]
        record = self.transactions.get(transaction_id)
        if record is None:
            record = self._new_transaction(transaction_id)
        record.seq_nos.append(payload["seqNo"])
        event_type = payload["eventType"]
        record.event_types.append(event_type)
        record.trigger_reasons.append(payload["triggerReason"])
        if payload.get("offline"):
            record.offline_events += 1
        evse = payload.get("evse")
        if evse is not None:
            record.evse_id = evse["id"]
        id_token = payload.get("idToken")
        if id_token is not None:
            record.id_token = id_token["idToken"]
        if event_type == "Ended":
            record.ended = True
            record.stopped_reason = payload["transactionInfo"].get("stoppedReason")

    def _new_transaction(self, transaction_id: str) -> TransactionRecord:
        transactions = self.transactions
        if len(transactions) >= self._max_transactions:
            # Dicts keep insertion order, so the first ended one is the oldest ended one; when
            # none has ended, the oldest is forgotten all the same to keep memory bounded.
            oldest = next(
                (tx_id for tx_id, tx in transactions.items() if tx.ended),
                next(iter(transactions)),
            )
            del transactions[oldest]
        record = transactions[transaction_id] = TransactionRecord(transaction_id)
        return record


_RECORDERS: dict[str, Callable[[StationState, Mapping[str, Any]], None]] = {
    "BootNotification": StationState._record_boot,
    "StatusNotification": StationState._record_status,
    "NotifyEvent": StationState._record_event,
    "TransactionEvent": StationState._record_transaction_event,
}
