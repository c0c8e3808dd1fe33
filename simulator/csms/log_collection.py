"""The embedded CSMS collecting logs: a nightly GetLog to a share of the stations (N01).

An operator's back office fetches diagnostics from part of its fleet every day at a quiet hour.
With `embedded_csms.log_collection`, the embedded CSMS does the same: each day, at the first
Heartbeat a station sends after `time_of_day` (UTC, by the CSMS's clock: simulated time in a
run's own process), it sends that station GetLog -- if the station is one of `share`, drawn
by station id so a station is always in or always out.  A station is first asked on the first
passing of `time_of_day` after the CSMS first hears its Heartbeat, never at once.  The
stations answer with LogStatusNotifications, counted here by status.

Reacting to Heartbeats keeps this event-driven: no timer per station, and a fleet without
log collection pays nothing.
"""

from __future__ import annotations

import itertools
import zlib
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..station.id_tokens import epoch_s

if TYPE_CHECKING:
    from .csms import Csms
    from .smart_charging import Reaction

__all__ = ["LogCollection"]

_DAY_S = 86_400


class LogCollection:
    """Sends GetLog to `share` of the stations once a day after `time_of_day_s` (seconds after
    midnight UTC); `reactions()` is what to put in `CsmsConfig.reactions`."""

    __slots__ = (
        "_day_of",
        "_request_ids",
        "_share_below",
        "log_type",
        "remote_location",
        "requests_sent",
        "statuses",
        "time_of_day_s",
    )

    def __init__(
        self, time_of_day_s: float, share: float, log_type: str, remote_location: str
    ) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share must be in [0, 1], got {share}")
        self.time_of_day_s = time_of_day_s
        self.log_type = log_type
        self.remote_location = remote_location
        self._share_below = int(share * 2**32)
        self._request_ids = itertools.count(1)
        #: The collection day each chosen station was last asked in (or first heard in).
        self._day_of: dict[str, int] = {}
        #: GetLog requests the stations accepted.
        self.requests_sent = 0
        #: LogStatusNotification statuses received, by status.
        self.statuses: Counter[str] = Counter()

    def chosen(self, station_id: str) -> bool:
        return zlib.crc32(f"logs/{station_id}".encode()) < self._share_below

    def reactions(self) -> dict[str, Reaction]:
        return {"Heartbeat": self._heartbeat, "LogStatusNotification": self._log_status}

    async def _heartbeat(
        self, csms: Csms, station_id: str, request: Mapping[str, Any], response: Mapping[str, Any]
    ) -> None:
        if not self.chosen(station_id):
            return
        day = int((epoch_s(str(response["currentTime"])) - self.time_of_day_s) // _DAY_S)
        last = self._day_of.get(station_id)
        self._day_of[station_id] = day
        if last is None or last == day:
            return  # first heard, or already asked, in this collection day
        answer = await csms.call_quietly(
            station_id,
            "GetLog",
            {
                "logType": self.log_type,
                "requestId": next(self._request_ids),
                "log": {"remoteLocation": f"{self.remote_location.rstrip('/')}/{station_id}"},
            },
        )
        if answer is not None and answer["status"] != "Rejected":
            self.requests_sent += 1

    async def _log_status(
        self, csms: Csms, station_id: str, request: Mapping[str, Any], response: Mapping[str, Any]
    ) -> None:
        self.statuses[str(request["status"])] += 1
