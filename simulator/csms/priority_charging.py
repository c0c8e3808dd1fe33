"""Priority charging driven by the embedded CSMS (`embedded_csms.priority_charging`, K21-K22).

An operator may sell a faster charge: a transaction with priority charging charges by its
EVSE's PriorityCharging profile instead of its TxProfile or TxDefaultProfile.  After each
Accepted BootNotification of an OCPP 2.1 station the CSMS installs that profile for the whole
station (evseId 0): Relative, so it runs from each transaction's start, without a duration, one
ChargingOnly period at `limit_w`.  The same id each boot replaces it.  Then:

- K21: for `share` of the transactions, picked by a hash of the transaction id so a run is
  reproducible, the CSMS switches priority charging on as the transaction starts (its Started
  TransactionEvent), with UsePriorityCharging -- as for drivers who chose it in the operator's
  app.  The station charges the transaction by the profile from then on.
- K22: a driver who presses the station's priority button makes the station switch on its own
  and tell the CSMS (NotifyPriorityCharging, activated).  The answer has no status; what the
  CSMS thinks of it is what it does next: with `driver_requests: grant` nothing, the station
  goes on charging by the profile; with `refuse` -- a driver without the right to it -- the
  CSMS switches it off again (UsePriorityCharging, activate false).

Counted in `CsmsStatistics.pushes`: `priority_profile_set`, `priority_profile_failed`,
`priority_charging_used` and `priority_charging_refused` (the station's answer to a switch-on,
anything but Accepted, or none), `priority_request_granted`, `priority_request_revoked` and
`priority_request_revoke_failed`.  OCPP 2.0.1 has no priority charging: a 2.0.1 station is sent
nothing.  Nothing here raises into a connection.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .reactions import ON_STARTED, Selective
from .smart_charging import Reaction

if TYPE_CHECKING:
    from .csms import Csms

__all__ = ["PriorityCharging"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PriorityCharging:
    """The PriorityCharging profile, and who charges by it."""

    limit_w: float
    profile_id: int = 910
    #: Share (0..1) of the transactions the CSMS switches to priority charging as they start.
    share: float = 0.0
    driver_requests: Literal["grant", "refuse"] = "grant"

    def __post_init__(self) -> None:
        if not self.limit_w > 0:
            raise ValueError(f"limit_w must be > 0, got {self.limit_w}")
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"share must be in [0, 1], got {self.share}")

    def request(self) -> dict[str, Any]:
        """The SetChargingProfile request that installs the profile."""
        return {
            "evseId": 0,
            "chargingProfile": {
                "id": self.profile_id,
                "stackLevel": 0,
                "chargingProfilePurpose": "PriorityCharging",
                "chargingProfileKind": "Relative",
                "chargingSchedule": [
                    {
                        "id": 1,
                        "chargingRateUnit": "W",
                        "chargingSchedulePeriod": [
                            {"startPeriod": 0, "limit": float(self.limit_w)}
                        ],
                    }
                ],
            },
        }

    def picks(self, transaction_id: str) -> bool:
        """Whether the CSMS switches this transaction to priority charging as it starts."""
        return zlib.crc32(f"priority/{transaction_id}".encode()) < self.share * 2**32

    def reactions(self) -> dict[str, Reaction]:
        """The reactions for `CsmsConfig.reactions`: the profile after each boot, the switch
        at each picked transaction's start, and the answer to a driver's button."""
        table: dict[str, Reaction] = {
            "BootNotification": self._install_after_boot,
            "NotifyPriorityCharging": self._driver_pressed,
        }
        if self.share > 0:
            table["TransactionEvent"] = Selective(ON_STARTED, self._use_at_start)
        return table

    async def _install_after_boot(
        self, csms: Csms, station_id: str, request: Mapping[str, Any], answer: Mapping[str, Any]
    ) -> None:
        if answer.get("status") != "Accepted" or csms.station(station_id).version != "2.1":
            return
        try:
            result = await csms.call_quietly(station_id, "SetChargingProfile", self.request())
        except Exception as exc:  # a request the station's schema refuses, a bug
            result = None
            _log.warning("embedded CSMS: the PriorityCharging profile for %s: %r", station_id, exc)
        accepted = result is not None and result.get("status") == "Accepted"
        csms.count_push("priority_profile_set" if accepted else "priority_profile_failed")
        if not accepted:
            _log.debug("embedded CSMS: %s refused PriorityCharging: %r", station_id, result)

    async def _use_at_start(
        self, csms: Csms, station_id: str, request: Mapping[str, Any], answer: Mapping[str, Any]
    ) -> None:
        if request["eventType"] != "Started" or csms.station(station_id).version != "2.1":
            return
        transaction_id = str(request["transactionInfo"]["transactionId"])
        if not self.picks(transaction_id):
            return
        result = await self._use(csms, station_id, transaction_id, activate=True)
        accepted = result is not None and result.get("status") == "Accepted"
        csms.count_push("priority_charging_used" if accepted else "priority_charging_refused")

    async def _driver_pressed(
        self, csms: Csms, station_id: str, request: Mapping[str, Any], answer: Mapping[str, Any]
    ) -> None:
        if not request["activated"]:
            return
        if self.driver_requests == "grant":
            csms.count_push("priority_request_granted")
            return
        result = await self._use(csms, station_id, str(request["transactionId"]), activate=False)
        accepted = result is not None and result.get("status") == "Accepted"
        outcome = "revoked" if accepted else "revoke_failed"
        csms.count_push(f"priority_request_{outcome}")

    async def _use(
        self, csms: Csms, station_id: str, transaction_id: str, *, activate: bool
    ) -> Mapping[str, Any] | None:
        try:
            return await csms.call_quietly(
                station_id,
                "UsePriorityCharging",
                {"transactionId": transaction_id, "activate": activate},
            )
        except Exception as exc:
            _log.warning("embedded CSMS: UsePriorityCharging to %s failed: %r", station_id, exc)
            return None
