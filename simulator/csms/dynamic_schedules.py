"""A Dynamic charging profile the embedded CSMS keeps up to date (`embedded_csms.dynamic_profile`,
K28-K29).

A CSMS that follows a quantity that changes all day -- the price of energy, the headroom of a
grid connection -- need not send a new schedule each time: it installs one Dynamic profile whose
single period it then updates.  After each Accepted BootNotification of an OCPP 2.1 station the
CSMS installs a TxDefaultProfile for the whole station (evseId 0) of chargingProfileKind
Dynamic, with `dynUpdateInterval` when `pull_interval_s` is set, whose limit is the rule's
value at that moment.  The rule is a daily limit curve: (time of day UTC, limit W) points, the
limit at any moment linear between the points around it and wrapping past midnight (from the
day's last point to the next day's first); one point is a constant limit.

Every `update_interval_s` simulated seconds one timer for the whole CSMS sends each station
that holds the profile UpdateDynamicSchedule with the limit of that moment (K28), skipping a
station whose last values are the same.  A station that heard nothing for `dynUpdateInterval`
asks itself (PullDynamicScheduleUpdate, K29); the CSMS answers with the rule's values at that
moment (`CsmsConfig.dynamic_values`, answered in `responses.py`).

Counted in `CsmsStatistics.pushes`: `dynamic_profile_set`, `dynamic_profile_failed`,
`dynamic_schedule_updated`, `dynamic_schedule_update_failed`, `dynamic_schedule_pulled`.  A
2.0.1 station has no Dynamic profiles and is sent nothing.  Nothing here raises into a
connection or ends the timer.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import trio

from .smart_charging import Reaction

if TYPE_CHECKING:
    from .csms import Csms

__all__ = ["DailyCurve", "DynamicSchedule"]

_log = logging.getLogger(__name__)
_DAY_S = 86_400
#: Stations updated at once by one tick of the timer.
_PARALLEL_UPDATES = 100


class DailyCurve:
    """A limit that follows the time of day: (second of the day UTC, limit W) points,
    ascending, linear between them and around midnight."""

    __slots__ = ("_limits", "_seconds")

    def __init__(self, points: Sequence[tuple[float, float]]) -> None:
        seconds = [float(second) for second, _ in points]
        if (
            not seconds
            or seconds != sorted(set(seconds))
            or seconds[0] < 0
            or seconds[-1] >= _DAY_S
        ):
            raise ValueError(f"the points' seconds must ascend within one day, got {seconds}")
        self._seconds = seconds
        self._limits = [float(limit) for _, limit in points]

    def limit_w(self, epoch_s: float) -> float:
        """The curve's limit at Unix time `epoch_s`."""
        seconds, limits = self._seconds, self._limits
        if len(seconds) == 1:
            return limits[0]
        second = epoch_s % _DAY_S
        index = bisect.bisect_right(seconds, second)
        if 0 < index < len(seconds):
            s0, s1 = seconds[index - 1], seconds[index]
            w0, w1 = limits[index - 1], limits[index]
        else:  # between the day's last point and the next day's first
            s0, w0 = seconds[-1], limits[-1]
            s1, w1 = seconds[0] + _DAY_S, limits[0]
            if second < s0:
                second += _DAY_S
        return w0 + (w1 - w0) * (second - s0) / (s1 - s0)


class DynamicSchedule:
    """The Dynamic TxDefaultProfile, its rule, the stations that hold it and its timer."""

    __slots__ = (
        "curve",
        "profile_id",
        "pull_interval_s",
        "stack_level",
        "stations",
        "update_interval_s",
    )

    def __init__(
        self,
        curve: DailyCurve,
        *,
        update_interval_s: float,
        pull_interval_s: int | None = None,
        profile_id: int = 920,
        stack_level: int = 1,
    ) -> None:
        if not update_interval_s > 0:
            raise ValueError(f"update_interval_s must be > 0, got {update_interval_s}")
        self.curve = curve
        self.update_interval_s = update_interval_s
        self.pull_interval_s = pull_interval_s
        self.profile_id = profile_id
        self.stack_level = stack_level
        #: The stations that accepted the profile since their last boot, by id.
        self.stations: set[str] = set()

    def values(self, epoch_s: float) -> dict[str, Any]:
        """The rule's values at `epoch_s`: a ChargingScheduleUpdateType (W, to 0.1 W)."""
        return {"limit": round(self.curve.limit_w(epoch_s), 1)}

    def request(self, epoch_s: float) -> dict[str, Any]:
        """The SetChargingProfile request that installs the profile at `epoch_s`."""
        profile: dict[str, Any] = {
            "id": self.profile_id,
            "stackLevel": self.stack_level,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Dynamic",
            "chargingSchedule": [
                {
                    "id": 1,
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, **self.values(epoch_s)}],
                }
            ],
        }
        if self.pull_interval_s is not None:
            profile["dynUpdateInterval"] = self.pull_interval_s
        return {"evseId": 0, "chargingProfile": profile}

    def reactions(self) -> dict[str, Reaction]:
        """The reactions for `CsmsConfig.reactions`: the profile after each boot, and the
        count of the stations' pulls."""
        return {
            "BootNotification": self._install_after_boot,
            "PullDynamicScheduleUpdate": self._pulled,
        }

    async def _install_after_boot(
        self, csms: Csms, station_id: str, request: Mapping[str, Any], answer: Mapping[str, Any]
    ) -> None:
        self.stations.discard(station_id)
        if answer.get("status") != "Accepted" or csms.station(station_id).version != "2.1":
            return
        try:
            result = await csms.call_quietly(
                station_id, "SetChargingProfile", self.request(csms.now())
            )
        except Exception as exc:  # a request the station's schema refuses, a bug
            result = None
            _log.warning("embedded CSMS: the Dynamic profile for %s failed: %r", station_id, exc)
        if result is not None and result.get("status") == "Accepted":
            self.stations.add(station_id)
            csms.count_push("dynamic_profile_set")
            return
        csms.count_push("dynamic_profile_failed")
        _log.debug("embedded CSMS: %s refused the Dynamic profile: %r", station_id, result)

    async def _pulled(
        self, csms: Csms, station_id: str, request: Mapping[str, Any], answer: Mapping[str, Any]
    ) -> None:
        if request["chargingProfileId"] == self.profile_id and answer.get("status") == "Accepted":
            csms.count_push("dynamic_schedule_pulled")

    async def timer(self, csms: Csms) -> None:
        """Every `update_interval_s`, the values of that moment to every station that holds
        the profile and has other values (a `CsmsConfig.timers` entry)."""
        limiter = trio.CapacityLimiter(_PARALLEL_UPDATES)
        while True:
            await csms.sleep_simulated(self.update_interval_s)
            values = self.values(csms.now())
            async with trio.open_nursery() as nursery:
                for station_id in sorted(self.stations):
                    if not csms.is_connected(station_id):
                        continue  # it pulls on its own when it is back, or boots and gets it
                    kept = (csms.station(station_id).dynamic_schedules or {}).get(self.profile_id)
                    if kept is not None and all(kept.get(k) == v for k, v in values.items()):
                        continue
                    nursery.start_soon(self._update, csms, station_id, values, limiter)

    async def _update(
        self,
        csms: Csms,
        station_id: str,
        values: Mapping[str, Any],
        limiter: trio.CapacityLimiter,
    ) -> None:
        payload = {"chargingProfileId": self.profile_id, "scheduleUpdate": dict(values)}
        async with limiter:
            try:
                result = await csms.call_quietly(station_id, "UpdateDynamicSchedule", payload)
            except Exception as exc:
                result = None
                _log.warning("embedded CSMS: UpdateDynamicSchedule to %s: %r", station_id, exc)
        if result is not None and result.get("status") == "Accepted":
            csms.count_push("dynamic_schedule_updated")
            return
        csms.count_push("dynamic_schedule_update_failed")
        _log.debug("embedded CSMS: %s refused a dynamic schedule update: %r", station_id, result)
