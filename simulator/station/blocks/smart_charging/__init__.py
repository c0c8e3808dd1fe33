"""Block K, smart charging: the charging profiles a station holds, and the limit they set now.

The CSMS installs profiles with SetChargingProfile (K01), or a TxProfile with the
RequestStartTransaction that begins its transaction (K05: block F checks it against
`charging_profile_refusal` before accepting, and hands it over as `TxProfileGiven` once the
transaction runs), removes them with ClearChargingProfile (K10) and reads them back with
GetChargingProfiles (K09, answered by ReportChargingProfiles) and asks what they add up to with
GetCompositeSchedule (K08: `composite`).  What matters to the EV is
`limit.active_limit(evse)`: the limit, V2X setpoint and operation mode in force at this simulated
second, and when that will next change, so the EVSE's session task can sleep until exactly
then.

The block is a package: `profiles` holds the store, `composite` merges the profiles over time
(pure computation), `limit` turns that into what it asks of an EVSE now, `handlers` answers
the CSMS.
"""

from __future__ import annotations

from ...core import Block, TransactionEnded, TxProfileGiven
from .handlers import (
    clear_charging_profile,
    clear_transaction_profiles,
    get_charging_profiles,
    get_composite_schedule,
    install_given_profile,
    schedule_refusal,
    set_charging_profile,
    variables,
)
from .limit import active_limit
from .profiles import ChargingProfiles

__all__ = ["BLOCK", "ChargingProfiles"]

BLOCK: Block[ChargingProfiles] = Block(
    letter="K",
    name="smart_charging",
    handlers={
        "SetChargingProfile": set_charging_profile,
        "ClearChargingProfile": clear_charging_profile,
        "GetChargingProfiles": get_charging_profiles,
        "GetCompositeSchedule": get_composite_schedule,
    },
    follow_ups={"GetChargingProfiles": ("ReportChargingProfiles",)},
    variables=variables,
    reactions={
        TransactionEnded: clear_transaction_profiles,
        TxProfileGiven: install_given_profile,
    },
    new_state=ChargingProfiles,
    charging_limit=active_limit,
    charging_profile_refusal=schedule_refusal,
)
