"""What the embedded CSMS does on its own initiative: smart charging and V2X profiles.

A real CSMS does not only answer; it also steers.  With `tx_limit_w` the embedded CSMS sends a
TxProfile capping each new transaction, and with `v2x_operation_mode` it steers a
bidirectional EV's charging needs (NotifyEVChargingNeeds with an `_BPT` transfer mode): it
answers them Accepted (`CsmsConfig.steers_bidirectional_evs`: a profile will come), allows the
transaction the EV's bidirectional mode (NotifyAllowedEnergyTransfer, Q01: without it the
station charges only) and sends a TxProfile for that transaction in the V2X mode: a fixed
CentralSetpoint; a LocalFrequency curve that charges at half power within 20 mHz of nominal,
falls linearly to full discharge at 49.8 Hz (59.8 Hz) and rises to full charge at 50.2 Hz
(60.2 Hz); or CentralFrequency, half power (v2xBaseline) until the CSMS's AFRR signals move it
along a v2xSignalWattCurve (`afrr.py`), which then hears of each such profile accepted.  A
TxProfile belongs to a transaction (K01.FR.03: the CSMS names it), which the CSMS finds from
the needs' EVSE in what it recorded of the station's TransactionEvents; with none
running there, it answers NoChargingProfile and sends nothing.  Each reaction runs after the
CSMS has answered the message that caused it, as on a real CSMS.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .reactions import ON_STARTED, Selective
from .responses import running_transaction_id, wants_v2x

if TYPE_CHECKING:
    from .csms import Csms

__all__ = [
    "FULL_ACTIVATION",
    "CentralFrequencyListener",
    "Reaction",
    "signal_watt_curve",
    "smart_charging_reactions",
]

#: What to do after answering one message: (csms, station id, request, response).
Reaction = Callable[["Csms", str, Mapping[str, Any], Mapping[str, Any]], Awaitable[None]]


_profile_ids = itertools.count(1000)


class CentralFrequencyListener(Protocol):
    """Who hears of each CentralFrequency TxProfile a station accepted (`afrr.AfrrSignals`)."""

    async def profile_installed(self, csms: Csms, station_id: str, transaction_id: str) -> None: ...


#: The AFRR signal level of full activation; the CentralFrequency curve is flat beyond it.
FULL_ACTIVATION = 100


def signal_watt_curve(max_power_w: float) -> list[dict[str, Any]]:
    """The v2xSignalWattCurve of the CSMS's CentralFrequency profile: full charge at signal
    -100 (too much power in the grid), half at 0, full discharge at +100 (too little)."""
    return [
        {"signal": -FULL_ACTIVATION, "power": max_power_w},
        {"signal": 0, "power": max_power_w / 2},
        {"signal": FULL_ACTIVATION, "power": -max_power_w},
    ]


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
    afrr: CentralFrequencyListener | None = None,
) -> dict[str, Reaction]:
    """The reactions to install in `CsmsConfig.reactions` for these settings; `afrr` hears
    of each CentralFrequency profile a station accepted."""
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

        reactions["TransactionEvent"] = Selective(ON_STARTED, limit_new_transaction)
    if v2x_operation_mode is not None:

        async def steer_bidirectional_ev(
            csms: Csms, station_id: str, request: Mapping[str, Any], response: Mapping[str, Any]
        ) -> None:
            if not wants_v2x(request) or response.get("status") != "Accepted":
                return
            evse_id = request["evseId"]
            transaction_id = running_transaction_id(csms.station(station_id), evse_id)
            if transaction_id is None:
                return
            allowed = await csms.call_quietly(
                station_id,
                "NotifyAllowedEnergyTransfer",
                {
                    "transactionId": transaction_id,
                    "allowedEnergyTransfer": [request["chargingNeeds"]["requestedEnergyTransfer"]],
                },
            )
            if allowed is None or allowed.get("status") != "Accepted":
                return
            period: dict[str, Any] = {"startPeriod": 0, "operationMode": v2x_operation_mode}
            if v2x_operation_mode == "CentralSetpoint":
                period["setpoint"] = v2x_setpoint_w
            elif v2x_operation_mode == "CentralFrequency":
                period["v2xBaseline"] = v2x_max_power_w / 2
                period["v2xSignalWattCurve"] = signal_watt_curve(v2x_max_power_w)
            else:
                baseline_w = v2x_max_power_w / 2
                period["v2xFreqWattCurve"] = [
                    {"frequency": nominal_hz - 0.2, "power": -v2x_max_power_w},
                    {"frequency": nominal_hz - 0.02, "power": baseline_w},
                    {"frequency": nominal_hz + 0.02, "power": baseline_w},
                    {"frequency": nominal_hz + 0.2, "power": v2x_max_power_w},
                ]
            profile = _tx_profile(transaction_id, period, stack_level=1)
            answer = await csms.call_quietly(
                station_id,
                "SetChargingProfile",
                {"evseId": evse_id, "chargingProfile": profile},
            )
            accepted = answer is not None and answer.get("status") == "Accepted"
            if accepted and afrr is not None and v2x_operation_mode == "CentralFrequency":
                await afrr.profile_installed(csms, station_id, transaction_id)

        reactions["NotifyEVChargingNeeds"] = steer_bidirectional_ev
    return reactions
