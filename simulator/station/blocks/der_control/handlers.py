"""SetDERControl, GetDERControl and ClearDERControl (R04), and the DERCtrlr variables."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ....link import Answer
from ...core import GridEvent, StationCore, in_parts, refused
from ...device_model import VariableSpec
from .acting import review
from .alarms import report_grid_event
from .curves import ACTIVE_POWER_CURVES, ACTIVE_POWER_UNITS, TRIP_CURVES
from .store import DEFAULT_ONLY, Stored, controls_of, epoch_s, peek_controls, setting_field

if TYPE_CHECKING:
    from ...config import StationConfig

__all__ = [
    "ITEMS_PER_MESSAGE",
    "clear_der_control",
    "get_der_control",
    "grid_event",
    "set_der_control",
    "variables",
]

#: Controls per ReportDERControl (DeviceDataCtrlr.ItemsPerMessage[GetDERControl]); the schema
#: allows 24 per list.
ITEMS_PER_MESSAGE = 24
#: At most this many controls per control type: what one report list and supersededIds hold.
_PER_TYPE = 24
#: Every setting field of SetDERControlRequest.
_SETTING_FIELDS = (
    "curve",
    "enterService",
    "fixedPFAbsorb",
    "fixedPFInject",
    "fixedVar",
    "freqDroop",
    "gradient",
    "limitMaxDischarge",
)


def _changed(station: StationCore) -> Any:
    async def act() -> None:
        await review(station)

    return act


def _refusal(station: StationCore, payload: Mapping[str, Any]) -> Answer | None:
    """Why the control in `payload` cannot be stored, or None."""
    control_type = payload["controlType"]
    control_id = payload["controlId"]
    field = setting_field(control_type)
    setting = payload.get(field)
    if setting is None:
        return refused("MissingParam", f"a {control_type} control needs its setting in {field}")
    others = [f for f in _SETTING_FIELDS if f != field and f in payload]
    if others:
        return refused(
            "InvalidValue",
            f"a {control_type} control carries its setting in {field} only, not in "
            + ", ".join(others),
        )
    controls = peek_controls(station)
    existing = None if controls is None else controls.controls.get(control_id)
    if existing is not None and existing.control_type != control_type:
        return refused(
            "InvalidValue",
            f"controlId {control_id} is in use by a {existing.control_type} control; clear it "
            "or choose another id",
        )
    if not payload["isDefault"]:
        if control_type in DEFAULT_ONLY:
            return refused(
                "InvalidValue", f"{control_type} has no schedule: set it with isDefault true"
            )
        if "startTime" not in setting or "duration" not in setting:
            return refused(
                "MissingParam", "a scheduled control (isDefault false) needs startTime and duration"
            )
        if not float(setting["duration"]) > 0:
            return refused("InvalidValue", "duration must be more than 0 seconds")
        end_s = epoch_s(setting["startTime"]) + float(setting["duration"])
        if end_s <= station.clock.epoch_s():
            return refused("InvalidValue", "the control's startTime + duration is in the past")
    if field == "curve":
        if control_type in ACTIVE_POWER_CURVES and setting["yUnit"] not in ACTIVE_POWER_UNITS:
            return refused(
                "InvalidValue",
                f"a {control_type} curve gives active power: yUnit must be one of "
                + ", ".join(sorted(ACTIVE_POWER_UNITS)),
            )
        if control_type in TRIP_CURVES and any(p["y"] < 0 for p in setting["curveData"]):
            return refused("InvalidValue", "a trip curve's y is a time in seconds, not below 0")
        if not setting["curveData"]:
            return refused("MissingParam", "the curve has no points in curveData")
    if controls is not None and existing is None:
        same = sum(1 for c in controls if c.control_type == control_type)
        if same >= _PER_TYPE:
            return refused(
                "OutOfStorage",
                f"the station holds {_PER_TYPE} {control_type} controls already; clear some",
            )
    return None


def set_der_control(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    """Store a DER control (R04): Accepted with the ids it supersedes, or Rejected saying why."""
    refusal = _refusal(station, payload)
    if refusal is not None:
        return refusal
    control_type = payload["controlType"]
    setting = payload[setting_field(control_type)]
    is_default = bool(payload["isDefault"])
    start_s, end_s = -math.inf, math.inf
    if not is_default:
        start_s = epoch_s(setting["startTime"]) - station.clock.epoch_s(0.0)
        end_s = start_s + float(setting["duration"])
    controls = controls_of(station)
    superseded = controls.put(
        Stored(
            control_id=payload["controlId"],
            control_type=control_type,
            is_default=is_default,
            setting=setting,
            priority=int(setting["priority"]),
            start_s=start_s,
            end_s=end_s,
            seq=controls.next_seq(),
        )
    )
    answer: dict[str, Any] = {"status": "Accepted"}
    if superseded:
        answer["supersededIds"] = superseded[:24]
    return Answer(answer, then=_changed(station))


def clear_der_control(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    """Remove the controls named by id, else by type, else all of the kind (default or
    scheduled) the request names; NotFound when none matches."""
    controls = peek_controls(station)
    found = (
        []
        if controls is None
        else controls.matching(
            bool(payload["isDefault"]), payload.get("controlType"), payload.get("controlId")
        )
    )
    if controls is None or not found:
        return Answer({"status": "NotFound"})
    controls.remove(found)
    return Answer({"status": "Accepted"}, then=_changed(station))


def _report_item(control: Stored, superseded: bool) -> tuple[str, dict[str, Any]]:
    """The ReportDERControl list a control goes in, and its entry there."""
    kind = control.control_type
    field = setting_field(kind)
    entry: dict[str, Any] = {"id": control.control_id}
    if kind in DEFAULT_ONLY:
        entry[field] = control.setting
        return field, entry
    entry["isDefault"] = control.is_default
    entry["isSuperseded"] = superseded
    if field == "curve":
        entry["curveType"] = kind
        entry["curve"] = control.setting
    elif field in ("fixedPFAbsorb", "fixedPFInject"):
        entry["fixedPF"] = control.setting
    else:
        entry[field] = control.setting
    return field, entry


def get_der_control(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    """Accepted and a ReportDERControl (in parts, `tbc` on all but the last) when controls
    match; NotFound when none does."""
    controls = peek_controls(station)
    found = (
        []
        if controls is None
        else controls.matching(
            payload.get("isDefault"), payload.get("controlType"), payload.get("controlId")
        )
    )
    if controls is None or not found:
        return Answer({"status": "NotFound"})
    items = [_report_item(c, controls.superseded(c)) for c in found]
    request_id = payload["requestId"]
    per_message = max(
        1, station.device_model.integer("DeviceDataCtrlr", "ItemsPerMessage", "GetDERControl")
    )

    async def report() -> None:
        parts = in_parts(items, per_message)
        for index, part in enumerate(parts):
            message: dict[str, Any] = {"requestId": request_id}
            for field, entry in part:
                message.setdefault(field, []).append(entry)
            if index < len(parts) - 1:
                message["tbc"] = True
            await station.call("ReportDERControl", message)

    return Answer({"status": "Accepted"}, then=report)


async def grid_event(station: StationCore, event: GridEvent) -> None:
    """A grid event began or ended: report it (R05), then act on it with the controls in
    force (a curve's limit, a trip)."""
    await report_grid_event(station, event)
    controls = peek_controls(station)
    if controls is not None and controls.controls:
        for evse in station.evses:
            evse.wake()
        await review(station)


def variables(config: StationConfig) -> Iterator[VariableSpec]:
    if config.ocpp_version != "2.1":
        return
    yield VariableSpec("DERCtrlr", "Enabled", "boolean", "true", "ReadOnly")
    yield VariableSpec("DERCtrlr", "Available", "boolean", "true", "ReadOnly")
    yield VariableSpec(
        "DeviceDataCtrlr",
        "ItemsPerMessage",
        "integer",
        str(ITEMS_PER_MESSAGE),
        "ReadOnly",
        variable_instance="GetDERControl",
    )
