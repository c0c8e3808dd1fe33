"""The EV side of an EVSE: one trio task per visit, from the driver's arrival to departure.

The world (simulator/world.py) decides when an EV arrives and calls `ev_arrives`; a remote
start with no EV at the EVSE calls `remote_visit`.  The visit then plays the driver and the car:
park, present the IdToken first (E03) or plug in first (E02), charge as the EV's `EvSession`
allows under the active charging profile and the site's share, report ISO 15118-20 charging
needs, meter at TxUpdatedInterval, and at the departure time unplug and drive off (E09, E10),
having ended the transaction with their IdToken first when the scenario says so (E07,
`id_reader`).

Transactions start and end on conditions, the ones TxCtrlr.TxStartPoint and TxStopPoint name
(E01, E06): the first start point to become true starts a transaction, the first stop point to
stop being true ends it.  The visit plays each condition:

- ParkingBayOccupancy: the car stands in the bay from the driver's arrival (a remote start's
  car: from when it drives up to plug in) until it drives off after unplugging (EVDetected,
  EVDeparted);
- EVConnected: the cable is in the EV, from plugging in until the driver unplugs it at the EV
  side (CablePluggedIn, EVCommunicationLost);
- Authorized: the driver's IdToken was accepted (Authorized, RemoteStart) until the
  authorization ends (`transaction.authorization_ended`, E05/E07/E10);
- PowerPathClosed: both of the last two (the station closes the power path only then);
- EnergyTransfer: energy flows (ChargingStateChanged; StoppedByEV when the EV suspends it).

DataSigned is not offered: the station's meter signs no readings, so that condition never
holds, and a station may only list the points it supports.  A transaction that ends opens the
power path for the rest of the visit, and no second one starts on the same car.  Energy flows
only inside a transaction: with EnergyTransfer among the start points the power path closes
first and the transaction starts at the instant energy begins to flow.

Leaving (E09, E10): the driver unplugs at the EV side.  That ends the transaction when
TxStopPoint has EVConnected or PowerPathClosed (or EnergyTransfer while energy flowed); else
TxCtrlr.StopTxOnEVSideDisconnect true ends its authorization (`authorization_ended`), and false
suspends it (chargingState Idle).  A socket outlet keeps the driver's cable locked when
OCPPCommCtrlr.UnlockOnEVSideDisconnect is false or the transaction was suspended (E10.FR.01):
the driver walks to the station and presents the IdToken to free it, which holds the EVSE that
much longer.  The car then drives off (ParkingBayOccupancy).  A transaction still running
after that waits EVConnectionTimeOut for its EV to come back, then ends with EVConnectTimeout:
no stop point saw the driver leave, and the EVSE must not stay taken for good.

Limits (E16, OCPP 2.1): a transactionLimit the CSMS set (`transaction.limit`) is reached at an
exact deadline of the visit task -- energy, time, the SoC crossing within the EV's present
charging segment, or the running cost (maxCost, under a tariff: block I says when).  Reaching
one stops energy transfer (SuspendedEVSE, triggerReason EnergyLimitReached, TimeLimitReached,
SoCLimitReached or CostLimitReached); with EnergyTransfer among the stop points it ends the
transaction with the matching stoppedReason.  A raised limit lets energy flow again.

Between events the task sleeps on one deadline -- the next of departure, meter value, a
charging-curve breakpoint, a profile period boundary or a limit -- so a plugged-in EV costs
nothing until something happens; CSMS requests and the site's load balancing wake it via
`Evse.wake`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from .core import ActiveLimit, ConnectorStatusChanged, ScheduleSelected, StationCore
from .evse import is_socket_outlet
from .id_reader import present_id_token
from .iso15118 import charging_needs, pick_schedule
from .transaction import (
    LIMIT_STOPPED_REASONS,
    authorization_ended,
    end_transaction,
    start_transaction,
    update_transaction,
)

if TYPE_CHECKING:
    from fleetsim.ev_models import EvArrival, EvSession

    from .evse import Evse, RemoteStart, Transaction

__all__ = [
    "DRIVE_OFF_S",
    "SCHEDULE_WAIT_S",
    "WALK_TO_CAR_S",
    "change_needs",
    "ev_arrives",
    "remote_visit",
]

#: Simulated seconds from presenting the IdToken to plugging in (E03), and from unplugging at
#: the EV to presenting the IdToken at the station to free a locked cable (E10).
WALK_TO_CAR_S = 20.0
#: Simulated seconds from unplugging to the car leaving the bay, when a transaction still
#: runs to see it (ParkingBayOccupancy); otherwise the bay's state changes nothing.
DRIVE_OFF_S = 10.0
#: Simulated time and trio time convert through floating point, so a task woken at a deadline
#: may read a clock a hair before it; events this close count as reached.
_EPS_S = 1e-6
#: Energy this close to a transaction's energy cap or limit counts as reached (the same
#: rounding).
_EPS_WH = 1e-3
#: A state of charge (0..1) this close to a maxSoC limit counts as reached.
_EPS_SOC = 1e-9
#: A running cost this close to a maxCost limit counts as reached (the same rounding).
_EPS_COST = 1e-6
#: What a transaction gets once its energy cap or a limit is reached: nothing, and no V2X.
_NO_ENERGY = ActiveLimit(limit_w=0.0)
#: Simulated seconds an ISO 15118 EV waits for the TxProfile the CSMS promised (answering its
#: charging needs Accepted or Processing) before it charges under the station's own limits:
#: ISO 15118's 60 s sequence timeout for a schedule still being computed.
SCHEDULE_WAIT_S = 60.0


@dataclass(slots=True)
class _Visit:
    """What the visit task knows of its driver beyond the EVSE's state."""

    arrival: EvArrival
    #: The IdToken the driver presents (a remote start's, once one was accepted).
    token: dict[str, str]
    remote_start_id: int | None = None
    #: The driver's IdToken was accepted, or came with a remote start.
    authorized: bool = False
    #: Until when the EV holds its energy for the TxProfile the CSMS promised (K15); None when
    #: it waits for none.
    schedule_wait_until_s: float | None = None


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
    if station.down:
        await station.wait_up()


async def _sleep_until(station: StationCore, evse: Evse, sim_s: float) -> None:
    """Sleep until simulated second `sim_s` whatever wakes the EVSE meanwhile."""
    while station.clock.sim_now() < sim_s - _EPS_S:
        await _wait_until(station, evse, sim_s)


async def _runs_until(
    station: StationCore, evse: Evse, transaction: Transaction, sim_s: float
) -> bool:
    """Sleep until simulated second `sim_s` unless `transaction` ends first; whether it still
    runs then."""
    while station.clock.sim_now() < sim_s - _EPS_S and evse.transaction is transaction:
        await _wait_until(station, evse, sim_s)
    return evse.transaction is transaction


def _start_points(station: StationCore) -> tuple[str, ...]:
    return station.device_model.members("TxCtrlr", "TxStartPoint")


def _stop_points(station: StationCore) -> tuple[str, ...]:
    return station.device_model.members("TxCtrlr", "TxStopPoint")


async def _visit(
    station: StationCore, evse: Evse, arrival: EvArrival, remote: RemoteStart | None
) -> None:
    try:
        await _play_visit(station, evse, arrival, remote)
    finally:
        evse.visit = None
        if station.site is not None:
            station.site.visit_ended(station, evse)
    if evse.remote_start is not None:
        # Accepted while the driver was leaving: the driver who asked for it comes now.
        await remote_visit(station, evse)


async def _play_visit(
    station: StationCore, evse: Evse, arrival: EvArrival, remote: RemoteStart | None
) -> None:
    await station.wait_up()  # a driver who finds the station rebooting waits for it
    clock = station.clock
    visit = _Visit(arrival, {"idToken": arrival.id_token, "type": arrival.id_token_type})
    plug_in_s = clock.sim_now()

    if remote is not None:
        if not await station.admit(evse, visit.token, remote.group_id_token):
            return  # the EVSE is kept for another driver's reservation
        visit.authorized = True
        visit.remote_start_id = remote.remote_start_id
        if "Authorized" in _start_points(station):
            await start_transaction(
                station,
                evse,
                "RemoteStart",
                id_token=visit.token,
                remote_start_id=remote.remote_start_id,
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
    else:
        await _bay_occupied(station, evse, visit)
        if arrival.id_token_first:
            if not await _identified(station, evse, visit):
                await _refused(station, evse)
                return  # the driver was refused, or the EVSE is reserved for another, and leaves
            await _authorized_before_plug_in(station, evse, visit)
            plug_in_s = clock.sim_now() + WALK_TO_CAR_S

    waiting = evse.transaction
    await _sleep_until(station, evse, plug_in_s)
    if waiting is not None and evse.transaction is not waiting:
        return  # stopped (remotely, or deauthorized) before the EV was plugged in
    if remote is not None:
        await _bay_occupied(station, evse, visit)

    departure_s = max(arrival.departure_s, clock.sim_now())
    try:
        await _plug_in(station, evse, visit)
        await _charge_until_departure(station, evse, visit, departure_s)
        if arrival.stops_with_id_token and evse.transaction is not None:
            await present_id_token(station, evse, visit.token)  # E07: the driver ends it first
    except BaseException:
        # The run is ending (or the station failed): keep the books, send nothing more.
        _leave(station, evse, arrival)
        raise
    _leave(station, evse, arrival)
    await _depart(station, evse)


async def _identified(station: StationCore, evse: Evse, visit: _Visit) -> bool:
    """The driver identifies at the EVSE: pays by card at the station's payment terminal
    (C17-C18: the transaction then runs for the payment's DirectPayment IdToken) or presents
    their IdToken.  Whether they may charge."""
    if not await station.admit(evse, visit.token):
        return False
    if visit.arrival.plug_and_charge:  # C07: the EV identifies itself with its contract
        contract = await station.plug_and_charge(evse, visit.arrival)
        if contract is None:
            return False
        visit.token = contract
        return True
    paid = await station.pay_ad_hoc(evse, visit.arrival)
    if paid is None:
        return await station.authorize(visit.token)
    if paid.id_token is None:
        return False  # the card was declined
    visit.token = paid.id_token
    return paid.authorized


async def _bay_occupied(station: StationCore, evse: Evse, visit: _Visit) -> None:
    """The car stops in the bay: a transaction starts if ParkingBayOccupancy is a start point
    (E01, EVDetected)."""
    if evse.transaction is None and "ParkingBayOccupancy" in _start_points(station):
        await start_transaction(
            station,
            evse,
            "EVDetected",
            id_token=visit.token if visit.authorized else None,
            remote_start_id=visit.remote_start_id,
        )


async def _refused(station: StationCore, evse: Evse) -> None:
    """The driver's IdToken was refused: a transaction that began before it (EVConnected,
    ParkingBayOccupancy) ends, Deauthorized."""
    if evse.transaction is not None:
        await end_transaction(station, evse, "Deauthorized", "DeAuthorized")


async def _authorized_before_plug_in(station: StationCore, evse: Evse, visit: _Visit) -> None:
    """IdToken first (E03): the driver is authorized before the EV is plugged in."""
    visit.authorized = True
    transaction = evse.transaction
    if transaction is not None:  # began when the car stopped in the bay
        transaction.id_token = visit.token
        await update_transaction(station, evse, "Authorized", include_token=True)
    elif "Authorized" in _start_points(station):
        await start_transaction(station, evse, "Authorized", id_token=visit.token)


async def _plug_in(station: StationCore, evse: Evse, visit: _Visit) -> None:
    site = station.site
    assert site is not None
    connector = next(c for c in evse.connectors if c.operative)
    evse.session = site.new_session(station, evse, visit.arrival)
    evse.accounted_wh = 0.0
    evse.reported_schedule_id = None
    evse.plugged_connector = connector.id
    await station.emit(ConnectorStatusChanged())
    points = _start_points(station)
    if evse.transaction is not None:
        await update_transaction(station, evse, "CablePluggedIn", charging_state="EVConnected")
    elif "EVConnected" in points or (visit.authorized and "PowerPathClosed" in points):
        await start_transaction(
            station,
            evse,
            "CablePluggedIn",
            id_token=visit.token if visit.authorized else None,
            remote_start_id=visit.remote_start_id,
        )

    trigger_reason = "ChargingStateChanged"
    if not visit.authorized:
        if not await _identified(station, evse, visit):
            await _refused(station, evse)
            return
        visit.authorized = True
        transaction = evse.transaction
        if transaction is not None:
            transaction.id_token = visit.token
            trigger_reason = "Authorized"
        elif "Authorized" in points or "PowerPathClosed" in points:
            await start_transaction(station, evse, "Authorized", id_token=visit.token)
    await _close_power_path(station, evse, visit, trigger_reason)


async def _close_power_path(
    station: StationCore,
    evse: Evse,
    visit: _Visit,
    trigger_reason: str,
    *,
    report_needs: bool = True,
) -> None:
    """Let energy flow; the Updated event carries the IdToken when it is new to the
    transaction (Authorized, RemoteStart).  Without a transaction the path closes only when
    EnergyTransfer is a start point, and the transaction starts as energy flows.  An
    ISO 15118-20 EV then reports its needs."""
    transaction = evse.transaction
    session = evse.session
    if session is None:
        return
    if transaction is None:
        if "EnergyTransfer" not in _start_points(station):
            return  # no energy outside a transaction
    elif transaction.authorization_ended:
        return
    session.set_enabled(True, station.clock.sim_now())
    if report_needs and visit.arrival.uses_iso15118_20:
        await report_charging_needs(station, evse, visit)
    limit, _ = _apply_limits(station, evse, session)
    if transaction is None:
        if session.power_w != 0:
            await _energy_flows(station, evse, visit)
    else:
        await update_transaction(
            station,
            evse,
            trigger_reason,
            charging_state=_charging_state(evse, session, limit),
            include_token=trigger_reason in ("Authorized", "RemoteStart"),
        )


async def report_charging_needs(station: StationCore, evse: Evse, visit: _Visit) -> None:
    """An ISO 15118 EV reports its needs (K15, K18; again when they change, K17) and acts on
    the answer: Accepted or Processing, a TxProfile is coming, so the EV holds its energy for
    it (at most SCHEDULE_WAIT_S); NoChargingProfile (2.1) or Rejected, it charges under the
    station's own limits at once.  No answer counts as NoChargingProfile."""
    session = evse.session
    if session is None:
        return
    needs = charging_needs(
        visit.arrival,
        station.clock.epoch_s(),
        supply=evse.supply,
        evse_max_w=evse.max_power_w,
        ocpp_version=station.config.ocpp_version,
        now_s=station.clock.sim_now(),
        soc=session.soc_at(station.clock.sim_now()),
    )
    answer = await station.call(
        "NotifyEVChargingNeeds", {"evseId": evse.id, "chargingNeeds": needs}
    )
    status = None if answer is None else answer.get("status")
    evse.reported_schedule_id = None  # the schedule that answers these needs is reported anew
    if status in ("Accepted", "Processing") and station.charging_limit(evse).tx_schedule is None:
        visit.schedule_wait_until_s = station.clock.sim_now() + SCHEDULE_WAIT_S
        session.set_enabled(False, station.clock.sim_now())
    else:
        visit.schedule_wait_until_s = None


async def change_needs(
    station: StationCore,
    evse: Evse,
    *,
    departure_s: float | None = None,
    target_soc: float | None = None,
) -> bool:
    """The driver changes the departure time or the target SoC of the EV at `evse` (K17: the
    EV renegotiates): the EV charges to the new target, leaves at the new time and, if it
    speaks ISO 15118-20, reports its new needs.  False when no EV is there."""
    arrival = evse.visit
    session = evse.session
    if arrival is None or session is None:
        return False
    now_s = station.clock.sim_now()
    changed = replace(
        arrival,
        departure_s=arrival.departure_s if departure_s is None else max(departure_s, now_s),
        target_soc=arrival.target_soc if target_soc is None else target_soc,
    )
    evse.visit = changed
    session.set_target_soc(changed.target_soc, now_s)
    evse.wake()
    return True


async def _energy_flows(station: StationCore, evse: Evse, visit: _Visit) -> None:
    """Energy begins to flow outside a transaction: one starts (EnergyTransfer, E01)."""
    await start_transaction(
        station,
        evse,
        "ChargingStateChanged",
        id_token=visit.token,
        remote_start_id=visit.remote_start_id,
        charging_state="Charging",
    )


def _apply_limits(
    station: StationCore, evse: Evse, session: EvSession
) -> tuple[ActiveLimit, str | None]:
    """Feed the active charging profile (and, for LocalFrequency, the grid frequency) to the
    EV's session; returns the limit, so the caller knows when it next changes, and the
    triggerReason of the transaction limit reached (E16), if one is.

    A transaction the CSMS deauthorized without stopping it (E05), or one that has reached a
    transactionLimit (E16), gets no energy: the limit is 0, which the EV reports as
    SuspendedEVSE.  Until then the moment the energy cap or a limit will be reached at the
    present power is one of the limit's changes."""
    now_s = station.clock.sim_now()
    limit = station.charging_limit(evse)
    transaction = evse.transaction
    reached = None
    if transaction is not None:
        if transaction.limit:  # a transactionLimit (E16), rare: the test is written out here
            reached = _limit_reached(station, evse, session, transaction, now_s)
        cap_wh = transaction.energy_cap_wh
        if reached is not None or (
            cap_wh is not None and evse.register_wh(now_s) >= cap_wh - _EPS_WH
        ):
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
    if evse.power_watch is not None:
        evse.power_may_have_changed()
    if (
        transaction is not None
        and limit is not _NO_ENERGY
        and (transaction.limit is not None or transaction.energy_cap_wh is not None)
    ):
        deadline_s = _limit_deadline_s(station, evse, session, transaction, now_s)
        if deadline_s < limit.next_change_s:
            limit = replace(limit, next_change_s=deadline_s)
    return limit, reached


def _limit_reached(
    station: StationCore, evse: Evse, session: EvSession, transaction: Transaction, now_s: float
) -> str | None:
    """The triggerReason of the first transactionLimit (E16) the transaction has reached."""
    limits = transaction.limit
    if not limits:
        return None
    max_energy_wh = limits.get("maxEnergy")
    if (
        max_energy_wh is not None
        and evse.register_wh(now_s) - transaction.start_register_wh >= max_energy_wh - _EPS_WH
    ):
        return "EnergyLimitReached"
    max_time_s = limits.get("maxTime")
    if max_time_s is not None and now_s >= transaction.started_s + max_time_s - _EPS_S:
        return "TimeLimitReached"
    max_soc_percent = limits.get("maxSoC")
    if max_soc_percent is not None and session.soc_at(now_s) >= max_soc_percent / 100 - _EPS_SOC:
        return "SoCLimitReached"
    max_cost = limits.get("maxCost")
    if max_cost is not None:
        cost = station.transaction_cost(evse, transaction)
        if cost is not None and cost >= max_cost - _EPS_COST:
            return "CostLimitReached"
    return None


def _limit_deadline_s(
    station: StationCore, evse: Evse, session: EvSession, transaction: Transaction, now_s: float
) -> float:
    """When, at the present power, the transaction reaches its energy cap (E05) or one of its
    limits (E16): energy and SoC grow linearly until the session's next change, where the
    visit task looks again."""
    if transaction.limit is None and transaction.energy_cap_wh is None:
        return math.inf
    deadline_s = math.inf
    limits = transaction.limit or {}
    max_time_s = limits.get("maxTime")
    if max_time_s is not None:
        deadline_s = transaction.started_s + max_time_s
    max_cost = limits.get("maxCost")
    if max_cost is not None:
        deadline_s = min(deadline_s, station.cost_reached_s(evse, transaction, max_cost))
    power_w = session.power_w
    if power_w <= 0:
        return deadline_s
    register_wh = evse.register_wh(now_s)
    targets_wh = [transaction.energy_cap_wh]
    max_energy_wh = limits.get("maxEnergy")
    if max_energy_wh is not None:
        targets_wh.append(transaction.start_register_wh + max_energy_wh)
    for target_wh in targets_wh:
        if target_wh is not None and target_wh > register_wh:
            deadline_s = min(deadline_s, now_s + (target_wh - register_wh) * 3600.0 / power_w)
    max_soc_percent = limits.get("maxSoC")
    change_s = session.next_change_s()
    if max_soc_percent is not None and now_s < change_s < math.inf:
        soc, soc_at_change = session.soc_at(now_s), session.soc_at(change_s)
        target = max_soc_percent / 100
        if soc < target <= soc_at_change:
            deadline_s = min(
                deadline_s, now_s + (target - soc) * (change_s - now_s) / (soc_at_change - soc)
            )
    return deadline_s


def _charging_state(evse: Evse, session: EvSession, limit: ActiveLimit) -> str:
    if session.power_w != 0:
        return "Charging"
    transaction = evse.transaction
    if transaction is None or transaction.id_token is None or transaction.authorization_ended:
        return "EVConnected"
    if not session.enabled or limit.limit_w == 0 or limit.operation_mode == "Idle":
        return "SuspendedEVSE"
    return "SuspendedEV"


async def _charge_until_departure(
    station: StationCore, evse: Evse, visit: _Visit, departure_s: float
) -> None:
    clock = station.clock
    session = evse.session
    assert session is not None
    last_meter_s = clock.sim_now()
    while True:
        if station.down:
            await station.wait_up()  # the EV waits out a reboot; it may have left meanwhile
        now_s = clock.sim_now()
        changed = evse.visit
        if changed is not None and changed is not visit.arrival:  # the driver changed the needs
            visit.arrival = changed
            departure_s = max(changed.departure_s, now_s)
            if changed.uses_iso15118_20:
                await report_charging_needs(station, evse, visit)
            continue
        if now_s >= departure_s - _EPS_S:
            return
        remote = evse.remote_start
        if remote is not None:
            evse.remote_start = None
            await _remote_start_with_ev(station, evse, visit, remote)
            continue
        change_s = session.next_change_s()
        if now_s >= change_s - _EPS_S:
            session.on_change(max(now_s, change_s))
        limit, reached = _apply_limits(station, evse, session)
        wait_until_s = visit.schedule_wait_until_s
        if wait_until_s is not None and (
            limit.tx_schedule is not None or now_s >= wait_until_s - _EPS_S
        ):
            visit.schedule_wait_until_s = wait_until_s = None  # the promised profile came
            # Read the clock again: in real time it has moved on since `now_s`, and applying
            # the limits above brought the session up to it.
            session.set_enabled(True, station.clock.sim_now())
            limit, reached = _apply_limits(station, evse, session)
        transaction = evse.transaction
        if transaction is None:
            if session.power_w != 0:
                if "EnergyTransfer" in _start_points(station):
                    await _energy_flows(station, evse, visit)
                else:  # the start points changed meanwhile: no energy outside a transaction
                    session.set_enabled(False, station.clock.sim_now())
                continue
        elif transaction.id_token is not None:
            # These checks run on every wake: plain tests first, a coroutine only for a report.
            change = _state_change(evse, session, transaction, limit, reached)
            if change is not None:
                await _report_state(station, evse, transaction, *change)
                continue
            if _operation_mode_changed(station, transaction, limit):
                await _report_operation_mode(station, evse, transaction, limit.operation_mode)
                continue
            if limit.tx_schedule is not None and await _report_schedule(
                station, evse, visit.arrival, limit
            ):
                continue
        deadline_s = min(departure_s, session.next_change_s(), limit.next_change_s)
        if wait_until_s is not None:
            deadline_s = min(deadline_s, wait_until_s)
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
        if evse.visit is not visit.arrival:
            continue  # the driver changed the needs while the EV was reporting
        await _wait_until(station, evse, deadline_s)


def _state_change(
    evse: Evse,
    session: EvSession,
    transaction: Transaction,
    limit: ActiveLimit,
    reached: str | None,
) -> tuple[str, str, bool] | None:
    """What `_report_state` is to report on this wake: a new chargingState (E15: SuspendedEV
    when the EV is full) or a limit newly reached (E16), as (chargingState, triggerReason,
    whether energy transfer stopped); None when neither changed.  Remembers the limit reached."""
    state = _charging_state(evse, session, limit)
    newly_reached = reached is not None and reached != transaction.limit_reached
    transaction.limit_reached = reached  # None again once a raised limit lets energy flow
    if state == transaction.charging_state and not newly_reached:
        return None
    trigger_reason = reached if newly_reached and reached is not None else "ChargingStateChanged"
    stopped = newly_reached or (transaction.charging_state == "Charging" and state != "Charging")
    return state, trigger_reason, stopped


async def _report_state(
    station: StationCore,
    evse: Evse,
    transaction: Transaction,
    state: str,
    trigger_reason: str,
    stopped: bool,
) -> None:
    """Report the change `_state_change` found, with an Updated event; or end the
    transaction when its energy transfer stopped and EnergyTransfer is a stop point (E06)."""
    reached = transaction.limit_reached
    if stopped and "EnergyTransfer" in _stop_points(station):
        await end_transaction(
            station, evse, trigger_reason, _energy_stopped_reason(transaction, state, reached)
        )
    else:
        await update_transaction(station, evse, trigger_reason, charging_state=state)


def _operation_mode_changed(
    station: StationCore, transaction: Transaction, limit: ActiveLimit
) -> bool:
    """(2.1) Whether `limit` puts an operation mode in force that the transaction has not
    reported yet (a TxProfile period, V2X authorized or not)."""
    return (
        limit.operation_mode != (transaction.operation_mode or "ChargingOnly")
        and limit is not _NO_ENERGY
        and station.config.ocpp_version == "2.1"
    )


async def _report_operation_mode(
    station: StationCore, evse: Evse, transaction: Transaction, mode: str
) -> None:
    """An Updated event, triggerReason OperationModeChanged, whose transactionInfo names the
    new mode; every later event of the transaction names it too."""
    transaction.operation_mode = mode
    await update_transaction(station, evse, "OperationModeChanged")


def _energy_stopped_reason(transaction: Transaction, state: str, reached: str | None) -> str:
    """The stoppedReason of a transaction that ends because its energy transfer stopped."""
    if reached is not None:
        return LIMIT_STOPPED_REASONS[reached]
    if state == "SuspendedEV":
        return "StoppedByEV"
    if transaction.energy_cap_wh is not None:
        return "DeAuthorized"  # MaxEnergyOnInvalidId is spent (E05)
    return "Other"  # the EVSE suspended it: a charging limit of 0, an Idle operation mode


async def _report_schedule(
    station: StationCore, evse: Evse, arrival: EvArrival, limit: ActiveLimit
) -> bool:
    """An ISO 15118-20 EV picks one of the schedules of a new TxProfile, which then limits
    it, and says so (K15-K17).  Whether it did: the caller then reads the limit again, since
    the pick and whatever the CSMS sent while the EV waited for its answer (a newer TxProfile)
    may have changed it -- a wake while the visit task is not asleep wakes nothing."""
    profile_id = limit.profile_id
    if (
        not arrival.uses_iso15118_20
        or limit.tx_schedule is None
        or profile_id is None
        or profile_id == evse.reported_schedule_id
    ):
        return False
    evse.reported_schedule_id = profile_id
    picked = pick_schedule(limit.tx_schedules or (limit.tx_schedule,), evse.max_power_w)
    if picked["id"] != limit.tx_schedule["id"]:
        # The station limits the EV by the schedule it picked from now on (block K).
        await station.emit(ScheduleSelected(evse, profile_id, int(picked["id"])))
    schedule = dict(picked)
    schedule.pop("startSchedule", None)
    payload: dict[str, Any] = {
        "timeBase": station.clock.timestamp(),
        "evseId": evse.id,
        "chargingSchedule": schedule,
    }
    if station.config.ocpp_version == "2.1":
        payload["selectedChargingScheduleId"] = picked["id"]
    else:  # 2.0.1's schedule has no fields of 2.1
        schedule.pop("limitAtSoC", None)
    await station.call("NotifyEVChargingSchedule", payload)
    return True


async def _remote_start_with_ev(
    station: StationCore, evse: Evse, visit: _Visit, remote: RemoteStart
) -> None:
    """A RequestStartTransaction for an EVSE whose EV is already plugged in (F02)."""
    token = {"idToken": remote.id_token, "type": remote.id_token_type}
    if not await station.admit(evse, token, remote.group_id_token):
        return  # the EVSE is kept for another driver's reservation
    visit.token = token
    visit.authorized = True
    visit.remote_start_id = remote.remote_start_id
    transaction = evse.transaction
    if transaction is None:
        points = _start_points(station)
        if "Authorized" in points or "PowerPathClosed" in points:
            await start_transaction(
                station, evse, "RemoteStart", id_token=token, remote_start_id=remote.remote_start_id
            )
    else:
        transaction.id_token = token
        transaction.remote_start_id = remote.remote_start_id
    await _close_power_path(station, evse, visit, "RemoteStart", report_needs=False)


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
    if evse.power_watch is not None:
        evse.power_may_have_changed()


async def _depart(station: StationCore, evse: Evse) -> None:
    """The driver unplugs at the EV side, frees a cable the station keeps locked, and drives
    off (E06, E09, E10)."""
    connector = evse.connector(evse.plugged_connector or 0)
    await _ev_side_disconnect(station, evse)
    clock = station.clock
    if connector is not None and _cable_kept_locked(station, evse, connector.type):
        # The driver walks to the station and presents the IdToken, which unlocks the cable.
        await _sleep_until(station, evse, clock.sim_now() + WALK_TO_CAR_S)
    transaction = evse.transaction
    if transaction is None:
        return
    if not await _runs_until(station, evse, transaction, clock.sim_now() + DRIVE_OFF_S):
        return
    if "ParkingBayOccupancy" in _stop_points(station):
        await end_transaction(station, evse, "EVDeparted", "EVDisconnected")
        return
    timeout_s = station.device_model.integer("TxCtrlr", "EVConnectionTimeOut")
    if await _runs_until(station, evse, transaction, clock.sim_now() + timeout_s):
        await end_transaction(station, evse, "EVConnectTimeout", "Timeout")


async def _ev_side_disconnect(station: StationCore, evse: Evse) -> None:
    """The cable leaves the EV (E09, E10).  TxStopPoint EVConnected or PowerPathClosed (or
    EnergyTransfer, energy flowing) ends the transaction; otherwise
    TxCtrlr.StopTxOnEVSideDisconnect true ends its authorization, which Authorized among the
    stop points turns into its end, and false suspends it.  chargingState Idle: no EV."""
    evse.plugged_connector = None
    transaction = evse.transaction
    if transaction is None:
        await station.emit(ConnectorStatusChanged())
        return
    stop_points = _stop_points(station)
    if (
        "EVConnected" in stop_points
        or "PowerPathClosed" in stop_points
        or ("EnergyTransfer" in stop_points and transaction.charging_state == "Charging")
    ):
        await end_transaction(station, evse, "EVCommunicationLost", "EVDisconnected")
        return
    if station.device_model.boolean("TxCtrlr", "StopTxOnEVSideDisconnect"):
        await authorization_ended(station, evse, "EVCommunicationLost", "EVDisconnected")
    else:
        await update_transaction(station, evse, "EVCommunicationLost", charging_state="Idle")
    if evse.transaction is not None:
        await station.emit(ConnectorStatusChanged())


def _cable_kept_locked(station: StationCore, evse: Evse, connector_type: str) -> bool:
    """Whether a socket outlet keeps the driver's cable locked after the EV side was
    unplugged: OCPPCommCtrlr.UnlockOnEVSideDisconnect false, or a transaction the disconnect
    suspended (E10.FR.01).  A cable fixed to the station has no lock of the driver's."""
    if not is_socket_outlet(connector_type):
        return False
    transaction = evse.transaction
    if transaction is not None and not transaction.authorization_ended:
        return True
    return not station.device_model.boolean("OCPPCommCtrlr", "UnlockOnEVSideDisconnect")
