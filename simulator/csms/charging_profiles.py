"""What the embedded CSMS installs on every station after its boot: a TxDefaultProfile (K01).

A CSMS that manages a site's load over the day gives each station a default for the
transactions it has not steered otherwise: for instance a lower cap in the evening peak.  After
each Accepted BootNotification it sends one SetChargingProfile for the whole station (evseId 0):
a Recurring Daily TxDefaultProfile whose periods start at times of day (UTC), from a fixed
midnight, so every day of a run repeats it.  The same profile id each time, so a station that
rebooted gets the profile replaced, not a second one.

A refusal, a missing answer or a station gone is counted in `CsmsStatistics.pushes`
(`tx_default_profile_set`, `tx_default_profile_failed`); nothing here raises into the
connection that booted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .smart_charging import Reaction

if TYPE_CHECKING:
    from .csms import Csms

__all__ = ["TxDefaultProfilePush", "tx_default_profile_reactions"]

_log = logging.getLogger(__name__)

#: The startSchedule of the daily recurrence: any past midnight UTC serves.
_MIDNIGHT = "2024-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class TxDefaultProfilePush:
    """A daily TxDefaultProfile: (second of the day UTC, limit W) periods, ascending."""

    periods: Sequence[tuple[int, float]]
    profile_id: int = 900
    stack_level: int = 0

    def __post_init__(self) -> None:
        starts = [start for start, _ in self.periods]
        if not starts or starts != sorted(set(starts)) or starts[0] < 0 or starts[-1] >= 86_400:
            raise ValueError(f"periods must ascend within one day (0..86399 s), got {starts}")

    def request(self) -> dict[str, Any]:
        """The SetChargingProfile request.  A day that does not begin with a period begins
        with the last one of the day before, which runs on past midnight."""
        periods = [
            {"startPeriod": start, "limit": float(limit_w)} for start, limit_w in self.periods
        ]
        if periods[0]["startPeriod"] != 0:
            periods.insert(0, {"startPeriod": 0, "limit": periods[-1]["limit"]})
        return {
            "evseId": 0,
            "chargingProfile": {
                "id": self.profile_id,
                "stackLevel": self.stack_level,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Recurring",
                "recurrencyKind": "Daily",
                "chargingSchedule": [
                    {
                        "id": 1,
                        "startSchedule": _MIDNIGHT,
                        "duration": 86_400,
                        "chargingRateUnit": "W",
                        "chargingSchedulePeriod": periods,
                    }
                ],
            },
        }


def tx_default_profile_reactions(push: TxDefaultProfilePush | None) -> dict[str, Reaction]:
    """The reaction to install in `CsmsConfig.reactions`: the profile after each Accepted
    BootNotification, or none without a profile (a boot then costs nothing more)."""
    if push is None:
        return {}
    request = push.request()

    async def install_after_boot(
        csms: Csms, station_id: str, boot: Mapping[str, Any], response: Mapping[str, Any]
    ) -> None:
        if response.get("status") != "Accepted":
            return
        try:
            answer = await csms.call_quietly(station_id, "SetChargingProfile", request)
        except Exception as exc:  # a request the station's schema refuses, a bug
            csms.count_push("tx_default_profile_failed")
            _log.warning("embedded CSMS: the TxDefaultProfile for %s failed: %r", station_id, exc)
            return
        if answer is not None and answer.get("status") == "Accepted":
            csms.count_push("tx_default_profile_set")
            return
        csms.count_push("tx_default_profile_failed")
        _log.debug("embedded CSMS: %s refused the TxDefaultProfile: %r", station_id, answer)

    return {"BootNotification": install_after_boot}
