"""Battery swapping (block S, OCPP 2.1: S01-S04, E18): slots that hold packs, and the swaps.

A battery-swap station (`StationConfig.battery_swap`) has slots instead of charging points:
each of its EVSEs is one slot (`batteryData.evseId` is the slot number), holding a pack or
empty.  A pack in a slot charges at the slot's power up to `max_soc`, and that charging is a
transaction of the slot's EVSE (S04): it starts when a pack goes in (triggerReason
CablePluggedIn, with BatterySwapCtrlr.IdToken as a Central token, or a NoAuthorization token
when that is empty), reports SuspendedEVSE when the pack is full, and ends when the pack is
taken out (EVDeparted, stoppedReason EVDisconnected), so the CSMS meters the energy each pack
took as it meters any transaction: periodic samples (MeterValuePeriodic) every
SampledDataCtrlr.TxUpdatedInterval while the pack is in its slot, full or not.  The pack is an
`EvSession` of the world's site, so the site's power, its load balancing and the EVSE's meter
show it; its "full" instant is computed ahead and the slot's task sleeps until then or the
next sample (or until the site changes its share).

A swap EV's driver comes in one of two ways.  S01: the driver authorizes at the station with
their IdToken (Authorize through block C); S02: the CSMS sends RequestBatterySwap with the
driver's IdToken and a requestId, which the station accepts only while it has a charged pack
(SoC at least `ready_soc`) and an empty slot for the depleted one, and otherwise rejects with
reasonCode NoBatteryAvailable.  Either way the swap goes In-Out (BatterySwapCtrlr.SwapOrder):
the depleted pack goes into the empty slot (its transaction starts, then BatterySwap
BatteryIn), the station offers its fullest pack, and the driver takes it out (the slot's
transaction ends, then BatterySwap BatteryOut, with the same requestId).  A driver who does
not take the pack within `out_timeout_s` leaves the station to report BatteryOutTimeout; the
pack stays in its slot and goes on charging.  A station-initiated swap numbers its requestIds
from 1 per station.

The station answers RequestBatterySwap only on a swap station; any other station rejects it
(UnsupportedRequest).  Messages of this block are OCPP 2.1 only: the scenario refuses a swap
station at 2.0.1, and the handler is never asked by a 2.0.1 CSMS (its link has no schema for
the action).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from fleetsim.ev_models import EvArrival, EvModel, EvSession

from ...link import Answer
from ..config import BatterySwapConfig, StationConfig
from ..core import Block, Booted, ConnectorStatusChanged, IdToken, StationCore, refused
from ..device_model import VariableSpec
from ..evse import Evse
from ..transaction import end_transaction, start_transaction, update_transaction

__all__ = [
    "BLOCK",
    "DEFAULT_ARRIVING_SOC",
    "Pack",
    "SwapState",
    "pack_in_slot",
    "swap_ev_arrives",
]

#: The SoC of the pack of a driver the CSMS sent (RequestBatterySwap) without the world having
#: told the station of an EV: a pack run down to a fifth.
DEFAULT_ARRIVING_SOC = 0.2
#: The production date every simulated pack reports (batteryData.productionDate).
_PRODUCTION_DATE = "2025-01-01T00:00:00Z"
_FULL_EPS = 1e-6
#: A sample due this close (simulated seconds) is due now: trio and simulated time convert
#: through floating point.
_SAMPLE_EPS_S = 1e-6


@dataclass(slots=True)
class Pack:
    """One battery pack: in a slot or in a driver's EV.  `soc` (0..1) is its state when it
    last stopped charging; while a slot charges it, the slot's session knows the live value."""

    serial: str
    capacity_wh: float
    soc: float
    soh_percent: float


@dataclass(slots=True)
class _Slot:
    pack: Pack | None = None
    #: The pack's charging session while it is in the slot (block S's own EvArrival for the
    #: site's records).
    arrival: EvArrival | None = None
    #: Kept for a swap in progress: the empty slot a depleted pack goes into, or the pack
    #: being offered to a driver.
    held: bool = False


@dataclass(slots=True)
class SwapState:
    """Per-station state of a swap station: its slots, the drivers the world announced and
    the counts of how swaps went."""

    slots: dict[int, _Slot] = field(default_factory=dict)
    #: Depleted packs of drivers who will be asked for remotely, by IdToken (lower case).
    waiting: dict[str, Pack] = field(default_factory=dict)
    request_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    serials: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    swaps: int = 0
    refused: int = 0
    timeouts: int = 0
    ready: bool = False
    #: The packs the scenario put in the slots went in (their transactions started).
    started: bool = False


# -- packs and slots -------------------------------------------------------------------------------


def _config(station: StationCore) -> BatterySwapConfig | None:
    return station.config.battery_swap


def _state(station: StationCore) -> SwapState:
    """The swap state, with the slots filled as the scenario says the first time it is asked."""
    state = station.block_state(BLOCK)
    if not state.ready:
        state.ready = True
        config = _config(station)
        if config is not None:
            for evse in station.evses:
                slot = state.slots[evse.id] = _Slot()
                if evse.id <= config.packs:
                    slot.pack = Pack(
                        _serial(station, state),
                        config.pack_capacity_wh,
                        config.pack_soc,
                        config.pack_soh_percent,
                    )
    return state


def _serial(station: StationCore, state: SwapState) -> str:
    return f"{station.id}-P{next(state.serials):04d}"[-50:]


def pack_soc(station: StationCore, evse: Evse, pack: Pack) -> float:
    """The live SoC (0..1) of `pack`, in `evse`'s slot or not."""
    session = evse.session
    if session is not None and _state(station).slots[evse.id].pack is pack:
        return min(1.0, session.soc_at(station.clock.sim_now()))
    return pack.soc


def pack_in_slot(station: StationCore, evse_id: int) -> tuple[str, float] | None:
    """(serial number, SoC 0..1) of the pack in slot `evse_id` now, or None when it is empty."""
    if _config(station) is None:
        return None
    slot = _state(station).slots.get(evse_id)
    evse = station.evse(evse_id)
    if slot is None or slot.pack is None or evse is None:
        return None
    return slot.pack.serial, pack_soc(station, evse, slot.pack)


def _battery_data(station: StationCore, evse: Evse, pack: Pack) -> dict[str, Any]:
    return {
        "evseId": evse.id,
        "serialNumber": pack.serial,
        "soC": round(pack_soc(station, evse, pack) * 100.0, 1),
        "soH": pack.soh_percent,
        "productionDate": _PRODUCTION_DATE,
    }


def _pack_model(capacity_wh: float, slot_w: float) -> EvModel:
    """A pack as the charging physics sees it: a battery of `capacity_wh` that takes the slot's
    full power (the slot's charger is sized for it) with no losses to speak of."""
    return EvModel(
        name="swap-pack",
        kind="car",
        usable_battery_wh=capacity_wh,
        max_ac_w=0.0,
        ac_phases=3,
        max_dc_w=slot_w,
        dc_curve=((0.0, slot_w),),
        ac_efficiency=1.0,
        dc_efficiency=0.97,
        iso15118_20=False,
        bidirectional=False,
        max_discharge_w=0.0,
    )


def _charging_token(station: StationCore) -> IdToken:
    """BatterySwapCtrlr.IdToken as the IdToken of a slot's charging transaction (S04)."""
    value = station.device_model.get("BatterySwapCtrlr", "IdToken") or ""
    return {"idToken": value, "type": "Central" if value else "NoAuthorization"}


async def _pack_goes_in(station: StationCore, evse: Evse, pack: Pack) -> None:
    """A pack goes into `evse`'s slot: its charging transaction starts and it charges."""
    config = _config(station)
    assert config is not None
    state = _state(station)
    slot = state.slots[evse.id]
    now_s = station.clock.sim_now()
    slot.pack = pack
    target_soc = config.max_soc
    model = _pack_model(pack.capacity_wh, evse.max_power_w)
    arrival = EvArrival(
        arrival_s=now_s,
        model=model,
        soc_start=min(pack.soc, 1.0),
        target_soc=target_soc,
        min_soc=0.0,
        departure_s=math.inf,
        id_token="",
        id_token_type="NoAuthorization",
        id_token_first=False,
        uses_iso15118_20=False,
    )
    slot.arrival = arrival
    site = station.site
    if site is not None:
        session = site.new_session(station, evse, arrival)
    else:
        session = EvSession(
            model,
            supply="DC",
            evse_max_w=evse.max_power_w,
            evse_phases=evse.phases,
            soc=arrival.soc_start,
            target_soc=target_soc,
            min_soc=0.0,
            now_s=now_s,
        )
    evse.session = session
    evse.accounted_wh = 0.0
    evse.plugged_connector = 1
    full = pack.soc >= target_soc - _FULL_EPS
    await station.emit(ConnectorStatusChanged())
    await start_transaction(
        station,
        evse,
        "CablePluggedIn",
        id_token=_charging_token(station),
        charging_state="SuspendedEVSE" if full else "Charging",
    )
    if evse.session is not session:
        return  # taken out meanwhile
    session.set_enabled(True, station.clock.sim_now())
    if site is not None:
        site.power_changed(station, evse, station.clock.sim_now())
    station.spawn(partial(_charge, station, evse, session, full))


def _next_sample_s(station: StationCore, evse: Evse, last_sample_s: float) -> float:
    """When the slot's transaction sends its next periodic sample: one
    SampledDataCtrlr.TxUpdatedInterval after the last; inf without a transaction or interval."""
    interval_s = station.device_model.integer("SampledDataCtrlr", "TxUpdatedInterval")
    if interval_s <= 0 or evse.transaction is None:
        return math.inf
    return last_sample_s + interval_s


async def _charge(station: StationCore, evse: Evse, session: EvSession, full: bool) -> None:
    """Charge the pack of `evse`'s slot until it is full, and meter the slot's transaction
    until the pack is taken out: an Updated event (MeterValuePeriodic, the TxUpdatedInterval
    measurands) every SampledDataCtrlr.TxUpdatedInterval, as any charging transaction sends.
    Sleeps until the session's next change (computed ahead) or the next sample, woken early
    when the site changes its share or the interval changes."""
    config = _config(station)
    assert config is not None
    clock = station.clock
    site = station.site
    last_sample_s = clock.sim_now()
    while evse.session is session:
        change_s = math.inf if full else session.next_change_s()
        deadline_s = min(change_s, _next_sample_s(station, evse, last_sample_s))
        evse.wake_at_s = deadline_s
        try:
            await evse.alarm.sleep_until(
                math.inf if math.isinf(deadline_s) else clock.trio_deadline(deadline_s)
            )
        finally:
            evse.wake_at_s = math.inf
        await station.wait_up()
        if evse.session is not session:
            return
        now_s = clock.sim_now()
        if not full:
            session.on_change(now_s)
            if site is not None:
                site.power_changed(station, evse, now_s)
            if session.soc_at(now_s) >= config.max_soc - _FULL_EPS and session.power_w == 0:
                full = True
                await update_transaction(
                    station, evse, "ChargingStateChanged", charging_state="SuspendedEVSE"
                )
                if evse.session is not session:
                    return
        sample_s = _next_sample_s(station, evse, last_sample_s)
        if now_s >= sample_s - _SAMPLE_EPS_S:
            await update_transaction(station, evse, "MeterValuePeriodic", with_meter=True)
            # Keep the sampling grid while on time; a sample missed (a new, shorter interval)
            # is not replayed: the next one is an interval from now.
            interval_s = sample_s - last_sample_s
            last_sample_s = sample_s if now_s - sample_s < interval_s else now_s


async def _pack_goes_out(station: StationCore, evse: Evse) -> Pack | None:
    """The pack of `evse`'s slot is taken out: its transaction ends with the energy it took,
    and the slot is empty."""
    slot = _state(station).slots[evse.id]
    pack = slot.pack
    if pack is None:
        return None
    now_s = station.clock.sim_now()
    session = evse.session
    pack.soc = pack_soc(station, evse, pack)
    full = session is not None and pack.soc >= (_config(station) or BatterySwapConfig()).max_soc
    evse.plugged_connector = None
    await end_transaction(
        station, evse, "EnergyLimitReached" if full else "EVDeparted", "EVDisconnected"
    )
    now_s = station.clock.sim_now()
    if session is not None:
        session.set_enabled(False, now_s)
        station.stats.energy_delivered(evse.unaccounted_wh(now_s))
        evse.import_base_wh += session.imported_wh_at(now_s)
        evse.session = None
        evse.accounted_wh = 0.0
        site = station.site
        if site is not None and slot.arrival is not None:
            site.session_ended(station, evse, slot.arrival, now_s)
    slot.pack = None
    slot.arrival = None
    evse.wake()
    await station.emit(ConnectorStatusChanged())
    return pack


# -- swaps -------------------------------------------------------------------------------------


def _plan(station: StationCore) -> tuple[Evse, Evse] | None:
    """The empty slot for the depleted pack and the slot whose pack goes out (the fullest one
    at `ready_soc` or above), both held for the swap; None when the station cannot swap now."""
    config = _config(station)
    if config is None or not station.operative:
        return None
    state = _state(station)
    empty: Evse | None = None
    best: tuple[float, Evse] | None = None
    for evse in station.evses:
        slot = state.slots[evse.id]
        if slot.held or not evse.operative:
            continue
        if slot.pack is None:
            empty = empty or evse
            continue
        soc = pack_soc(station, evse, slot.pack)
        if soc >= config.ready_soc - _FULL_EPS and (best is None or soc > best[0]):
            best = (soc, evse)
    if empty is None or best is None:
        return None
    state.slots[empty.id].held = True
    state.slots[best[1].id].held = True
    return empty, best[1]


def _release(station: StationCore, *evses: Evse) -> None:
    slots = _state(station).slots
    for evse in evses:
        slots[evse.id].held = False


async def _battery_swap(
    station: StationCore,
    event_type: str,
    request_id: int,
    id_token: IdToken,
    data: list[dict[str, Any]],
) -> None:
    await station.call(
        "BatterySwap",
        {
            "eventType": event_type,
            "requestId": request_id,
            "idToken": id_token,
            "batteryData": data,
        },
    )


async def _swap(
    station: StationCore,
    request_id: int,
    id_token: IdToken,
    depleted: Pack,
    slots: tuple[Evse, Evse],
    *,
    remote: bool,
) -> None:
    """One swap, In-Out: the depleted pack in (BatteryIn), the charged one out (BatteryOut),
    or left in its slot when the driver does not take it (BatteryOutTimeout); `remote` when
    the CSMS asked for it (S02), for the run's counts."""
    config = _config(station)
    assert config is not None
    in_evse, out_evse = slots
    state = _state(station)
    try:
        await _pack_goes_in(station, in_evse, depleted)
        await _battery_swap(
            station,
            "BatteryIn",
            request_id,
            id_token,
            [_battery_data(station, in_evse, depleted)],
        )
        takes = random.Random(f"{station.id}/swap/{request_id}").random() >= config.no_take_share
        await station.clock.sleep(config.take_out_s if takes else config.out_timeout_s)
        await station.wait_up()
        offered = state.slots[out_evse.id].pack
        if offered is None:
            return
        data = [_battery_data(station, out_evse, offered)]
        if not takes:
            state.timeouts += 1
            station.stats.battery_swap("out_timeout")
            await _battery_swap(station, "BatteryOutTimeout", request_id, id_token, data)
            return
        await _pack_goes_out(station, out_evse)
        state.swaps += 1
        station.stats.battery_swap("remote" if remote else "local")
        await _battery_swap(station, "BatteryOut", request_id, id_token, data)
    finally:
        _release(station, in_evse, out_evse)


def swap_ev_arrives(station: StationCore, depleted: Pack, id_token: IdToken) -> None:
    """A swap EV's driver authorizes at the station with `id_token` (S01; called by the
    world, outside trio's tasks).  A driver the station cannot serve, or whose token is not
    accepted, drives on."""
    if _config(station) is None:
        return
    station.spawn(partial(_local_swap, station, depleted, id_token))


async def _local_swap(station: StationCore, depleted: Pack, id_token: IdToken) -> None:
    state = _state(station)
    if _plan_free(station) is None:
        state.refused += 1
        station.stats.battery_swap("no_battery_available")
        return
    if not await station.authorize(id_token):
        state.refused += 1
        station.stats.battery_swap("not_authorized")
        return
    slots = _plan(station)
    if slots is None:
        state.refused += 1
        station.stats.battery_swap("no_battery_available")
        return
    await _swap(station, next(state.request_ids), id_token, depleted, slots, remote=False)


def _plan_free(station: StationCore) -> tuple[Evse, Evse] | None:
    """Whether a swap could be planned now, holding nothing."""
    slots = _plan(station)
    if slots is not None:
        _release(station, *slots)
    return slots


def expect_remote_driver(station: StationCore, depleted: Pack, id_token: IdToken) -> None:
    """The world's driver of `id_token` asked the CSMS for a swap (its app): the station
    will take `depleted` from them when the CSMS's RequestBatterySwap comes."""
    _state(station).waiting[id_token["idToken"].lower()] = depleted


def new_pack(station: StationCore, capacity_wh: float, soc: float) -> Pack:
    """A swap EV's pack, numbered by the station that first sees it."""
    config = _config(station)
    soh = config.pack_soh_percent if config is not None else 100.0
    return Pack(_serial(station, _state(station)), capacity_wh, soc, soh)


def _request_battery_swap(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    """S02: the CSMS asks the station to swap for the driver of `idToken`."""
    config = _config(station)
    if config is None:
        return refused("UnsupportedRequest", "this station has no battery-swap slots")
    id_token: IdToken = dict(payload["idToken"])
    state = _state(station)
    # The driver's pack, if the world announced one; a refused driver drives on with it.
    depleted = state.waiting.pop(id_token["idToken"].lower(), None)
    slots = _plan(station)
    if slots is None:
        station.stats.battery_swap("no_battery_available")
        return refused(
            "NoBatteryAvailable",
            "no charged pack and empty slot for a swap now"
            if station.operative
            else "the station is out of service",
        )
    if depleted is None:
        depleted = new_pack(station, config.pack_capacity_wh, DEFAULT_ARRIVING_SOC)
    return Answer(
        {"status": "Accepted"},
        then=partial(
            _swap, station, int(payload["requestId"]), id_token, depleted, slots, remote=True
        ),
    )


# -- device model ------------------------------------------------------------------------------


def _variables(config: StationConfig) -> Iterable[VariableSpec]:
    """BatterySwapCtrlr (read-only: the station reports how it swaps, the CSMS sets nothing)
    and, per slot, the BatteryCartridge's live SoC."""
    swap = config.battery_swap
    if swap is None:
        return []
    specs = [
        VariableSpec("BatterySwapCtrlr", "Enabled", "boolean", "true", "ReadOnly"),
        VariableSpec("BatterySwapCtrlr", "Available", "boolean", "true", "ReadOnly"),
        VariableSpec(
            "BatterySwapCtrlr",
            "SwapOrder",
            "OptionList",
            "In-Out",
            "ReadOnly",
            values_list=("In-Out", "Out-In"),
        ),
        VariableSpec("BatterySwapCtrlr", "IdToken", "string", swap.charging_id_token, "ReadOnly"),
        VariableSpec(
            "BatterySwapCtrlr",
            "MaxSoc",
            "integer",
            str(round(swap.max_soc * 100)),
            "ReadOnly",
            unit="Percent",
        ),
        VariableSpec(
            "BatterySwapCtrlr",
            "Timeout",
            "integer",
            str(round(swap.out_timeout_s)),
            "ReadOnly",
            variable_instance="Out",
            unit="s",
        ),
    ]
    for evse_id in range(1, len(config.evses) + 1):
        specs.append(
            VariableSpec(
                "BatteryCartridge",
                "SoC",
                "decimal",
                "",
                "ReadOnly",
                evse_id=evse_id,
                unit="Percent",
                reader=partial(_cartridge_soc, evse_id),
            )
        )
    return specs


def _cartridge_soc(evse_id: int, station: StationCore) -> str:
    found = pack_in_slot(station, evse_id)
    return "" if found is None else f"{found[1] * 100:.1f}"


async def _booted(station: StationCore) -> None:
    """On the first boot, the packs the scenario put in the slots go in: their charging
    transactions start (S04) as the station comes up with them."""
    state = _state(station)
    state.started = True
    for evse in station.evses:
        slot = state.slots[evse.id]
        if slot.pack is not None and evse.session is None and evse.transaction is None:
            pack, slot.pack = slot.pack, None
            await _pack_goes_in(station, evse, pack)


def _on_boot(station: StationCore, event: Booted) -> Any:
    if station.config.battery_swap is None:
        return None
    state = station.peek_block_state(BLOCK)
    if state is not None and state.started:
        return None
    return _booted(station)


def _new_state() -> SwapState:
    return SwapState()


BLOCK: Block[SwapState] = Block(
    letter="S",
    name="battery_swap",
    handlers={"RequestBatterySwap": _request_battery_swap},
    follow_ups={"RequestBatterySwap": ("TransactionEvent", "BatterySwap")},
    variables=_variables,
    reactions={Booted: _on_boot},
    new_state=_new_state,
)
