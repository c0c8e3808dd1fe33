"""What the stored DER controls do to the EVs' power, and when that changes.

The grid at the station is what the scripted DER events leave at the site (`SiteHooks.
grid_excursions`, `grid_models.grid_at`): nominal between them.  Power changes only at events:
a grid event starting or ending (the `GridEvent` reaction), a control set or cleared, a
scheduled control starting or ending, a trip curve's time running out, the re-entry after a
trip.  One trio timer per station with controls waits for the next of the timed ones
(`review` re-arms it); nothing polls.

- FreqWatt and VoltWatt cap the EV's power (charging and discharging) at the curve's share of
  the EVSE's maximum power at the present frequency or voltage.
- FreqDroop cuts charging below `underFreq` and discharging above `overFreq`
  (`curves.droop_fractions`).
- LimitMaxDischarge caps discharging at `pctMaxDischargePower` of the EVSE's maximum power.
- A must-trip curve (HF, LF, HV, LV) crossed for its time stops the output
  (NotifyDERStartStop started=false with the curve's controlId); once the grid is back and
  within the EnterService limits, after EnterService's `delay`, the output returns
  (started=true), ramping up over `rampRate` seconds in four steps.  A momentary-cessation curve
  (HVMomCess, LVMomCess) stops the output the same way and lets it return as soon as the grid
  is back.
- A scheduled control's start and end are announced with NotifyDERStartStop.

May-trip curves, PowerMonitoringMustTrip, Gradients and the reactive-power controls (VoltVar,
WattVar, WattPF, FixedPFAbsorb, FixedPFInject, FixedVar) are stored and reported; the model
has no reactive power and rides through may-trip regions, so they do not change active power.
"""

from __future__ import annotations

import math
from dataclasses import replace

import trio

from fleetsim.grid_models import GridReading, grid_at

from ...core import ActiveLimit, StationCore
from ...evse import NOMINAL_PHASE_VOLTAGE_V, Evse
from .curves import (
    CEASING,
    STOPPING,
    TRIP_CURVES,
    curve_points,
    droop_fractions,
    interpolate,
    percent_of_nominal,
    trip_time_s,
    voltage_axis,
)
from .store import DerControls, Stored, Trip, peek_controls

__all__ = ["RAMP_STEPS", "grid_reading", "review", "shape_limit"]

#: The enter-service ramp returns the power in this many equal steps.
RAMP_STEPS = 4


def _nominal_hz(station: StationCore) -> float:
    """50 or 60 Hz: the nominal frequency of the grid the site is on."""
    site = station.site
    return 60.0 if site is not None and site.grid_frequency_hz() > 55.0 else 50.0


def grid_reading(station: StationCore) -> GridReading:
    """The frequency and voltage at the station now."""
    site = station.site
    events = site.grid_excursions() if site is not None else ()
    return grid_at(
        events, nominal_hz=_nominal_hz(station), nominal_voltage_v=NOMINAL_PHASE_VOLTAGE_V
    )


# -- the limit ----------------------------------------------------------------------------------


def shape_limit(station: StationCore, evse: Evse, limit: ActiveLimit) -> ActiveLimit:
    """The profiles' limit as the DER controls in force leave it (the block's shaper)."""
    state = peek_controls(station)
    if state is None or not state.controls:
        return limit
    now_s = station.clock.sim_now()
    next_s = min(limit.next_change_s, state.next_boundary_after(now_s))
    max_w = evse.max_power_w
    charge_w, discharge_w = math.inf, math.inf
    if state.trip is not None:
        charge_w = discharge_w = 0.0
    else:
        reading = grid_reading(station)
        for control_type in ("FreqWatt", "VoltWatt"):
            control = state.in_force(control_type, now_s)
            if control is None:
                continue
            points = curve_points(control.setting)
            x = (
                reading.frequency_hz
                if control_type == "FreqWatt"
                else voltage_axis(points, reading.voltage_v, NOMINAL_PHASE_VOLTAGE_V)
            )
            cap_w = abs(interpolate(points, x)) / 100.0 * max_w
            charge_w, discharge_w = min(charge_w, cap_w), min(discharge_w, cap_w)
        droop = state.in_force("FreqDroop", now_s)
        if droop is not None:
            charge, discharge = droop_fractions(
                droop.setting, reading.frequency_hz, _nominal_hz(station)
            )
            charge_w, discharge_w = (
                min(charge_w, charge * max_w),
                min(discharge_w, discharge * max_w),
            )
        cap = state.in_force("LimitMaxDischarge", now_s)
        if cap is not None and cap.setting.get("pctMaxDischargePower") is not None:
            discharge_w = min(discharge_w, float(cap.setting["pctMaxDischargePower"]) / 100 * max_w)
        if now_s < state.ramp_from_s + state.ramp_s:
            step_s = state.ramp_s / RAMP_STEPS
            steps_done = math.floor((now_s - state.ramp_from_s) / step_s) + 1
            share = steps_done / RAMP_STEPS
            charge_w, discharge_w = min(charge_w, share * max_w), min(discharge_w, share * max_w)
            next_s = min(next_s, state.ramp_from_s + steps_done * step_s)
    if charge_w == math.inf and discharge_w == math.inf and next_s == limit.next_change_s:
        return limit
    limit_w = limit.limit_w
    if charge_w < math.inf:
        limit_w = charge_w if limit_w is None else min(limit_w, charge_w)
    discharge_limit_w = limit.discharge_limit_w
    if discharge_w < math.inf:
        discharge_limit_w = (
            discharge_w if discharge_limit_w is None else min(abs(discharge_limit_w), discharge_w)
        )
    setpoint_w = limit.setpoint_w
    if setpoint_w is not None:
        setpoint_w = max(-discharge_w, min(charge_w, setpoint_w))
    return replace(
        limit,
        limit_w=limit_w,
        discharge_limit_w=discharge_limit_w,
        setpoint_w=setpoint_w,
        next_change_s=next_s,
    )


# -- trips and scheduled starts -----------------------------------------------------------------


def _trip_at_s(station: StationCore, control: Stored, reading: GridReading) -> float | None:
    """When the grid's present excursion trips `control` (its start plus the curve's time), or
    None when the grid is not beyond the curve."""
    quantity, side = TRIP_CURVES[control.control_type]
    points = curve_points(control.setting)
    site = station.site
    events = site.grid_excursions() if site is not None else ()
    since = [e.start_s for e in events if e.is_frequency == (quantity == "frequency")]
    if not since:
        return None
    if quantity == "frequency":
        value = reading.frequency_hz
    else:
        value = voltage_axis(points, reading.voltage_v, NOMINAL_PHASE_VOLTAGE_V)
    hold_s = trip_time_s(points, value, side)
    return None if hold_s is None else max(since) + hold_s


def _may_enter_service(control: Stored | None, reading: GridReading) -> bool:
    """Whether the grid is within the EnterService limits (always, without EnterService)."""
    if control is None:
        return True
    setting = control.setting
    voltage = (
        reading.voltage_v
        if float(setting["highVoltage"]) > 200.0
        else percent_of_nominal(reading.voltage_v, NOMINAL_PHASE_VOLTAGE_V)
    )
    return float(setting["lowVoltage"]) <= voltage <= float(setting["highVoltage"]) and float(
        setting["lowFreq"]
    ) <= reading.frequency_hz <= float(setting["highFreq"])


async def review(station: StationCore) -> None:
    """Act on what changed (a control, the grid, the time): announce scheduled controls that
    started or ended, trip or re-enter service, wake the EVSEs when their limit changed, and
    set the timer for the next timed change."""
    state = peek_controls(station)
    if state is None:
        return
    now_s = station.clock.sim_now()
    notices: list[tuple[str, bool]] = []
    for control in state.controls.values():
        if (
            not control.is_default
            and control.active_at(now_s)
            and control.control_id not in state.started
            and not state.superseded(control)
        ):
            state.started.add(control.control_id)
            notices.append((control.control_id, True))
    for control_id in sorted(state.started):
        ended = state.controls.get(control_id)
        if ended is None or not ended.active_at(now_s):
            state.started.discard(control_id)
            if ended is not None:
                notices.append((control_id, False))
    changed = bool(notices)
    upcoming_s = state.next_boundary_after(now_s)
    reading = grid_reading(station)
    if state.trip is None:
        for control_type in sorted(STOPPING | CEASING):
            trip_control = state.in_force(control_type, now_s)
            if trip_control is None:
                continue
            control = trip_control
            trip_at_s = _trip_at_s(station, control, reading)
            if trip_at_s is None:
                continue
            if trip_at_s <= now_s:
                state.trip = Trip(control.control_id, control_type in CEASING)
                state.resume_at_s = math.inf
                state.ramp_from_s, state.ramp_s = -math.inf, 0.0
                notices.append((control.control_id, False))
                changed = True
                break
            upcoming_s = min(upcoming_s, trip_at_s)
    if state.trip is not None:
        tripping = state.controls.get(state.trip.control_id)
        still = tripping is not None and _trip_at_s(station, tripping, reading) is not None
        enter = state.in_force("EnterService", now_s)
        if still or not (state.trip.ceasing or _may_enter_service(enter, reading)):
            state.resume_at_s = math.inf
        else:
            if state.resume_at_s == math.inf:
                delay_s = 0.0 if state.trip.ceasing or enter is None else _number(enter, "delay")
                state.resume_at_s = now_s + delay_s
            if now_s >= state.resume_at_s:
                notices.append((state.trip.control_id, True))
                ramp_s = 0.0 if state.trip.ceasing or enter is None else _number(enter, "rampRate")
                state.trip, state.resume_at_s = None, math.inf
                state.ramp_from_s, state.ramp_s = now_s, ramp_s
                changed = True
            else:
                upcoming_s = min(upcoming_s, state.resume_at_s)
    _arm(station, state, upcoming_s)
    if changed:
        for evse in station.evses:
            evse.wake()
    if notices and station.online and station.config.ocpp_version == "2.1":
        for control_id, started in notices:
            await station.call(
                "NotifyDERStartStop",
                {
                    "controlId": control_id,
                    "started": started,
                    "timestamp": station.clock.timestamp(now_s),
                },
            )


def _number(control: Stored, name: str) -> float:
    value = control.setting.get(name)
    return 0.0 if value is None else max(0.0, float(value))


def _arm(station: StationCore, state: DerControls, at_s: float) -> None:
    """Wake `review` at `at_s` (inf: never), replacing the timer set before."""
    if at_s == state.timer_at_s and state.timer is not None:
        return
    if state.timer is not None:
        state.timer.cancel()
        state.timer = None
    state.timer_at_s = at_s
    if at_s == math.inf:
        return
    scope = trio.CancelScope()
    state.timer = scope

    async def fire() -> None:
        with scope:
            await station.clock.sleep_until(at_s)
        if scope.cancelled_caught or state.timer is not scope:
            return
        state.timer, state.timer_at_s = None, math.inf
        await review(station)

    if not station.spawn(fire):
        state.timer, state.timer_at_s = None, math.inf
