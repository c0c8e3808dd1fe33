"""The EV side of an EVSE: one trio task per visit, from the driver's arrival to departure.

The world (simulator/world.py) decides when an EV arrives and calls `ev_arrives`; a remote
start with no EV at the EVSE calls `remote_visit`.  The visit then plays the driver and the car:
present the IdToken first (E03) or plug in first (E02), charge as the EV's `EvSession` allows
under the active charging profile and the site's share, report ISO 15118-20 charging needs,
meter at TxUpdatedInterval, and unplug at the departure time (E09).

Between events the task sleeps on one deadline -- the next of departure, meter value, a
charging-curve breakpoint or a profile period boundary -- so a plugged-in EV costs nothing
until something happens; CSMS requests and the site's load balancing wake it via `Evse.wake`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from .core import ActiveLimit, ConnectorStatusChanged, StationCore
from .iso15118 import charging_needs
from .transaction import end_transaction, start_transaction, update_transaction

if TYPE_CHECKING:
    from ev_models import EvArrival, EvSession

    from .evse import Evse, RemoteStart

__all__ = ["ev_arrives", "remote_visit"]

#: Simulated seconds from presenting the IdToken to plugging in (E03).
WALK_TO_CAR_S = 20.0
#: Simulated time and trio time convert through floating point, so a task woken at a deadline
#: may read a clock a hair before it; events this close count as reached.
_EPS_S = 1e-6
#: Energy this close to a transaction's energy cap counts as reached (the same rounding).
_EPS_WH = 1e-3
#: What a transaction gets once its energy cap is reached: nothing, and no V2X either.
_NO_ENERGY = ActiveLimit(limit_w=0.0)


def ev_arrives(station: StationCore, evse: Evse, arrival: EvArrival) -> None:
    """An EV arrives at a free EVSE (called by the world, outside trio's tasks)."""
    if station.spawn(partial(_visit, station, evse, arrival, None)):
        evse.visits += 1
        evse.visit = arrival


async def remote_visit(station: StationCore, evse: Evse) -> None:
    """A remote start on an EVSE with no EV: the driver who asked for it drives up."""
    remote = evse.remote_start
    site = station.site
    if remote is None or site is None or evse.visit is not None:
        return
    evse.remote_start = None
    evse.visits += 1
    arrival = site.remote_arrival(station, evse, remote)
    evse.visit = arrival
    await _visit(station, evse, arrival, remote)


async def _wait_until(station: StationCore, evse: Evse, sim_s: float) -> None:
    """Sleep until simulated second `sim_s`, or until something wakes the EVSE; and while the
    station is down (rebooting), until it is up: a station that is down does nothing."""
    evse.wake_at_s = sim_s
    try:
        await evse.alarm.sleep_until(
            math.inf if math.isinf(sim_s) else station.clock.trio_deadline(sim_s)
        )
    finally:
        evse.wake_at_s = math.inf
    await station.wait_up()


async def _visit(
    station: StationCore, evse: Evse, arrival: EvArrival, remote: RemoteStart | None
) -> None:
    try:
        await _play_visit(station, evse, arrival, remote)
    finally:
        evse.visit = None
        if station.site is not None:
            station.site.visit_ended(station, evse)


async def _play_visit(
    station: StationCore, evse: Evse, arrival: EvArrival, remote: RemoteStart | None
) -> None:
    await station.wait_up()  # a driver who finds the station rebooting waits for it
    clock = station.clock
    points = station.device_model.members("TxCtrlr", "TxStartPoint")
    token = {"idToken": arrival.id_token, "type": arrival.id_token_type}
    authorized = False
    plug_in_s = clock.sim_now()

    if remote is not None:
        if not await station.admit(evse, token, remote.group_id_token):
            return  # the EVSE is kept for another driver's reservation
        authorized = True
        if "Authorized" in points:
            await start_transaction(
                station, evse, "RemoteStart", id_token=token, remote_start_id=remote.remote_start_id
            )
        site = station.site
        delay_s = site.remote_start_plugin_delay_s if site is not None else None
        timeout_s = station.device_model.integer("TxCtrlr", "EVConnectionTimeOut")
        if delay_s is None or delay_s > timeout_s:
            await _wait_until(station, evse, clock.sim_now() + timeout_s)
            if evse.transaction is not None:
                await end_transaction(station, evse, "EVConnectTimeout", "Timeout")
            return
        plug_in_s = clock.sim_now() + delay_s
    elif arrival.id_token_first:
        authorized = await station.admit(evse, token) and await station.authorize(token)
        if not authorized:
            return  # the driver was refused, or the EVSE is reserved for another, and leaves
        if "Authorized" in points:
            await start_transaction(station, evse, "Authorized", id_token=token)
        plug_in_s = clock.sim_now() + WALK_TO_CAR_S

    while clock.sim_now() < plug_in_s - _EPS_S:
        await _wait_until(station, evse, plug_in_s)
    if (
        (remote is not None or arrival.id_token_first)
        and "Authorized" in points
        and (evse.transaction is None)
    ):
        return  # stopped remotely before the EV arrived

    departure_s = max(arrival.departure_s, clock.sim_now())
    try:
        await _plug_in(station, evse, arrival, token, authorized, points)
        await _charge_until_departure(station, evse, arrival, departure_s)
    except BaseException:
        # The run is ending (or the station failed): keep the books, send nothing more.
        _leave(station, evse, arrival)
        raise
    _leave(station, evse, arrival)
    await _unplug(station, evse)


async def _plug_in(
    station: StationCore,
    evse: Evse,
    arrival: EvArrival,
    token: dict[str, str],
    authorized: bool,
    points: tuple[str, ...],
) -> None:
    site = station.site
    assert site is not None
    connector = next(c for c in evse.connectors if c.operative)
    evse.session = site.new_session(station, evse, arrival)
    evse.accounted_wh = 0.0
    evse.reported_schedule_id = None
    evse.plugged_connector = connector.id
    await station.emit(ConnectorStatusChanged())
    if evse.transaction is not None:
        await update_transaction(station, evse, "CablePluggedIn", charging_state="EVConnected")
    elif "EVConnected" in points or (authorized and "PowerPathClosed" in points):
        await start_transaction(
            station, evse, "CablePluggedIn", id_token=token if authorized else None
        )

    trigger_reason = "ChargingStateChanged"
    if not authorized:
        if not (await station.admit(evse, token) and await station.authorize(token)):
            if evse.transaction is not None:
                await end_transaction(station, evse, "Deauthorized", "DeAuthorized")
            return
        if evse.transaction is not None:
            evse.transaction.id_token = token
            trigger_reason = "Authorized"
        else:
            await start_transaction(station, evse, "Authorized", id_token=token)
    await _close_power_path(station, evse, arrival, trigger_reason)


async def _close_power_path(
    station: StationCore, evse: Evse, arrival: EvArrival, trigger_reason: str
) -> None:
    """Let energy flow; the Updated event carries the IdToken when it is new to the
    transaction (Authorized, RemoteStart).  An ISO 15118-20 EV then reports its needs."""
    transaction = evse.transaction
    session = evse.session
    if transaction is None or session is None:
        return
    session.set_enabled(True, station.clock.sim_now())
    limit = _apply_limits(station, evse, session)
    await update_transaction(
        station,
        evse,
        trigger_reason,
        charging_state=_charging_state(evse, session, limit),
        include_token=trigger_reason in ("Authorized", "RemoteStart"),
    )
    if arrival.uses_iso15118_20:
        needs = charging_needs(
            arrival,
            station.clock.epoch_s(),
            supply=evse.supply,
            evse_max_w=evse.max_power_w,
            ocpp_version=station.config.ocpp_version,
        )
        await station.call("NotifyEVChargingNeeds", {"evseId": evse.id, "chargingNeeds": needs})


def _apply_limits(station: StationCore, evse: Evse, session: EvSession) -> ActiveLimit:
    """Feed the active charging profile (and, for LocalFrequency, the grid frequency) to the
    EV's session; returns the limit so the caller knows when it next changes.

    A transaction the CSMS deauthorized without stopping it (E05) gets no energy once the
    register reaches its cap: the limit is 0, which the EV reports as SuspendedEVSE, and
    until then the moment the cap will be reached is one of the limit's changes."""
    now_s = station.clock.sim_now()
    limit = station.charging_limit(evse)
    transaction = evse.transaction
    cap_wh = None if transaction is None else transaction.energy_cap_wh
    if cap_wh is not None and evse.register_wh(now_s) >= cap_wh - _EPS_WH:
        limit = _NO_ENERGY
    session.set_limit(limit.limit_w, now_s)
    setpoint_w = limit.setpoint_w
    site = station.site
    if site is not None:
        curve_w = site.follow_frequency(
            station, evse, limit, limit.operation_mode == "LocalFrequency", now_s
        )
        if curve_w is not None:
            setpoint_w = curve_w
    if setpoint_w is not None and setpoint_w < 0 and limit.discharge_limit_w is not None:
        setpoint_w = max(setpoint_w, -abs(limit.discharge_limit_w))
    session.set_setpoint(setpoint_w, now_s)
    if site is not None:
        site.power_changed(station, evse, now_s)
    if cap_wh is not None and limit is not _NO_ENERGY and session.power_w > 0:
        cap_s = now_s + (cap_wh - evse.register_wh(now_s)) * 3600.0 / session.power_w
        if cap_s < limit.next_change_s:
            limit = replace(limit, next_change_s=cap_s)
    return limit


def _charging_state(evse: Evse, session: EvSession, limit: ActiveLimit) -> str:
    if session.power_w != 0:
        return "Charging"
    if evse.transaction is None or evse.transaction.id_token is None:
        return "EVConnected"
    if not session.enabled or limit.limit_w == 0 or limit.operation_mode == "Idle":
        return "SuspendedEVSE"
    return "SuspendedEV"


async def _charge_until_departure(
    station: StationCore, evse: Evse, arrival: EvArrival, departure_s: float
) -> None:
    clock = station.clock
    session = evse.session
    assert session is not None
    last_meter_s = clock.sim_now()
    while True:
        await station.wait_up()  # the EV waits out a reboot; it may have left meanwhile
        now_s = clock.sim_now()
        if now_s >= departure_s - _EPS_S:
            return
        remote = evse.remote_start
        if remote is not None:
            evse.remote_start = None
            await _remote_start_with_ev(station, evse, arrival, remote)
            continue
        change_s = session.next_change_s()
        if now_s >= change_s - _EPS_S:
            session.on_change(max(now_s, change_s))
        limit = _apply_limits(station, evse, session)
        transaction = evse.transaction
        if transaction is not None:
            state = _charging_state(evse, session, limit)
            if state != transaction.charging_state and transaction.id_token is not None:
                await update_transaction(
                    station, evse, "ChargingStateChanged", charging_state=state
                )
                continue
            await _report_schedule(station, evse, arrival, limit)
        deadline_s = min(departure_s, session.next_change_s(), limit.next_change_s)
        interval_s = station.device_model.integer("SampledDataCtrlr", "TxUpdatedInterval")
        if transaction is not None and interval_s > 0:
            next_meter_s = last_meter_s + interval_s
            if now_s >= next_meter_s - _EPS_S:
                await update_transaction(station, evse, "MeterValuePeriodic", with_meter=True)
                # Keep the sampling grid while on time; a period missed (a new, shorter
                # interval) is not replayed: the next sample is one interval from now.
                behind_s = now_s - next_meter_s
                last_meter_s = next_meter_s if behind_s < interval_s else now_s
                continue
            deadline_s = min(deadline_s, next_meter_s)
        await _wait_until(station, evse, deadline_s)


async def _report_schedule(
    station: StationCore, evse: Evse, arrival: EvArrival, limit: ActiveLimit
) -> None:
    """An ISO 15118-20 EV picks the schedule of a new TxProfile and says so (K15-K17)."""
    if (
        not arrival.uses_iso15118_20
        or limit.tx_schedule is None
        or limit.profile_id in (None, evse.reported_schedule_id)
    ):
        return
    evse.reported_schedule_id = limit.profile_id
    schedule = dict(limit.tx_schedule)
    schedule.pop("startSchedule", None)
    await station.call(
        "NotifyEVChargingSchedule",
        {"timeBase": station.clock.timestamp(), "evseId": evse.id, "chargingSchedule": schedule},
    )


async def _remote_start_with_ev(
    station: StationCore, evse: Evse, arrival: EvArrival, remote: RemoteStart
) -> None:
    """A RequestStartTransaction for an EVSE whose EV is already plugged in (F02)."""
    token = {"idToken": remote.id_token, "type": remote.id_token_type}
    if not await station.admit(evse, token, remote.group_id_token):
        return  # the EVSE is kept for another driver's reservation
    transaction = evse.transaction
    if transaction is None:
        await start_transaction(
            station, evse, "RemoteStart", id_token=token, remote_start_id=remote.remote_start_id
        )
    else:
        transaction.id_token = token
        transaction.remote_start_id = remote.remote_start_id
    await _close_power_path(station, evse, replace(arrival, uses_iso15118_20=False), "RemoteStart")


def _leave(station: StationCore, evse: Evse, arrival: EvArrival) -> None:
    """The EV's energy and the session's record, at the moment it goes."""
    session = evse.session
    if session is None:
        return
    now_s = station.clock.sim_now()
    session.set_enabled(False, now_s)
    station.stats.energy_delivered(evse.unaccounted_wh(now_s))
    evse.import_base_wh += session.imported_wh_at(now_s)
    evse.export_base_wh += session.exported_wh_at(now_s)
    site = station.site
    if site is not None:
        site.session_ended(station, evse, arrival, now_s)
    evse.session = None


async def _unplug(station: StationCore, evse: Evse) -> None:
    """The driver unplugs and leaves: the transaction ends with EVDisconnected (E09)."""
    evse.plugged_connector = None
    if evse.transaction is not None:
        await end_transaction(station, evse, "EVCommunicationLost", "EVDisconnected")
    else:
        await station.emit(ConnectorStatusChanged())
