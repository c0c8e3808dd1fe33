"""`DriverReservations`: the embedded CSMS reserving EVSEs for drivers who book ahead (H01).

A driver reserves through the CSMS -- its app or website -- and the CSMS sends the station
ReserveNow: for the EVSE the driver picked, or for any EVSE with the connector type their EV
uses.  In a fleetsim run the world (simulator/world.py) plays the drivers: it decides who books,
when and where (`embedded_csms.reserve_share`), and asks this desk, which numbers the
reservations, builds the request and reads the station's answer.  The world's drivers claim
the reservation with their IdToken when they arrive, as block H of the station expects.

Only a CSMS in the run's own process can be asked: an external CSMS has no door through which
a simulator could make it reserve, and the embedded CSMS of `--workers` runs in processes of its
own.  Reservation ids count from 1 for the whole CSMS, so no two of its reservations share one.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..clock import format_timestamp

if TYPE_CHECKING:
    from .csms import Csms

__all__ = ["DriverReservations"]


class DriverReservations:
    """Sends ReserveNow on the world's drivers' behalf through one `Csms`; satisfies
    `simulator.world.ReservationDesk`."""

    __slots__ = ("_csms", "_ids", "answers")

    def __init__(self, csms: Csms) -> None:
        self._csms = csms
        self._ids = itertools.count(1)
        #: The stations' answers by status (`Accepted`, `Occupied`, ...), and `unanswered`.
        self.answers: Counter[str] = Counter()

    async def reserve(
        self,
        station_id: str,
        id_token: str,
        id_token_type: str,
        expiry_epoch_s: float,
        *,
        evse_id: int | None,
        connector_type: str | None,
    ) -> int | None:
        """Reserve at `station_id` for the driver of `id_token` until `expiry_epoch_s`: the
        EVSE `evse_id`, or (None) any EVSE, of `connector_type` when given.  Returns the
        reservation's id when the station accepted it; None when it refused, did not answer
        or is not connected (counted in `answers`)."""
        reservation_id = next(self._ids)
        payload: dict[str, Any] = {
            "id": reservation_id,
            "expiryDateTime": format_timestamp(expiry_epoch_s),
            "idToken": {"idToken": id_token, "type": id_token_type},
        }
        if evse_id is not None:
            payload["evseId"] = evse_id
        if connector_type is not None:
            payload["connectorType"] = connector_type
        answer = await self._csms.call_quietly(station_id, "ReserveNow", payload)
        status = "unanswered" if answer is None else str(answer["status"])
        self.answers[status] += 1
        return reservation_id if status == "Accepted" else None
