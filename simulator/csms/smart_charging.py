"""What the embedded CSMS does on its own initiative: smart charging and V2X profiles.

A real CSMS does not only answer; it also steers.  With `tx_limit_w` the embedded CSMS sends a
TxProfile capping each new transaction, and with `v2x_operation_mode` it answers a
bidirectional EV's charging needs (NotifyEVChargingNeeds with an `_BPT` transfer mode) by
sending a TxProfile in that V2X mode: a fixed CentralSetpoint, or a LocalFrequency curve that
charges at half power within 20 mHz of nominal, falls linearly to full discharge at 49.8 Hz
(59.8 Hz) and rises to full charge at 50.2 Hz (60.2 Hz).  Each reaction runs after the CSMS
has answered the message that caused it, as on a real CSMS.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .csms import Csms

__all__ = ["Reaction", "smart_charging_reactions"]

#: What to do after answering one message: (csms, station id, request, response).
Reaction = Callable[["Csms", str, Mapping[str, Any], Mapping[str, Any]], Awaitable[None]]

_profile_ids = itertools.count(1000)


def _tx_profile(
    transaction_id: str | None, period: dict[str, Any], stack_level: int
) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "id": next(_profile_ids),
        "stackLevel": stack_level,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": [
            {"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": [period]}
        ],
    }
    if transaction_id is not None:
        profile["transactionId"] = transaction_id
    return profile


def smart_charging_reactions(
    *,
    tx_limit_w: float | None,
    v2x_operation_mode: str | None,
    v2x_setpoint_w: float,
    v2x_max_power_w: float,
    nominal_hz: float = 50.0,
) -> dict[str, Reaction]:
    """The reactions to install in `CsmsConfig.reactions` for these settings."""
    reactions: dict[str, Reaction] = {}
    if tx_limit_w is not None:

        async def limit_new_transaction(
            csms: Csms, station_id: str, request: Mapping[str, Any], response: Mapping[str, Any]
        ) -> None:
            if request["eventType"] != "Started" or "evse" not in request:
                return
            profile = _tx_profile(
                request["transactionInfo"]["transactionId"],
                {"startPeriod": 0, "limit": tx_limit_w},
                stack_level=0,
            )
            await csms.call_quietly(
                station_id,
                "SetChargingProfile",
                {"evseId": request["evse"]["id"], "chargingProfile": profile},
            )

        reactions["TransactionEvent"] = limit_new_transaction
    if v2x_operation_mode is not None:

        async def steer_bidirectional_ev(
            csms: Csms, station_id: str, request: Mapping[str, Any], response: Mapping[str, Any]
        ) -> None:
            mode = request["chargingNeeds"].get("requestedEnergyTransfer", "")
            if not str(mode).endswith("_BPT"):
                return
            period: dict[str, Any] = {"startPeriod": 0, "operationMode": v2x_operation_mode}
            if v2x_operation_mode == "CentralSetpoint":
                period["setpoint"] = v2x_setpoint_w
            else:
                baseline_w = v2x_max_power_w / 2
                period["v2xFreqWattCurve"] = [
                    {"frequency": nominal_hz - 0.2, "power": -v2x_max_power_w},
                    {"frequency": nominal_hz - 0.02, "power": baseline_w},
                    {"frequency": nominal_hz + 0.02, "power": baseline_w},
                    {"frequency": nominal_hz + 0.2, "power": v2x_max_power_w},
                ]
            profile = _tx_profile(None, period, stack_level=1)
            await csms.call_quietly(
                station_id,
                "SetChargingProfile",
                {"evseId": request["evseId"], "chargingProfile": profile},
            )

        reactions["NotifyEVChargingNeeds"] = steer_bidirectional_ev
    return reactions
