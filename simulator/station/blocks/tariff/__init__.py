"""Block I, tariff and cost (OCPP 2.1): default and driver tariffs, and the local running cost.

The CSMS sets default tariffs per EVSE or for the whole station (SetDefaultTariff, I07), reads
them back (GetTariffs, I08), removes them (ClearTariffs, I09) and gives a running transaction a
driver tariff (ChangeTransactionTariff, I11); CostUpdated (I04) tells the station the total to
show the driver, which the display shows (the `CostToShow` event, block O; a metered
transaction's own running cost the display reads through `cost_details`).  Times of day, days
of the week and dates of the tariffs' conditions are read on the station's wall clock
(`StationConfig.time_zone`).  A transaction that starts while a default tariff is in force on
its EVSE is metered: `simulator.tariffs.CostMeter` keeps its usage in periods priced alike,
advanced at each of its TransactionEvents and at the boundaries the tariff's conditions set
(times of day, midnight, duration thresholds, energy steps at the present power), which one
timer per metered transaction meets exactly.  Its Updated and Ended events carry costDetails
(I12 running cost, I07 final cost), at TariffCostCtrlr.Interval[Cost] as RunningCost events
too; a transaction without a tariff costs nothing more.  `transaction_cost` and
`cost_reached_s` let the EV driver enforce a maxCost transaction limit (E16) at the exact
moment it is reached.

The block is a package: `store` holds the tariffs and meters, `handlers` answers the CSMS and
provides the hooks.
"""

from __future__ import annotations

from ...core import Block, TransactionEnded, TransactionStarted
from .handlers import (
    change_transaction_tariff,
    clear_tariffs,
    cost_details,
    cost_reached_s,
    cost_updated,
    get_tariffs,
    meter_ended,
    meter_started,
    set_default_tariff,
    transaction_cost,
    variables,
)
from .store import Tariffs

__all__ = ["BLOCK", "Tariffs"]

BLOCK: Block[Tariffs] = Block(
    letter="I",
    name="tariff",
    handlers={
        "SetDefaultTariff": set_default_tariff,
        "GetTariffs": get_tariffs,
        "ClearTariffs": clear_tariffs,
        "ChangeTransactionTariff": change_transaction_tariff,
        "CostUpdated": cost_updated,
    },
    follow_ups={"ChangeTransactionTariff": ("TransactionEvent",)},
    variables=variables,
    reactions={TransactionStarted: meter_started, TransactionEnded: meter_ended},
    new_state=Tariffs,
    needs_state=True,
    transaction_cost=transaction_cost,
    cost_details=cost_details,
    cost_reached_s=cost_reached_s,
)
