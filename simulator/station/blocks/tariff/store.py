"""Block I's per-station state: the default tariffs, and the cost meters of the transactions
that run under a tariff."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ....clock import Alarm
from ....tariffs import CostMeter
from ...core import Block

if TYPE_CHECKING:
    from ...core import StationCore
    from ...evse import Evse, Transaction

__all__ = ["STATE_KEY", "Metered", "Tariffs", "peek_tariffs", "tariffs_of", "valid_from_s"]


@dataclass(slots=True)
class Metered:
    """A running transaction with a tariff: its meter and the timer of its next cost event."""

    evse: Evse
    transaction: Transaction
    meter: CostMeter
    #: True once ChangeTransactionTariff gave the transaction a driver tariff (I11).
    driver_tariff: bool = False
    #: Where the meter's task sleeps until the next boundary or running-cost report.
    alarm: Alarm = field(default_factory=Alarm, repr=False)
    #: Epoch second of the next time-bound price boundary the task advances the meter at.
    boundary_s: float = math.inf
    #: Epoch second of the next RunningCost event (TariffCostCtrlr.Interval[Cost]).
    report_s: float = math.inf
    ended: bool = False
    #: The maxCost the running cost was counted as reaching (RunStats.cost_limits_reached).
    limit_counted: float | None = None


@dataclass(slots=True)
class Tariffs:
    """Default tariffs by the EVSE they were set for (0: the whole station), each list in
    validFrom order; the metered transactions by id, and the last one that ended on each EVSE."""

    defaults: dict[int, list[Mapping[str, Any]]] = field(default_factory=dict)
    metered: dict[str, Metered] = field(default_factory=dict)
    #: (transaction id, final cost including tax) of the last metered transaction that ended
    #: on each EVSE, by EVSE id.
    final_costs: dict[int, tuple[str, float]] = field(default_factory=dict)

    def default_for(self, evse_id: int, now_s: float) -> Mapping[str, Any] | None:
        """The default tariff in force on an EVSE at epoch second `now_s`: its own, else the
        station's; of those, the one with the latest validFrom not after now."""
        for target in (evse_id, 0):
            found = None
            for tariff in self.defaults.get(target, ()):
                if valid_from_s(tariff) <= now_s:
                    found = tariff
            if found is not None:
                return found
        return None

    def target_of(self, tariff_id: str) -> int | None:
        for target, tariffs in self.defaults.items():
            if any(t["tariffId"] == tariff_id for t in tariffs):
                return target
        return None


def valid_from_s(tariff: Mapping[str, Any]) -> float:
    """A tariff's validFrom in epoch seconds; -inf without one."""
    text = tariff.get("validFrom")
    if text is None:
        return -math.inf
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


#: The key of the block's per-station state: the same name as the assembled block.
STATE_KEY: Block[Tariffs] = Block(letter="I", name="tariff", new_state=Tariffs)


def tariffs_of(station: StationCore) -> Tariffs:
    """The station's tariffs, made on first use."""
    return station.block_state(STATE_KEY)


def peek_tariffs(station: StationCore) -> Tariffs | None:
    """The station's tariffs if it ever held any (reading creates nothing; this runs for every
    transaction event of a 2.1 station)."""
    return station.peek_block_state(STATE_KEY)
