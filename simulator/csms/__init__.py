"""The embedded CSMS: a small, real OCPP 2.1/2.0.1 CSMS for the quickstart and the tests.

`Csms` serves stations over WebSocket (`serve`) or over in-memory channels (`attach`), answers
every station-initiated action with a schema-valid response (`responses.py`), records what each
station did (`StationState`), and drives stations with CSMS-initiated CALLs (`call`).  What it
answers is set by `CsmsConfig` and its boot policies; what it does on its own (smart charging,
V2X profiles, the local list and display message pushed after a boot, priority charging, a
Dynamic profile) by `CsmsConfig.reactions`, on its own clock (web payments, dynamic schedule
updates, AFRR signals) by `CsmsConfig.timers`, and what it does for the world's drivers who
book ahead (ReserveNow) by `DriverReservations`.
"""

from .afrr import AfrrSignals
from .battery_swaps import DriverSwaps
from .boot_pushes import (
    DisplayMessagePush,
    LocalListPush,
    boot_push_reactions,
    combine_reactions,
)
from .csms import Csms, CsmsStatistics, StationNotConnected, UnknownStation
from .dynamic_schedules import DailyCurve, DynamicSchedule
from .firmware_rollout import FirmwareRollout
from .policy import (
    AcceptAfter,
    AlwaysAnswer,
    BootDecision,
    BootPolicy,
    BootStatus,
    CsmsConfig,
    Timer,
)
from .priority_charging import PriorityCharging
from .reservations import DriverReservations
from .smart_charging import Reaction, smart_charging_reactions
from .state import ReceivedMessage, StationState, TransactionRecord
from .web_payments import WebPayments

__all__ = [
    "AcceptAfter",
    "AfrrSignals",
    "AlwaysAnswer",
    "BootDecision",
    "BootPolicy",
    "BootStatus",
    "Csms",
    "CsmsConfig",
    "CsmsStatistics",
    "DailyCurve",
    "DisplayMessagePush",
    "DriverReservations",
    "DriverSwaps",
    "DynamicSchedule",
    "LocalListPush",
    "FirmwareRollout",
    "PriorityCharging",
    "Reaction",
    "ReceivedMessage",
    "StationNotConnected",
    "StationState",
    "Timer",
    "TransactionRecord",
    "UnknownStation",
    "WebPayments",
    "boot_push_reactions",
    "combine_reactions",
    "smart_charging_reactions",
]
