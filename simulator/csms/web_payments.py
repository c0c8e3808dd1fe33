"""Web payments through the embedded CSMS (`embedded_csms.web_payments`, C25).

A driver without a card or an account scans the QR code on a station, pays on the operator's
web page, and the CSMS starts the transaction.  Every OCPP 2.1 station offers this
(WebPaymentsCtrlr); it needs no payment terminal.  The CSMS plays the web page's side: every
`every_s` simulated seconds one timer for the whole CSMS gives each chosen station
(`station_share`, by a hash of the station id, so a station always or never has web payers) a
web payer at its first free EVSE -- every connector Available, as its StatusNotifications or
NotifyEvents last said, and no web payment under way there:

1. NotifyWebPaymentStarted for that EVSE, with `timeout_s`: the station shows the EVSE as
   awaiting the payment (WebPaymentsCtrlr.Active) for that long;
2. `delay_s` later, the payment done, RequestStartTransaction for that EVSE with the payment's
   reference as a DirectPayment IdToken; the station starts the transaction (and, with
   ev_fleet.remote_start_plugin_delay_s, the payer's EV plugs in).

`abandon_share` of the payers (by a hash of the payment) give up on the web page: no start
follows, and the station stops waiting when `timeout_s` has passed.

Counted in `CsmsStatistics.pushes`: `web_payment_notified`, `web_payment_abandoned`,
`web_payment_started` (the start was Accepted), `web_payment_refused` (it was not, e.g. a driver
took the EVSE meanwhile), `web_payment_failed` (a request went unanswered).  A 2.0.1 station has
no web payments and is sent nothing.  Nothing here raises into a connection or ends the timer.
"""

from __future__ import annotations

import itertools
import logging
import zlib
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from .csms import Csms
    from .state import StationState

__all__ = ["WebPayments", "free_evse"]

_log = logging.getLogger(__name__)
#: Requests sent at once by one round of the timer.
_PARALLEL_REQUESTS = 100


def free_evse(station: StationState, busy: Collection[int] = ()) -> int | None:
    """The lowest EVSE id of `station` whose connectors were all last reported Available, and
    that is not in `busy`; None when there is none."""
    statuses: dict[int, bool] = {}
    for (evse_id, _connector_id), status in station.connectors.items():
        if evse_id > 0:
            statuses[evse_id] = statuses.get(evse_id, True) and status == "Available"
    free = [evse_id for evse_id, available in statuses.items() if available and evse_id not in busy]
    return min(free, default=None)


class WebPayments:
    """The web payers of the chosen stations, a round every `every_s`."""

    __slots__ = (
        "_ids",
        "_pending",
        "_share_below",
        "abandon_share",
        "delay_s",
        "every_s",
        "timeout_s",
    )

    def __init__(
        self,
        *,
        every_s: float,
        station_share: float,
        delay_s: float,
        timeout_s: int,
        abandon_share: float = 0.0,
    ) -> None:
        if not every_s > 0:
            raise ValueError(f"every_s must be > 0, got {every_s}")
        if not 0.0 <= station_share <= 1.0 or not 0.0 <= abandon_share <= 1.0:
            raise ValueError("station_share and abandon_share must be in [0, 1]")
        if not 0 <= delay_s < timeout_s:
            raise ValueError(
                f"delay_s ({delay_s}) must be shorter than timeout_s ({timeout_s}): the station "
                "stops waiting for the start when the timeout passes"
            )
        self.every_s = every_s
        self.delay_s = delay_s
        self.timeout_s = timeout_s
        self.abandon_share = abandon_share
        self._share_below = station_share * 2**32
        #: Numbers each payment: its remoteStartId and the number in its reference.
        self._ids = itertools.count(1)
        #: EVSEs with a web payment under way, by station id.
        self._pending: dict[str, set[int]] = {}

    def chosen(self, station_id: str) -> bool:
        """Whether `station_id` is one of the stations whose drivers pay on the web."""
        return zlib.crc32(f"web/{station_id}".encode()) < self._share_below

    def abandoned(self, payment_id: int) -> bool:
        return zlib.crc32(f"web-abandon/{payment_id}".encode()) < self.abandon_share * 2**32

    async def timer(self, csms: Csms) -> None:
        """A round every `every_s` (a `CsmsConfig.timers` entry)."""
        limiter = trio.CapacityLimiter(_PARALLEL_REQUESTS)
        async with trio.open_nursery() as rounds:
            while True:
                await csms.sleep_simulated(self.every_s)
                for station_id, station in list(csms.stations.items()):
                    if (
                        station.version != "2.1"
                        or not csms.is_connected(station_id)
                        or not self.chosen(station_id)
                    ):
                        continue
                    pending = self._pending.get(station_id, set())
                    evse_id = free_evse(station, pending)
                    if evse_id is None:
                        continue
                    self._pending.setdefault(station_id, set()).add(evse_id)
                    rounds.start_soon(self._pay, csms, station_id, evse_id, limiter)

    async def _pay(
        self, csms: Csms, station_id: str, evse_id: int, limiter: trio.CapacityLimiter
    ) -> None:
        try:
            await self._flow(csms, station_id, evse_id, limiter)
        except Exception as exc:  # a request the station's schema refuses, a bug
            csms.count_push("web_payment_failed")
            _log.warning("embedded CSMS: a web payment at %s failed: %r", station_id, exc)
        finally:
            pending = self._pending.get(station_id)
            if pending is not None:
                pending.discard(evse_id)
                if not pending:
                    del self._pending[station_id]

    async def _flow(
        self, csms: Csms, station_id: str, evse_id: int, limiter: trio.CapacityLimiter
    ) -> None:
        payment_id = next(self._ids)
        async with limiter:
            notified = await csms.call_quietly(
                station_id,
                "NotifyWebPaymentStarted",
                {"evseId": evse_id, "timeout": self.timeout_s},
            )
        if notified is None:
            csms.count_push("web_payment_failed")
            return
        csms.count_push("web_payment_notified")
        if self.abandoned(payment_id):
            csms.count_push("web_payment_abandoned")
            return
        await csms.sleep_simulated(self.delay_s)
        async with limiter:
            started = await csms.call_quietly(
                station_id, "RequestStartTransaction", self.start_request(payment_id, evse_id)
            )
        if started is None:
            csms.count_push("web_payment_failed")
        elif started.get("status") == "Accepted":
            csms.count_push("web_payment_started")
        else:
            csms.count_push("web_payment_refused")

    @staticmethod
    def start_request(payment_id: int, evse_id: int) -> Mapping[str, Any]:
        """The RequestStartTransaction of payment `payment_id`: its reference is the IdToken."""
        return {
            "remoteStartId": payment_id,
            "evseId": evse_id,
            "idToken": {"idToken": f"WEBPAY-{payment_id:08d}", "type": "DirectPayment"},
        }
