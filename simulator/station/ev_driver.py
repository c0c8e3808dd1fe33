"""The EV side of an EVSE: one task per EVSE that plays the drivers and cars arriving there.

The task sleeps until the next arrival the session model draws (or a remote start), then plays
one visit: present the IdToken first (E03) or plug in first (E02), charge at the lower of the
EV's and the EVSE's power until the EV has what it wanted, meter at TxUpdatedInterval, and
leave at the end of the dwell time by unplugging (E09).  Between those moments it sleeps on a
single deadline, so an idle EVSE costs no CPU; CSMS requests that change its state (remote
start or stop, reset) wake it through `Evse.wake`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import trio

from .authorization import authorize
from .availability import report_status_changes
from .transactions import end_transaction, start_transaction, update_transaction

if TYPE_CHECKING:
    from ev_models import EvVisit

    from .evse import Evse, RemoteStart
    from .station import Station

__all__ = ["run_evse"]

#: Simulated seconds from presenting the IdToken to plugging in (E03).
WALK_TO_CAR_S = 20.0


async def _wait_until(station: Station, evse: Evse, sim_s: float) -> None:
    """Sleep until simulated second `sim_s`, or until something wakes the EVSE."""
    wake = evse.new_wake_event()
    if math.isinf(sim_s):
        await wake.wait()
        return
    with trio.move_on_at(station.clock.trio_deadline(sim_s)):
        await wake.wait()


def _can_serve(station: Station, evse: Evse) -> bool:
    return (
        station.operative
        and evse.operative
        and evse.ev is None
        and evse.transaction is None
        and any(connector.operative for connector in evse.connectors)
    )


async def run_evse(station: Station, evse: Evse) -> None:
    """Play the EV visits of `evse` until the station stops."""
    model = station.sessions
    assert model is not None
    upcoming = model.next_visit(station.index, evse.id, evse.visits, station.clock.sim_now())
    while True:
        arrival_s = upcoming[0] if upcoming is not None else math.inf
        if evse.remote_start is None:
            await _wait_until(station, evse, arrival_s)
        remote = evse.remote_start
        if remote is not None:
            evse.remote_start = None
            evse.visits += 1
            visit = model.visit_for_token(
                station.index, evse.id, evse.visits, remote.id_token, remote.id_token_type
            )
            await _visit(station, evse, visit, remote)
            continue
        now_s = station.clock.sim_now()
        if upcoming is not None and now_s >= arrival_s:
            evse.visits += 1
            if _can_serve(station, evse):
                await _visit(station, evse, upcoming[1], None)
            upcoming = model.next_visit(
                station.index, evse.id, evse.visits, station.clock.sim_now()
            )


async def _visit(station: Station, evse: Evse, visit: EvVisit, remote: RemoteStart | None) -> None:
    clock = station.clock
    points = station.device_model.members("TxCtrlr", "TxStartPoint")
    token = {"idToken": visit.id_token, "type": visit.id_token_type}
    authorized = False
    plug_in_s = clock.sim_now()

    if remote is not None:
        authorized = True
        if evse.transaction is None and "Authorized" in points:
            await start_transaction(
                station, evse, "RemoteStart", id_token=token, remote_start_id=remote.remote_start_id
            )
        delay_s = (
            station.sessions.settings.remote_start_plugin_delay_s if station.sessions else None
        )
        timeout_s = station.device_model.integer("TxCtrlr", "EVConnectionTimeOut")
        if delay_s is None or delay_s > timeout_s:
            await _wait_until(station, evse, clock.sim_now() + timeout_s)
            if evse.transaction is not None:
                await end_transaction(station, evse, "EVConnectTimeout", "Timeout")
            return
        plug_in_s = clock.sim_now() + delay_s
    elif visit.id_token_first:
        authorized = await authorize(station, token)
        if not authorized:
            return  # the driver was refused and leaves
        if "Authorized" in points:
            await start_transaction(station, evse, "Authorized", id_token=token)
        plug_in_s = clock.sim_now() + WALK_TO_CAR_S

    while clock.sim_now() < plug_in_s:
        await _wait_until(station, evse, plug_in_s)
    if (
        (remote is not None or visit.id_token_first)
        and "Authorized" in points
        and (evse.transaction is None)
    ):
        return  # stopped remotely before the EV arrived

    await _plug_in(station, evse, visit, token, authorized, points)
    await _charge_until_departure(station, evse, visit, plug_in_s + visit.dwell_s)
    await _unplug(station, evse)


async def _plug_in(
    station: Station,
    evse: Evse,
    visit: EvVisit,
    token: dict[str, str],
    authorized: bool,
    points: tuple[str, ...],
) -> None:
    now_s = station.clock.sim_now()
    connector = next(c for c in evse.connectors if c.operative)
    evse.ev = visit
    evse.plugged_connector = connector.id
    station.stats.energy_delivered(evse.set_power(0.0, now_s))
    evse.session_at_since_wh = 0.0
    await report_status_changes(station)
    if evse.transaction is not None:
        await update_transaction(station, evse, "CablePluggedIn", charging_state="EVConnected")
    elif "EVConnected" in points or (authorized and "PowerPathClosed" in points):
        await start_transaction(
            station, evse, "CablePluggedIn", id_token=token if authorized else None
        )

    trigger_reason = "ChargingStateChanged"
    if not authorized:
        if not await authorize(station, token):
            if evse.transaction is not None:
                await end_transaction(station, evse, "Deauthorized", "DeAuthorized")
            return
        if evse.transaction is not None:
            evse.transaction.id_token = token
            trigger_reason = "Authorized"
        else:
            await start_transaction(station, evse, "Authorized", id_token=token)
    await _start_charging(station, evse, visit, trigger_reason)


async def _start_charging(
    station: Station, evse: Evse, visit: EvVisit, trigger_reason: str = "ChargingStateChanged"
) -> None:
    """Close the power path; the Updated event carries the IdToken when it is new to the
    transaction (Authorized, RemoteStart)."""
    transaction = evse.transaction
    if transaction is None:
        return
    power_w = min(evse.max_power_w, visit.max_power_w)
    station.stats.energy_delivered(evse.set_power(power_w, station.clock.sim_now()))
    if transaction.charging_state == "Charging" and trigger_reason == "ChargingStateChanged":
        return
    await update_transaction(
        station,
        evse,
        trigger_reason,
        charging_state="Charging",
        include_token=trigger_reason in ("Authorized", "RemoteStart"),
    )


async def _charge_until_departure(
    station: Station, evse: Evse, visit: EvVisit, departure_s: float
) -> None:
    clock = station.clock
    last_meter_s = clock.sim_now()
    while True:
        now_s = clock.sim_now()
        if now_s >= departure_s:
            return
        remote = evse.remote_start
        if remote is not None:
            evse.remote_start = None
            await _remote_start_with_ev(station, evse, visit, remote)
            last_meter_s = clock.sim_now()
            continue
        deadline_s = departure_s
        transaction = evse.transaction
        if transaction is not None and evse.power_w > 0:
            remaining_wh = visit.energy_wanted_wh - evse.session_wh(now_s)
            if remaining_wh <= 1e-6:
                station.stats.energy_delivered(evse.set_power(0.0, now_s))
                await update_transaction(
                    station, evse, "ChargingStateChanged", charging_state="SuspendedEV"
                )
                continue
            deadline_s = min(deadline_s, now_s + remaining_wh / evse.power_w * 3600.0)
        interval_s = station.device_model.integer("SampledDataCtrlr", "TxUpdatedInterval")
        if transaction is not None and interval_s > 0:
            next_meter_s = last_meter_s + interval_s
            if now_s >= next_meter_s:
                await update_transaction(station, evse, "MeterValuePeriodic", with_meter=True)
                last_meter_s = next_meter_s
                continue
            deadline_s = min(deadline_s, next_meter_s)
        await _wait_until(station, evse, deadline_s)


async def _remote_start_with_ev(
    station: Station, evse: Evse, visit: EvVisit, remote: RemoteStart
) -> None:
    """A RequestStartTransaction for an EVSE whose EV is already plugged in (F02)."""
    token = {"idToken": remote.id_token, "type": remote.id_token_type}
    transaction = evse.transaction
    if transaction is None:
        await start_transaction(
            station, evse, "RemoteStart", id_token=token, remote_start_id=remote.remote_start_id
        )
    else:
        transaction.id_token = token
        transaction.remote_start_id = remote.remote_start_id
    await _start_charging(station, evse, visit, "RemoteStart")


async def _unplug(station: Station, evse: Evse) -> None:
    """The driver unplugs and leaves: the transaction ends with EVDisconnected (E09)."""
    now_s = station.clock.sim_now()
    station.stats.energy_delivered(evse.set_power(0.0, now_s))
    evse.ev = None
    evse.plugged_connector = None
    if evse.transaction is not None:
        await end_transaction(station, evse, "EVCommunicationLost", "EVDisconnected")
    else:
        await report_status_changes(station)
