"""Block Q, bidirectional power transfer (V2X, OCPP 2.1): who may discharge, and how.

Block K's limit says which operation mode a TxProfile period asks for (`ActiveLimit`); this
block's `shape_limit` makes of it what the station's own V2X state allows:

- Q01/Q02, V2X authorization: an EV discharges only once the CSMS allowed a bidirectional
  energy transfer mode (one ending in `_BPT`) for its transaction, in the `allowedEnergyTransfer`
  of the Authorize answer for the transaction's IdToken or in a NotifyAllowedEnergyTransfer for
  the transaction (the later word wins).  Until then, and after a list without a `_BPT` mode,
  the transaction is charging only: a V2X period becomes ChargingOnly under its own limit (a
  discharge limit allows no import).  (The TransactionEvent answer carries no
  allowedEnergyTransfer in the 2.1 schema.)
- Q03/Q04 CentralSetpoint: block K gives the setpoint; negative discharges.
- Q05/Q06 ExternalSetpoint: fleetsim simulates no energy management system beside the CSMS, so
  the setpoint of the period in force stands for the external system's value (the CSMS relays
  it); ExternalLimits limits import as ChargingOnly does, the external system's caps arriving as
  a ChargingStationExternalConstraints profile.
- Q07 CentralFrequency: the period's `setpoint` (else its `v2xBaseline`) until an AFRRSignal
  whose timestamp has come; from then the period's `v2xSignalWattCurve` maps the signal level
  to power (linear between its points, flat beyond them).  A signal stamped in the future
  changes the power at that instant (the limit's `next_change_s`), nothing polls.
- Q08 LocalFrequency: the site follows the grid model's frequency on the period's
  `v2xFreqWattCurve` (`SiteHooks.follow_frequency`, woken by frequency events).
- Q09 LocalLoadBalancing: charging under the period's limit and the site's share of its grid
  connection, which the site balances among its EVs; no setpoint.
- Q10 Idle: block K's limit of 0.
- Q11/Q12 offline and resume: the TxProfile stays in force while the station is offline, as
  every profile does (K06), unless it has a maxOfflineDuration (2.1): that long after the
  connection dropped it gives way to the profile below it (a ChargingOnly TxDefaultProfile, or
  the station's own limits), so the EV stops following a setpoint the CSMS can no longer revise;
  back online it rules again, unless invalidAfterOfflineDuration made it invalid for good (block
  K, `smart_charging/offline.py`).  Each change of operation mode is a TransactionEvent
  (OperationModeChanged) queued offline with its time and sent on reconnection.  AFRR signals
  need the CSMS, so none arrive meanwhile: the last one stays in force.

The state (allowed modes by transaction and by IdToken, the AFRR signals) exists only once the
CSMS sent something of it; a period without a V2X mode costs the shaper one string lookup.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ...link import Answer
from ..core import (
    ActiveLimit,
    AuthorizeAnswered,
    Block,
    StationCore,
    TransactionEnded,
    refused,
)
from ..evse import NOMINAL_PHASE_VOLTAGE_V, Evse

__all__ = ["BLOCK", "V2xState", "signal_power_w"]

#: Operation modes in which the EV never discharges: the shaper leaves them to block K.
_CHARGING_MODES = frozenset({"ChargingOnly", "ExternalLimits", "Idle"})
#: AFRR signals kept besides the one in force: those stamped in the future, at most this many.
_MAX_PENDING_SIGNALS = 16


@dataclass(slots=True)
class V2xState:
    """What the CSMS said of V2X to one station."""

    #: allowedEnergyTransfer by transactionId (NotifyAllowedEnergyTransfer).
    allowed_by_transaction: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: allowedEnergyTransfer by idToken (the Authorize answer), for the transactions it starts.
    allowed_by_token: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: AFRR signals as (simulated second it takes effect, level), in time order; the first is
    #: the one in force once its second has come, the rest wait for theirs.
    signals: list[tuple[float, int]] = field(default_factory=list)


def _state(station: StationCore) -> V2xState:
    return station.block_state(BLOCK)


def _bidirectional_allowed(modes: Sequence[str]) -> bool:
    return any(mode.endswith("_BPT") for mode in modes)


def _v2x_authorized(state: V2xState | None, evse: Evse) -> bool:
    """Q01/Q02: whether the CSMS allowed `evse`'s transaction a `_BPT` energy transfer."""
    transaction = evse.transaction
    if state is None or transaction is None:
        return False
    modes = state.allowed_by_transaction.get(transaction.id)
    if modes is None and transaction.id_token is not None:
        modes = state.allowed_by_token.get(transaction.id_token["idToken"])
    return modes is not None and _bidirectional_allowed(modes)


def _watts(value: Any, limit: ActiveLimit, evse: Evse) -> float | None:
    """A period value in the schedule's unit as watts (A: per phase at the nominal voltage)."""
    if value is None:
        return None
    schedule = limit.tx_schedule or {}
    if schedule.get("chargingRateUnit", "W") == "W":
        return float(value)
    period = limit.period or {}
    return float(value) * NOMINAL_PHASE_VOLTAGE_V * int(period.get("numberPhases") or evse.phases)


def signal_power_w(curve: Sequence[Mapping[str, Any]], signal: int) -> float:
    """The power a v2xSignalWattCurve gives at `signal`: linear between its points, flat
    beyond the first and the last."""
    points = sorted((float(p["signal"]), float(p["power"])) for p in curve)
    levels = [point[0] for point in points]
    index = bisect.bisect_right(levels, signal)
    if index == 0:
        return points[0][1]
    if index == len(points):
        return points[-1][1]
    (s0, p0), (s1, p1) = points[index - 1], points[index]
    return p0 + (p1 - p0) * (signal - s0) / (s1 - s0)


def _charging_only(limit: ActiveLimit) -> ActiveLimit:
    """Q02: what a V2X period leaves of itself before V2X is authorized."""
    limit_w = limit.limit_w
    return replace(
        limit,
        operation_mode="ChargingOnly",
        setpoint_w=None,
        discharge_limit_w=None,
        freq_watt_curve=(),
        limit_w=None if limit_w is None else max(limit_w, 0.0),
    )


def _central_frequency(
    station: StationCore, evse: Evse, limit: ActiveLimit, state: V2xState | None
) -> ActiveLimit:
    period = limit.period or {}
    setpoint_w = _watts(period.get("setpoint", period.get("v2xBaseline")), limit, evse)
    next_change_s = limit.next_change_s
    curve = period.get("v2xSignalWattCurve")
    if state is not None and state.signals and curve:
        now_s = station.clock.sim_now()
        at_s, level = state.signals[0]
        if at_s <= now_s:
            setpoint_w = signal_power_w(curve, level)
            if len(state.signals) > 1:
                next_change_s = min(next_change_s, state.signals[1][0])
        else:
            next_change_s = min(next_change_s, at_s)
    return replace(limit, setpoint_w=setpoint_w, next_change_s=next_change_s)


def shape_limit(station: StationCore, evse: Evse, limit: ActiveLimit) -> ActiveLimit:
    """What the V2X state makes of block K's limit for `evse` (see the module docstring)."""
    mode = limit.operation_mode
    if mode in _CHARGING_MODES:
        return limit
    state = station.peek_block_state(BLOCK)
    if not _v2x_authorized(state, evse):
        return _charging_only(limit)
    if mode == "CentralFrequency":
        return _central_frequency(station, evse, limit, state)
    if mode == "ExternalSetpoint":
        period = limit.period or {}
        return replace(limit, setpoint_w=_watts(period.get("setpoint"), limit, evse))
    if mode == "LocalLoadBalancing":
        return replace(limit, setpoint_w=None, freq_watt_curve=())
    return limit


# -- the CSMS's requests ---------------------------------------------------------------------


def _wake_all(station: StationCore) -> None:
    for evse in station.evses:
        if evse.session is not None:
            evse.wake()


def notify_allowed_energy_transfer(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    """Q01: the CSMS names the energy transfer modes a running transaction may use; the EV's
    power follows at once (a list without `_BPT` ends any discharge)."""
    transaction_id = payload["transactionId"]
    evse = next(
        (e for e in station.evses if e.transaction and e.transaction.id == transaction_id), None
    )
    if evse is None:
        return refused("TxNotFound", f"no transaction {transaction_id} runs on this station")
    _state(station).allowed_by_transaction[transaction_id] = tuple(payload["allowedEnergyTransfer"])
    evse.wake()
    return Answer({"status": "Accepted"})


def _epoch_s(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def afrr_signal(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    """Q07: an AFRR signal level, in force from its timestamp on every EVSE whose period runs
    CentralFrequency with a v2xSignalWattCurve (now or later)."""
    try:
        at_epoch_s = _epoch_s(str(payload["timestamp"]))
    except ValueError:
        return refused("InvalidValue", "timestamp is not an RFC 3339 date-time")
    at_s = at_epoch_s - station.clock.epoch_s(0.0)
    now_s = station.clock.sim_now()
    state = _state(station)
    signals = state.signals
    # The one in force now stays first until a later one's second comes; a signal for a time
    # already past replaces everything up to it.
    in_force = [s for s in signals if s[0] <= now_s][-1:]
    pending = [s for s in signals if s[0] > now_s and s[0] < at_s]
    if at_s <= now_s:
        kept = [(at_s, int(payload["signal"]))]
    else:
        if len(pending) >= _MAX_PENDING_SIGNALS:
            return refused("OutOfStorage", f"{_MAX_PENDING_SIGNALS} future signals are pending")
        kept = [*in_force, *pending, (at_s, int(payload["signal"]))]
    state.signals = kept
    _wake_all(station)
    return Answer({"status": "Accepted"})


# -- station events --------------------------------------------------------------------------


def _authorize_answered(station: StationCore, event: AuthorizeAnswered) -> None:
    allowed = event.allowed_energy_transfer
    if allowed is not None:
        _state(station).allowed_by_token[event.id_token["idToken"]] = allowed


def _transaction_ended(station: StationCore, event: TransactionEnded) -> None:
    state = station.peek_block_state(BLOCK)
    if state is not None:
        state.allowed_by_transaction.pop(event.transaction.id, None)


BLOCK: Block[V2xState] = Block(
    letter="Q",
    name="v2x",
    handlers={
        "NotifyAllowedEnergyTransfer": notify_allowed_energy_transfer,
        "AFRRSignal": afrr_signal,
    },
    reactions={AuthorizeAnswered: _authorize_answered, TransactionEnded: _transaction_ended},
    new_state=V2xState,
    shape_limit=shape_limit,
)
