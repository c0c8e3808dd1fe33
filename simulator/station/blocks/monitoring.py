"""Block N, monitoring: variable monitors, the events they raise, and periodic event streams.

N02  SetVariableMonitoring: UpperThreshold, LowerThreshold, Delta, Periodic and
     PeriodicClockAligned on any readable device-model variable (thresholds need a number),
     and in OCPP 2.1 TargetDelta and TargetDeltaRelative on a variable with a target.  A known
     id replaces that custom monitor; a second monitor of the same type and severity on the
     same variable is a Duplicate.
N03  SetMonitoringBase: All activates the pre-configured monitors; FactoryDefault (the
     station's default) and HardWiredOnly disable them and clear the custom monitors.  The
     hard-wired ones always stay.
N04  SetMonitoringLevel: events of a severity above MonitoringCtrlr.ActiveMonitoringLevel
     are not reported.
N05  ClearVariableMonitoring: a custom monitor goes (NotFound when unknown; built-in ones are
     Rejected: SetMonitoringBase is how they are turned off).
N02  GetMonitoringReport: NotifyMonitoringReport in parts of DeviceDataCtrlr.ItemsPerMessage
     [GetReport], filtered by monitoringCriteria and componentVariable; EmptyResultSet when no
     monitor matches.
N07  NotifyEvent from the monitors: trigger Alerting (thresholds, target deltas; `cleared`
     when the value returns), Delta or Periodic, with the monitor's id, severity (2.1) and
     eventNotificationType.  Offline, events of a severity at or below
     MonitoringCtrlr.OfflineQueuingSeverity are queued and sent after the next boot; others,
     and every periodic event, describe a moment that has passed and are dropped.
N11-N15 (2.1) A monitor set with `periodicEventStream` opens a stream
     (OpenPeriodicEventStream); once the CSMS accepts it, the monitor's values go out as
     NotifyPeriodicEventStream SEND frames, `values` at a time or every `interval` seconds.
     GetPeriodicEventStream lists the open streams, AdjustPeriodicEventStream changes their
     parameters, and clearing the monitor closes its stream (ClosePeriodicEventStream).

When values are checked.  Nothing polls: a monitor is checked when its value may have changed.
Stored variables change when the CSMS sets them (`VariableChanged`); availability states when a
connector's status may have changed (`ConnectorStatusChanged`); an EVSE's power (and the
variables read live from its state) when the EV session's power changes, which the EVSE tells
through `Evse.power_watch` -- set only on the EVSEs of a station whose monitors read them, so
an EVSE nobody watches pays one attribute test.  Power is constant between those events, so a
threshold crossed is seen at the instant it is crossed.  Periodic monitors are one timer task
each.  A station holds no monitoring state until the CSMS sets a monitor or activates the
pre-configured ones: the hard-wired over-power monitors of an untouched station cannot fire
(an EV session never draws more than its EVSE's rating), so there is nothing to watch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from ...clock import Alarm
from ...link import Answer
from ...ocpp import ErrorCode, RpcError
from ..components import decimal_text
from ..config import StationConfig
from ..core import (
    Block,
    Booted,
    ConnectorStatusChanged,
    StationCore,
    VariableChanged,
    in_parts,
    refused,
)
from ..device_model import VariableKey, VariableSpec, names_variable
from ..evse import Evse

__all__ = ["BLOCK", "Monitor", "MonitoringState", "builtin_monitors"]

_CTRLR = "MonitoringCtrlr"
_BASES = ("All", "FactoryDefault", "HardWiredOnly")
_NUMERIC = frozenset({"integer", "decimal"})
_THRESHOLDS = frozenset({"UpperThreshold", "LowerThreshold"})
_TARGETS = frozenset({"TargetDelta", "TargetDeltaRelative"})
_PERIODIC = frozenset({"Periodic", "PeriodicClockAligned"})
#: The monitor types of each OCPP version (2.1 adds the target deltas).
_TYPES = {
    "2.0.1": frozenset({"UpperThreshold", "LowerThreshold", "Delta", *_PERIODIC}),
    "2.1": frozenset({"UpperThreshold", "LowerThreshold", "Delta", *_PERIODIC, *_TARGETS}),
}
#: EventTriggerEnumType of the events each monitor type raises.
_TRIGGER = {
    "UpperThreshold": "Alerting",
    "LowerThreshold": "Alerting",
    "TargetDelta": "Alerting",
    "TargetDeltaRelative": "Alerting",
    "Delta": "Delta",
    "Periodic": "Periodic",
    "PeriodicClockAligned": "Periodic",
}
#: GetMonitoringReport's monitoringCriteria: the monitor types each one selects.
_CRITERIA = {
    "ThresholdMonitoring": _THRESHOLDS,
    "DeltaMonitoring": frozenset({"Delta", *_TARGETS}),
    "PeriodicMonitoring": _PERIODIC,
}
#: Custom monitors a station holds at most, so a CSMS cannot grow a station without end.
MAX_CUSTOM_MONITORS = 1000
#: Events kept for sending after the next boot at most; the oldest go first beyond it.
MAX_QUEUED_EVENTS = 1000
#: eventData entries per NotifyEvent; a burst goes out in parts with `tbc`.
EVENTS_PER_MESSAGE = 50
#: Values a stream keeps at most while it waits to send; the oldest go first beyond it.
MAX_STREAM_VALUES = 1000
#: Built-in monitor ids are below this; custom ones count up from it.
FIRST_CUSTOM_ID = 100
#: A built-in EVSE power Delta monitor reports changes of this share of the EVSE's rating.
_POWER_DELTA_SHARE = 0.1


# -- monitors -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Monitor:
    """One variable monitor and what it remembers between checks."""

    id: int
    spec: VariableSpec
    type: str
    value: float
    severity: int
    #: CustomMonitor, PreconfiguredMonitor or HardWiredMonitor (eventNotificationType).
    kind: str = "CustomMonitor"
    #: Active only while a transaction runs (on the variable's EVSE, or any for the station).
    transaction: bool = False
    #: Threshold and target monitors: the condition held at the last check.
    alerting: bool = False
    #: Delta monitors: the value last reported (or when the monitor was set).
    reference: str | None = None
    #: Periodic monitors: the scope of the timer task.
    timer: trio.CancelScope | None = field(default=None, repr=False)
    #: (2.1) The periodicEventStream parameters asked for, and the stream once it is open.
    stream_params: Mapping[str, Any] | None = None
    stream: Stream | None = field(default=None, repr=False)

    @property
    def key(self) -> VariableKey:
        return self.spec.key

    def json(self, ocpp_version: str) -> dict[str, Any]:
        """VariableMonitoringType for NotifyMonitoringReport."""
        found: dict[str, Any] = {
            "id": self.id,
            "transaction": self.transaction,
            "value": self.value,
            "type": self.type,
            "severity": self.severity,
        }
        if ocpp_version == "2.1":
            found["eventNotificationType"] = self.kind
        return found


@dataclass(slots=True)
class Stream:
    """(2.1) An open periodic event stream and the values waiting to go out on it."""

    id: int
    monitor_id: int
    interval_s: int
    values: int
    #: (simulated second, value) pairs not yet sent, oldest first.
    buffer: list[tuple[float, str]] = field(default_factory=list)
    alarm: Alarm = field(default_factory=Alarm, repr=False)
    task: trio.CancelScope | None = field(default=None, repr=False)

    def params(self) -> dict[str, int]:
        return {"interval": self.interval_s, "values": self.values}


@dataclass(frozen=True, slots=True)
class _Event:
    """An eventData entry waiting to be sent, with what decides whether it may be queued."""

    data: dict[str, Any]
    severity: int
    periodic: bool


@dataclass(slots=True)
class MonitoringState:
    """Per station, once monitoring is used: the active monitors and the events to send."""

    monitors: dict[int, Monitor] = field(default_factory=dict)
    next_id: int = FIRST_CUSTOM_ID
    pending: list[_Event] = field(default_factory=list)
    offline: list[_Event] = field(default_factory=list)
    sending: bool = False
    streams: dict[int, Stream] = field(default_factory=dict)
    next_stream_id: int = 1
    #: The built-in monitors copied in (their runtime state is per station).
    seeded: bool = False


# -- where values come from ---------------------------------------------------------------------


def _evse_power(evse: Evse) -> str:
    return decimal_text(evse.power_w)


#: Variables whose Actual value follows the simulation rather than a stored setting, read from
#: the EVSE they belong to.
_SIMULATED: dict[tuple[str, str], Callable[[Evse], str]] = {("EVSE", "Power"): _evse_power}


def _is_live(spec: VariableSpec) -> bool:
    """Whether the value follows the station's state (checked on power and status changes)."""
    return spec.reader is not None or (spec.component, spec.variable) in _SIMULATED


def _read(station: StationCore, spec: VariableSpec) -> str:
    """The variable's Actual value now: live ones through the device model's reader or the
    EVSE's state, stored ones as stored."""
    if spec.reader is None and spec.evse_id is not None:
        simulated = _SIMULATED.get((spec.component, spec.variable))
        if simulated is not None:
            evse = station.evse(spec.evse_id)
            if evse is not None:
                return simulated(evse)
    return station.device_model.value(spec)


def _target(station: StationCore, spec: VariableSpec) -> float | None:
    """The variable's Target, for target-delta monitors; None when it has none.

    An EVSE's power aims at what the charging profiles allow (at most its rating) while its
    power path is closed, and at nothing while it is open."""
    stored = station.device_model.read(spec.key, "Target")
    if stored.status == "Accepted" and stored.value is not None:
        return _number(stored.value)
    if (spec.component, spec.variable) == ("EVSE", "Power") and spec.evse_id is not None:
        evse = station.evse(spec.evse_id)
        if evse is None:
            return None
        session = evse.session
        if session is None or not session.enabled:
            return 0.0
        limit_w = station.charging_limit(evse).limit_w
        return evse.max_power_w if limit_w is None else min(limit_w, evse.max_power_w)
    return None


def _has_target(station: StationCore, spec: VariableSpec) -> bool:
    if (spec.component, spec.variable) == ("EVSE", "Power") and spec.evse_id is not None:
        return True
    return station.device_model.read(spec.key, "Target").status == "Accepted"


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


# -- the built-in monitors ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Builtin:
    """A monitor a station comes with: the same on every station of a fleet."""

    id: int
    key: VariableKey
    type: str
    value: float
    severity: int
    kind: str


@functools.lru_cache(maxsize=64)
def builtin_monitors(config: StationConfig) -> tuple[_Builtin, ...]:
    """The monitors a station of `config` comes with, shared by the fleet.

    Hard-wired: each EVSE's Power above its rating (severity 2, a system failure), which the
    simulated EVs never cause.  Pre-configured, active under SetMonitoringBase All: each EVSE's
    AvailabilityState changing (severity 8, informational) and its Power moving by a tenth of
    its rating (severity 9, debug).  The factory default activates none of the pre-configured
    ones, so an untouched station reports nothing it does not report already.
    """
    found: list[_Builtin] = []
    for evse_id, evse in enumerate(config.evses, start=1):
        power = ("EVSE", None, evse_id, None, "Power", None)
        found.append(
            _Builtin(
                len(found) + 1, power, "UpperThreshold", evse.max_power_w, 2, "HardWiredMonitor"
            )
        )
    for evse_id, evse in enumerate(config.evses, start=1):
        state = ("EVSE", None, evse_id, None, "AvailabilityState", None)
        found.append(_Builtin(len(found) + 1, state, "Delta", 0.0, 8, "PreconfiguredMonitor"))
        power = ("EVSE", None, evse_id, None, "Power", None)
        delta_w = evse.max_power_w * _POWER_DELTA_SHARE
        found.append(_Builtin(len(found) + 1, power, "Delta", delta_w, 9, "PreconfiguredMonitor"))
    if len(found) >= FIRST_CUSTOM_ID:
        raise ValueError(f"{len(found)} built-in monitors; ids from {FIRST_CUSTOM_ID} are custom")
    return tuple(found)


def _active_builtins(station: StationCore, base: str) -> Iterator[Monitor]:
    """Fresh monitors for the built-in ones active under `base` (hard-wired ones always)."""
    for builtin in builtin_monitors(station.config):
        if builtin.kind != "HardWiredMonitor" and base != "All":
            continue
        spec = station.device_model.spec.find(builtin.key)
        if spec is not None:
            yield Monitor(
                builtin.id, spec, builtin.type, builtin.value, builtin.severity, builtin.kind
            )


def _base(station: StationCore) -> str:
    return station.device_model.get(_CTRLR, "ActiveMonitoringBase")


def _level(station: StationCore) -> int:
    return station.device_model.integer(_CTRLR, "ActiveMonitoringLevel")


def _state(station: StationCore) -> MonitoringState:
    """The station's monitoring state, made (with the active built-in monitors) on first use."""
    state = station.block_state(BLOCK)
    if not state.seeded:
        state.seeded = True
        for monitor in _active_builtins(station, _base(station)):
            state.monitors[monitor.id] = monitor
            _start(station, state, monitor)
        _watch_power(station, state)
    return state


def _all_monitors(station: StationCore) -> Iterable[Monitor]:
    """Every active monitor: the state's, or the active built-in ones of a station that has
    made none."""
    state = station.peek_block_state(BLOCK)
    if state is not None and state.seeded:
        return list(state.monitors.values())
    return list(_active_builtins(station, _base(station)))


def _watch_power(station: StationCore, state: MonitoringState) -> None:
    """Ask each EVSE to report power changes exactly while some monitor reads a live value of
    it (or of the whole station)."""
    watched: set[int | None] = {
        monitor.spec.evse_id
        for monitor in state.monitors.values()
        if monitor.type not in _PERIODIC and _is_live(monitor.spec)
    }
    watch = functools.partial(_power_changed, station)
    for evse in station.evses:
        evse.power_watch = watch if (evse.id in watched or None in watched) else None


# -- checking monitors --------------------------------------------------------------------------


def _power_changed(station: StationCore, evse: Evse) -> None:
    state = station.peek_block_state(BLOCK)
    if state is None:
        return
    for monitor in list(state.monitors.values()):
        evse_id = monitor.spec.evse_id
        if (evse_id is None or evse_id == evse.id) and _is_live(monitor.spec):
            _check(station, state, monitor)


def _transaction_id(station: StationCore, spec: VariableSpec) -> str | None:
    """The transaction running where the variable is (its EVSE, or any for the station)."""
    evses = station.evses if spec.evse_id is None else [station.evse(spec.evse_id)]
    for evse in evses:
        if evse is not None and evse.transaction is not None:
            return evse.transaction.id
    return None


def _check(station: StationCore, state: MonitoringState, monitor: Monitor) -> None:
    """Compare the monitor's variable with its condition now; report what changed."""
    if monitor.type in _PERIODIC:
        return
    transaction_id = _transaction_id(station, monitor.spec) if monitor.transaction else None
    if monitor.transaction and transaction_id is None:
        return
    text = _read(station, monitor.spec)
    if monitor.type == "Delta":
        reference = monitor.reference
        if reference is None:
            monitor.reference = text
            return
        if monitor.spec.data_type in _NUMERIC:
            now, before = _number(text), _number(reference)
            changed = (
                now is not None and before is not None and abs(now - before) > monitor.value
            ) or ((now is None) != (before is None))
        else:
            changed = text != reference
        if changed:
            monitor.reference = text
            _report(station, state, monitor, text, transaction_id)
        return
    number = _number(text)
    if number is None:
        return
    if monitor.type == "UpperThreshold":
        alerting = number > monitor.value
    elif monitor.type == "LowerThreshold":
        alerting = number < monitor.value
    else:
        target = _target(station, monitor.spec)
        if target is None:
            return
        allowed = monitor.value if monitor.type == "TargetDelta" else monitor.value * abs(target)
        alerting = abs(number - target) > allowed
    if alerting != monitor.alerting:
        monitor.alerting = alerting
        _report(station, state, monitor, text, transaction_id, cleared=not alerting)


def _report(
    station: StationCore,
    state: MonitoringState,
    monitor: Monitor,
    text: str,
    transaction_id: str | None,
    *,
    cleared: bool | None = None,
) -> None:
    """Send (or stream, or queue) one event of `monitor`, unless monitoring is off or the
    monitor's severity is above the active monitoring level."""
    dm = station.device_model
    if not dm.boolean("MonitoringCtrlr", "Enabled") or monitor.severity > _level(station):
        return
    now_s = station.clock.sim_now()
    stream = monitor.stream
    if stream is not None:
        _stream_value(stream, now_s, text)
        return
    data: dict[str, Any] = {
        "eventId": station.next_event_id(),
        "timestamp": station.clock.timestamp(now_s),
        "trigger": _TRIGGER[monitor.type],
        "actualValue": text[:2500],
        "component": monitor.spec.component_json(),
        "variable": monitor.spec.variable_json(),
        "variableMonitoringId": monitor.id,
        "eventNotificationType": monitor.kind,
    }
    if cleared is not None:
        data["cleared"] = cleared
    if transaction_id is not None:
        data["transactionId"] = transaction_id
    if station.config.ocpp_version == "2.1":
        data["severity"] = monitor.severity
    event = _Event(data, monitor.severity, monitor.type in _PERIODIC)
    if station.online:
        state.pending.append(event)
        if not state.sending:
            state.sending = True
            if not station.spawn(functools.partial(_send_events, station, state)):
                state.sending = False
    else:
        _queue_offline(station, state, [event])


def _queue_offline(station: StationCore, state: MonitoringState, events: list[_Event]) -> None:
    """Keep the events a CSMS must hear of even late: not periodic, and of a severity at or
    below OfflineQueuingSeverity (a lower number is more severe)."""
    queuing = station.device_model.integer("MonitoringCtrlr", "OfflineQueuingSeverity")
    state.offline.extend(e for e in events if not e.periodic and e.severity <= queuing)
    del state.offline[:-MAX_QUEUED_EVENTS]


async def _send_events(station: StationCore, state: MonitoringState) -> None:
    """Send the pending events in NotifyEvents, as many as came meanwhile each time."""
    try:
        while state.pending:
            batch, state.pending = state.pending, []
            parts = in_parts(batch, EVENTS_PER_MESSAGE)
            for seq_no, part in enumerate(parts):
                payload = {
                    "generatedAt": station.clock.timestamp(),
                    "seqNo": seq_no,
                    "tbc": seq_no < len(parts) - 1,
                    "eventData": [event.data for event in part],
                }
                if await station.call("NotifyEvent", payload) is None:
                    sent = sum(len(p) for p in parts[:seq_no])
                    _queue_offline(station, state, batch[sent:])
                    break
    finally:
        state.sending = False


async def _booted(station: StationCore, event: Booted) -> None:
    """Online again: the events queued offline go out first, in the order they happened."""
    state = station.peek_block_state(BLOCK)
    if state is None or not state.offline:
        return
    state.pending[:0] = state.offline
    state.offline = []
    if not state.sending:
        state.sending = True
        if not station.spawn(functools.partial(_send_events, station, state)):
            state.sending = False


def _status_changed(station: StationCore, event: ConnectorStatusChanged) -> None:
    state = station.peek_block_state(BLOCK)
    if state is None:
        return
    for monitor in list(state.monitors.values()):
        if _is_live(monitor.spec):
            _check(station, state, monitor)


async def _variable_changed(station: StationCore, event: VariableChanged) -> None:
    state = station.peek_block_state(BLOCK)
    if state is None:
        return
    for monitor in list(state.monitors.values()):
        if monitor.key == event.key:
            _check(station, state, monitor)


# -- periodic monitors --------------------------------------------------------------------------


def _start(station: StationCore, state: MonitoringState, monitor: Monitor) -> None:
    """Begin watching: a periodic monitor gets its timer; the others note the value now (a
    threshold already crossed is reported at once)."""
    if monitor.type in _PERIODIC:
        station.spawn(functools.partial(_periodic, station, state, monitor))
    else:
        _check(station, state, monitor)


def _stop(station: StationCore, state: MonitoringState, monitor: Monitor) -> None:
    if monitor.timer is not None:
        monitor.timer.cancel()
        monitor.timer = None
    stream = monitor.stream
    if stream is not None:
        monitor.stream = None
        state.streams.pop(stream.id, None)
        if stream.task is not None:
            stream.task.cancel()
        station.spawn(functools.partial(_close_stream, station, stream.id))


def _next_tick_s(station: StationCore, monitor: Monitor, last_s: float) -> float:
    """When a periodic monitor reports next: `value` seconds after the last report, or (clock
    aligned) at the next multiple of `value` seconds after midnight UTC."""
    interval_s = monitor.value
    if monitor.type == "Periodic":
        return last_s + interval_s
    now_s = station.clock.sim_now()
    epoch_s = station.clock.epoch_s(now_s)
    since_midnight_s = epoch_s % 86400.0
    next_s = (math.floor(since_midnight_s / interval_s + 1e-9) + 1) * interval_s
    return now_s + min(next_s, 86400.0) - since_midnight_s


async def _periodic(station: StationCore, state: MonitoringState, monitor: Monitor) -> None:
    with trio.CancelScope() as scope:
        monitor.timer = scope
        last_s = station.clock.sim_now()
        while True:
            last_s = _next_tick_s(station, monitor, last_s)
            await station.clock.sleep_until(last_s)
            if state.monitors.get(monitor.id) is not monitor:
                return
            transaction_id = _transaction_id(station, monitor.spec)
            if monitor.transaction and transaction_id is None:
                continue
            _report(
                station,
                state,
                monitor,
                _read(station, monitor.spec),
                transaction_id if monitor.transaction else None,
            )


# -- N02: SetVariableMonitoring -----------------------------------------------------------------


def _set_result(item: Mapping[str, Any], status: str, info: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "status": status,
        "type": item["type"],
        "severity": item["severity"],
        "component": item["component"],
        "variable": item["variable"],
    }
    if "id" in item:
        result["id"] = item["id"]
    if info is not None:
        reason = {"Duplicate": "Duplicate", "UnsupportedMonitorType": "UnsupportedType"}.get(
            status, "InvalidValue"
        )
        result["statusInfo"] = {"reasonCode": reason, "additionalInfo": info[:512]}
    return result


def _check_items(station: StationCore, items: list[Any], instance: str) -> None:
    limit = station.device_model.integer(_CTRLR, "ItemsPerMessage", instance)
    if len(items) > limit:
        raise RpcError(
            ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
            f"{len(items)} monitors in one {instance} request; "
            f"MonitoringCtrlr.ItemsPerMessage[{instance}] is {limit}: send them in parts",
        )


def _refusal(
    station: StationCore, state: MonitoringState, item: Mapping[str, Any]
) -> tuple[str, str | None, VariableSpec | None]:
    """Whether a setMonitoringData entry can be installed: (status, why not, the variable)."""
    model = station.device_model
    key = model.spec.lookup(item["component"], item["variable"])
    spec = model.spec.find(key)
    if spec is None:
        status = "UnknownVariable" if model.spec.has_component(key) else "UnknownComponent"
        return status, None, None
    monitor_type, value, severity = item["type"], float(item["value"]), int(item["severity"])
    if monitor_type not in _TYPES[station.config.ocpp_version]:
        return "UnsupportedMonitorType", f"{monitor_type} is not an OCPP 2.0.1 monitor", None
    if not 0 <= severity <= 9:
        return "Rejected", f"severity {severity} is not between 0 and 9", None
    monitor_id = item.get("id")
    if monitor_id is not None:
        existing = state.monitors.get(monitor_id)
        if existing is None:
            return "Rejected", f"no monitor has id {monitor_id}; leave id out to add one", None
        if existing.kind != "CustomMonitor":
            return "Rejected", f"monitor {monitor_id} is built in; see SetMonitoringBase", None
    if spec.mutability == "WriteOnly":
        return "Rejected", f"{spec.variable} is write-only: its value cannot be watched", None
    if not spec.monitorable:
        return "Rejected", f"{spec.component}.{spec.variable} does not support monitoring", None
    numeric = spec.data_type in _NUMERIC
    if (monitor_type in _THRESHOLDS or monitor_type in _TARGETS) and not numeric:
        return (
            "UnsupportedMonitorType",
            f"{monitor_type} needs a number; {spec.variable} is {spec.data_type}",
            None,
        )
    if monitor_type in _TARGETS and not _has_target(station, spec):
        return "UnsupportedMonitorType", f"{spec.variable} has no Target to compare with", None
    if monitor_type in _PERIODIC and not value >= 1:
        return (
            "Rejected",
            f"a {monitor_type} monitor's value is its interval in s (>= 1), got {value:g}",
            None,
        )
    if monitor_type in ("Delta", *_TARGETS) and value < 0:
        return "Rejected", f"a {monitor_type} monitor's value must not be negative", None
    for other in state.monitors.values():
        if (
            other.id != monitor_id
            and other.key == key
            and other.type == monitor_type
            and other.severity == severity
        ):
            return (
                "Duplicate",
                f"monitor {other.id} already is a {monitor_type} of severity {severity} here",
                None,
            )
    if monitor_id is None and _custom_count(state) >= MAX_CUSTOM_MONITORS:
        return "Rejected", f"the station holds at most {MAX_CUSTOM_MONITORS} custom monitors", None
    return "Accepted", None, spec


def _custom_count(state: MonitoringState) -> int:
    return sum(1 for monitor in state.monitors.values() if monitor.kind == "CustomMonitor")


def set_variable_monitoring(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    items = payload["setMonitoringData"]
    _check_items(station, items, "SetVariableMonitoring")
    state = _state(station)
    results = []
    streams: list[Monitor] = []
    for item in items:
        status, info, spec = _refusal(station, state, item)
        if status != "Accepted" or spec is None:
            results.append(_set_result(item, status, info))
            continue
        monitor_id = item.get("id")
        if monitor_id is None:
            monitor_id = state.next_id
            state.next_id += 1
        else:
            _stop(station, state, state.monitors.pop(monitor_id))
        monitor = Monitor(
            monitor_id,
            spec,
            item["type"],
            float(item["value"]),
            int(item["severity"]),
            transaction=bool(item.get("transaction", False)),
            stream_params=item.get("periodicEventStream"),
        )
        state.monitors[monitor_id] = monitor
        _start(station, state, monitor)
        if monitor.stream_params is not None:
            streams.append(monitor)
        results.append(_set_result({**item, "id": monitor_id}, "Accepted"))
    _watch_power(station, state)
    then = None
    if streams:
        then = functools.partial(_open_streams, station, state, streams)
    return Answer({"setMonitoringResult": results}, then=then)


# -- N03, N04, N05 ------------------------------------------------------------------------------


def set_monitoring_base(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    base = payload["monitoringBase"]
    if base not in _BASES:
        return refused("UnsupportedParam", f"monitoring base {base!r} is not one of {_BASES}")
    state = station.peek_block_state(BLOCK)
    if state is None and base != "All":
        # No custom monitors to clear and no pre-configured one to activate: record the base.
        station.device_model.store((_CTRLR, None, None, None, "ActiveMonitoringBase", None), base)
        return Answer({"status": "Accepted"})
    state = _state(station)
    for monitor in list(state.monitors.values()):
        if monitor.kind == "CustomMonitor" and base == "All":
            continue
        _stop(station, state, state.monitors.pop(monitor.id))
    station.device_model.store((_CTRLR, None, None, None, "ActiveMonitoringBase", None), base)
    for monitor in _active_builtins(station, base):
        state.monitors[monitor.id] = monitor
        _start(station, state, monitor)
    _watch_power(station, state)
    return Answer({"status": "Accepted"})


def set_monitoring_level(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    severity = payload["severity"]
    if not 0 <= severity <= 9:
        return refused("InvalidValue", f"severity {severity} is not between 0 and 9")
    station.device_model.store(
        (_CTRLR, None, None, None, "ActiveMonitoringLevel", None), str(severity)
    )
    return Answer({"status": "Accepted"})


def clear_variable_monitoring(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    ids = payload["id"]
    _check_items(station, ids, "ClearVariableMonitoring")
    state = station.peek_block_state(BLOCK)
    known = {monitor.id: monitor for monitor in _all_monitors(station)}
    results = []
    changed = False
    for monitor_id in ids:
        monitor = known.get(monitor_id)
        if monitor is None:
            results.append({"id": monitor_id, "status": "NotFound"})
        elif monitor.kind != "CustomMonitor" or state is None:
            info = f"monitor {monitor_id} is built in; SetMonitoringBase turns it off"
            results.append(
                {
                    "id": monitor_id,
                    "status": "Rejected",
                    "statusInfo": {"reasonCode": "ReadOnly", "additionalInfo": info},
                }
            )
        else:
            _stop(station, state, state.monitors.pop(monitor_id))
            changed = True
            results.append({"id": monitor_id, "status": "Accepted"})
    if changed and state is not None:
        _watch_power(station, state)
    return Answer({"clearMonitoringResult": results})


# -- N02: GetMonitoringReport -------------------------------------------------------------------


def get_monitoring_report(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    request_id = payload["requestId"]
    criteria = payload.get("monitoringCriteria")
    wanted = payload.get("componentVariable")
    types: frozenset[str] | None = None
    if criteria:
        types = frozenset().union(*(_CRITERIA[criterion] for criterion in criteria))
    grouped: dict[VariableKey, list[Monitor]] = {}
    for monitor in sorted(_all_monitors(station), key=lambda m: m.id):
        if types is not None and monitor.type not in types:
            continue
        if wanted and not any(names_variable(entry, monitor.spec) for entry in wanted):
            continue
        grouped.setdefault(monitor.key, []).append(monitor)
    if not grouped:
        return Answer({"status": "EmptyResultSet"})
    version = station.config.ocpp_version
    items = [
        {
            "component": monitors[0].spec.component_json(),
            "variable": monitors[0].spec.variable_json(),
            "variableMonitoring": [monitor.json(version) for monitor in monitors],
        }
        for monitors in grouped.values()
    ]

    async def send_report() -> None:
        per_message = station.device_model.integer(
            "DeviceDataCtrlr", "ItemsPerMessage", "GetReport"
        )
        generated_at = station.clock.timestamp()
        parts = in_parts(items, per_message)
        for seq_no, part in enumerate(parts):
            message = {
                "requestId": request_id,
                "generatedAt": generated_at,
                "seqNo": seq_no,
                "tbc": seq_no < len(parts) - 1,
                "monitor": list(part),
            }
            if await station.call("NotifyMonitoringReport", message) is None:
                return

    return Answer({"status": "Accepted"}, then=send_report)


# -- N11-N15 (2.1): periodic event streams ------------------------------------------------------


async def _open_streams(
    station: StationCore, state: MonitoringState, monitors: list[Monitor]
) -> None:
    """Ask the CSMS to open a stream for each new monitor that wants one; a monitor whose
    stream is refused (or that could not ask) reports with NotifyEvent instead."""
    for monitor in monitors:
        if state.monitors.get(monitor.id) is not monitor or monitor.stream_params is None:
            continue
        params = monitor.stream_params
        stream = Stream(
            state.next_stream_id,
            monitor.id,
            int(params.get("interval", 0)),
            int(params.get("values", 0)),
        )
        state.next_stream_id += 1
        # Known from the moment it is asked for: a CSMS may adjust it as soon as it answers.
        state.streams[stream.id] = stream
        answer = await station.call(
            "OpenPeriodicEventStream",
            {
                "constantStreamData": {
                    "id": stream.id,
                    "variableMonitoringId": monitor.id,
                    "params": stream.params(),
                }
            },
        )
        if answer is None or answer.get("status") != "Accepted":
            state.streams.pop(stream.id, None)
            continue
        if state.monitors.get(monitor.id) is not monitor:
            state.streams.pop(stream.id, None)
            await _close_stream(station, stream.id)
            continue
        monitor.stream = stream
        station.spawn(functools.partial(_run_stream, station, stream))


def _stream_value(stream: Stream, now_s: float, text: str) -> None:
    stream.buffer.append((now_s, text[:2500]))
    del stream.buffer[:-MAX_STREAM_VALUES]
    if len(stream.buffer) == 1 or (stream.values and len(stream.buffer) >= stream.values):
        stream.alarm.wake()


async def _run_stream(station: StationCore, stream: Stream) -> None:
    """Send the stream's values: once `values` have gathered, or `interval` seconds after the
    first waiting one (at once when both are 0).  Offline, values are dropped: a SEND has no
    queue, and they describe moments that have passed."""
    with trio.CancelScope() as scope:
        stream.task = scope
        while True:
            buffer = stream.buffer
            if not buffer:
                await stream.alarm.sleep_until(math.inf)
                continue
            enough = stream.values > 0 and len(buffer) >= stream.values
            if not enough and stream.interval_s > 0:
                due_s = buffer[0][0] + stream.interval_s
                if station.clock.sim_now() < due_s - 1e-6:
                    await stream.alarm.sleep_until(station.clock.trio_deadline(due_s))
                    continue
            elif not enough and stream.values > 0:
                await stream.alarm.sleep_until(math.inf)
                continue
            count = stream.values if stream.values > 0 else len(buffer)
            part, stream.buffer = buffer[:count], buffer[count:]
            base_s = part[0][0]
            message = {
                "id": stream.id,
                "pending": len(stream.buffer),
                "basetime": station.clock.timestamp(base_s),
                "data": [{"t": round(at_s - base_s, 3), "v": value} for at_s, value in part],
            }
            await station.send("NotifyPeriodicEventStream", message)


async def _close_stream(station: StationCore, stream_id: int) -> None:
    await station.call("ClosePeriodicEventStream", {"id": stream_id})


def get_periodic_event_stream(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    state = station.peek_block_state(BLOCK)
    streams = [] if state is None else sorted(state.streams.values(), key=lambda s: s.id)
    if not streams:
        return Answer({})
    return Answer(
        {
            "constantStreamData": [
                {"id": s.id, "variableMonitoringId": s.monitor_id, "params": s.params()}
                for s in streams
            ]
        }
    )


def adjust_periodic_event_stream(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    state = station.peek_block_state(BLOCK)
    stream = None if state is None else state.streams.get(payload["id"])
    if stream is None:
        return refused("UnknownStream", f"no periodic event stream has id {payload['id']}")
    params = payload["params"]
    stream.interval_s = int(params.get("interval", stream.interval_s))
    stream.values = int(params.get("values", stream.values))
    stream.alarm.wake()
    return Answer({"status": "Accepted"})


# -- the device model ---------------------------------------------------------------------------


def _variables(config: StationConfig) -> Iterator[VariableSpec]:
    """MonitoringCtrlr: whether monitoring runs, how many monitors a request may carry, what
    is queued offline, and the base and level the CSMS set (ReadOnly: SetMonitoringBase and
    SetMonitoringLevel change them)."""
    yield VariableSpec(_CTRLR, "Available", "boolean", "true", "ReadOnly")
    yield VariableSpec(_CTRLR, "Enabled", "boolean", "true")
    for instance in ("SetVariableMonitoring", "ClearVariableMonitoring"):
        yield VariableSpec(
            _CTRLR, "ItemsPerMessage", "integer", "20", "ReadOnly", variable_instance=instance
        )
    yield VariableSpec(_CTRLR, "OfflineQueuingSeverity", "integer", "4", min_limit=0, max_limit=9)
    yield VariableSpec(
        _CTRLR,
        "ActiveMonitoringBase",
        "OptionList",
        "FactoryDefault",
        "ReadOnly",
        values_list=_BASES,
    )
    yield VariableSpec(
        _CTRLR, "ActiveMonitoringLevel", "integer", "9", "ReadOnly", min_limit=0, max_limit=9
    )


BLOCK: Block[MonitoringState] = Block(
    letter="N",
    name="monitoring",
    handlers={
        "SetVariableMonitoring": set_variable_monitoring,
        "SetMonitoringBase": set_monitoring_base,
        "SetMonitoringLevel": set_monitoring_level,
        "ClearVariableMonitoring": clear_variable_monitoring,
        "GetMonitoringReport": get_monitoring_report,
        "GetPeriodicEventStream": get_periodic_event_stream,
        "AdjustPeriodicEventStream": adjust_periodic_event_stream,
    },
    follow_ups={"GetMonitoringReport": ("NotifyMonitoringReport",)},
    variables=_variables,
    reactions={
        Booted: _booted,
        ConnectorStatusChanged: _status_changed,
        VariableChanged: _variable_changed,
    },
    new_state=MonitoringState,
)
