"""`DriverSwaps`: the embedded CSMS starting battery swaps for drivers who use its app (S02).

A swap driver may ask the CSMS for a swap -- through its app, as they pull up -- instead of
authorizing at the station (S01); the CSMS then sends the station RequestBatterySwap with the
driver's IdToken and a requestId, which the station's BatterySwap messages carry back.  In a
fleetsim run the world plays the drivers and decides who asks this way
(`embedded_csms.remote_swap_share`); this desk numbers the requests and reads the answers.
Only a CSMS in the run's own process can be asked, as for `DriverReservations`.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .csms import Csms

__all__ = ["DriverSwaps"]


class DriverSwaps:
    """Sends RequestBatterySwap on the world's drivers' behalf through one `Csms`; satisfies
    `simulator.world.SwapDesk`."""

    __slots__ = ("_csms", "_ids", "answers")

    def __init__(self, csms: Csms) -> None:
        self._csms = csms
        #: requestIds from 1 for the whole CSMS, so no two of its swaps share one.
        self._ids = itertools.count(1)
        #: The stations' answers by status (`Accepted`, `Rejected`), and `unanswered`.
        self.answers: Counter[str] = Counter()

    async def request_swap(self, station_id: str, id_token: Mapping[str, str]) -> bool:
        """Ask `station_id` to swap for the driver of `id_token`; whether it accepted."""
        payload = {"requestId": next(self._ids), "idToken": dict(id_token)}
        answer = await self._csms.call_quietly(station_id, "RequestBatterySwap", payload)
        status = "unanswered" if answer is None else str(answer["status"])
        self.answers[status] += 1
        return status == "Accepted"
