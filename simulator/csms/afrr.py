"""AFRR signals from the embedded CSMS (`embedded_csms.afrr`, Q07/Q08 central frequency support).

A grid operator that buys automatic frequency restoration reserve (aFRR) from a fleet of
bidirectional EVs sends the fleet's operator an activation level; the CSMS passes it to its
stations with AFRRSignal, and each EV whose TxProfile runs CentralFrequency moves its power to
what the profile's v2xSignalWattCurve gives at that level.  With `v2x_operation_mode:
CentralFrequency` the CSMS's V2X TxProfile (`smart_charging.py`) carries such a curve:

    signal -100 (full downward activation: too much power in the grid)  +v2x_max_power_w
    signal    0 (no activation)                                          v2xBaseline, half
    signal +100 (full upward activation: too little power in the grid)  -v2x_max_power_w

linear in between, so an EV charges at half power until a signal comes and discharges fully at
full upward activation.

Where the levels come from: the scenario's grid frequency events (`from_grid_events`): at the
start of each excursion the level that answers its deviation, `(nominal - frequency) /
full_activation_hz` as a percentage, rounded and capped at +-100, and 0 when it ends; and any
`signals` the scenario lists, each at its second of the run.  One timer for the whole CSMS
sends each level at its moment to every station running a CentralFrequency transaction; a
station whose CentralFrequency profile arrives later gets the level in force with it, unless it
already has it.

Counted in `CsmsStatistics.pushes`: `afrr_signal_sent`, `afrr_signal_failed`.  AFRR is OCPP
2.1's: a 2.0.1 station (which has no V2X profiles either) is sent nothing.  Nothing here raises
into a connection or ends the timer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import trio

from ..clock import format_timestamp
from .reactions import ON_ENDED, Selective
from .smart_charging import FULL_ACTIVATION, Reaction, signal_watt_curve

if TYPE_CHECKING:
    from .csms import Csms

__all__ = ["FULL_ACTIVATION", "AfrrSignals", "signal_watt_curve", "signals_from_frequency_events"]

_log = logging.getLogger(__name__)
#: Stations signalled at once.
_PARALLEL_SIGNALS = 100


def signals_from_frequency_events(
    events: Iterable[tuple[float, float, float]], nominal_hz: float, full_activation_hz: float
) -> list[tuple[float, int]]:
    """(run second, level) for each (at_s, duration_s, frequency_hz) excursion: its level at
    its start, 0 at its end."""
    signals: list[tuple[float, int]] = []
    for at_s, duration_s, frequency_hz in events:
        share = (nominal_hz - frequency_hz) / full_activation_hz
        level = max(-FULL_ACTIVATION, min(FULL_ACTIVATION, round(share * FULL_ACTIVATION)))
        signals += [(at_s, level), (at_s + duration_s, 0)]
    return signals


class AfrrSignals:
    """The activation levels over the run, the level in force, and who gets them."""

    __slots__ = ("_running", "_sent", "level", "signals")

    def __init__(self, signals: Sequence[tuple[float, int]]) -> None:
        #: (run second, level), in time order (a later entry at the same second wins).
        self.signals = sorted(signals, key=lambda signal: signal[0])
        #: The level in force; 0 before the first signal, which the curve maps to the
        #: profile's baseline, as if no signal had come.
        self.level = 0
        #: The transactions running under the CSMS's CentralFrequency profile, by station.
        self._running: dict[str, set[str]] = {}
        #: The last level each station accepted.
        self._sent: dict[str, int] = {}

    def reactions(self) -> dict[str, Reaction]:
        """The reactions for `CsmsConfig.reactions`: forget a transaction when it ends, and
        what a station was sent when it boots (its signals went with its state)."""
        return {
            "TransactionEvent": Selective(ON_ENDED, self._transaction_event),
            "BootNotification": self._booted,
        }

    async def _booted(
        self, csms: Csms, station_id: str, request: Mapping[str, Any], answer: Mapping[str, Any]
    ) -> None:
        self._running.pop(station_id, None)
        self._sent.pop(station_id, None)

    async def _transaction_event(
        self, csms: Csms, station_id: str, request: Mapping[str, Any], answer: Mapping[str, Any]
    ) -> None:
        if request["eventType"] != "Ended":
            return
        running = self._running.get(station_id)
        if running is None:
            return
        running.discard(str(request["transactionInfo"]["transactionId"]))
        if not running:
            del self._running[station_id]

    async def profile_installed(self, csms: Csms, station_id: str, transaction_id: str) -> None:
        """The station accepted a CentralFrequency TxProfile for `transaction_id`: it gets
        the signals from now on, and the level in force unless it has it."""
        self._running.setdefault(station_id, set()).add(transaction_id)
        if self._sent.get(station_id, 0) != self.level:
            await self._send(csms, station_id, self.level)

    async def timer(self, csms: Csms) -> None:
        """Each level at its second of the run (a `CsmsConfig.timers` entry)."""
        for at_s, level in self.signals:
            await csms.sleep_until_run_second(at_s)
            self.level = level
            async with trio.open_nursery() as nursery:
                limiter = trio.CapacityLimiter(_PARALLEL_SIGNALS)
                for station_id in sorted(self._running):
                    nursery.start_soon(self._send_limited, csms, station_id, level, limiter)

    async def _send_limited(
        self, csms: Csms, station_id: str, level: int, limiter: trio.CapacityLimiter
    ) -> None:
        async with limiter:
            await self._send(csms, station_id, level)

    async def _send(self, csms: Csms, station_id: str, level: int) -> None:
        if csms.station(station_id).version != "2.1":
            return
        payload = {"timestamp": format_timestamp(csms.now()), "signal": level}
        try:
            answer = await csms.call_quietly(station_id, "AFRRSignal", payload)
        except Exception as exc:  # a request the station's schema refuses, a bug
            answer = None
            _log.warning("embedded CSMS: AFRRSignal to %s failed: %r", station_id, exc)
        if answer is not None and answer.get("status") == "Accepted":
            self._sent[station_id] = level
            csms.count_push("afrr_signal_sent")
            return
        csms.count_push("afrr_signal_failed")
        _log.debug("embedded CSMS: %s refused AFRR signal %d: %r", station_id, level, answer)
