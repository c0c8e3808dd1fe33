"""A transaction limit (E16) holds exactly when the site's load balancing changes the power.

Two EVSEs share an 11 kW connection: while both charge, each EV gets half of it; when one EV
stops drawing (its own limit reached, full, gone), the other's power doubles.  Its visit task
had planned to reach its maxEnergy at the lower power, so the site must wake it to plan again,
or the energy overshoots the limit until its next wake (no periodic meter values here to wake
it earlier).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.station import EvseConfig, StationConfig
from tests.helpers import STATION_ID, busy_site, station_on_memory_link

MAX_ENERGY_WH = 2500
TRANSACTIONS = 6


def _limit_every_transaction(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    if payload["eventType"] != "Started":
        return {}
    return {"transactionLimit": {"maxEnergy": MAX_ENERGY_WH}}


def _ended_count(csms: Csms) -> int:
    return sum(
        1
        for action, payload in csms.station(STATION_ID).messages
        if action == "TransactionEvent" and payload["eventType"] == "Ended"
    )


def _register_wh(event: Mapping[str, Any]) -> float:
    return next(
        float(sampled["value"])
        for meter_value in event["meterValue"]
        for sampled in meter_value["sampledValue"]
        if sampled.get("measurand", "Energy.Active.Import.Register")
        == "Energy.Active.Import.Register"
    )


async def test_max_energy_holds_when_a_neighbour_stops_and_the_power_rises(
    autojump_clock: MockClock,
) -> None:
    scenario = busy_site(dwell_s=1800, soc_start=0.2, target_soc=0.5, arrivals_per_evse_per_day=96)
    scenario["sites"][0]["capacity_kw"] = 11
    config = StationConfig(
        ocpp_version="2.1", meter_interval_s=0, evses=(EvseConfig(), EvseConfig())
    )
    csms_config = CsmsConfig(response_overrides={"TransactionEvent": _limit_every_transaction})
    async with station_on_memory_link(config, csms_config, scenario) as (_, csms):
        with trio.fail_after(48 * 3600):
            for ended in range(1, TRANSACTIONS + 1):
                await csms.wait_for_message(
                    STATION_ID,
                    "TransactionEvent",
                    lambda p, n=ended: p["eventType"] == "Ended" and _ended_count(csms) >= n,
                )
    events: dict[str, list[Mapping[str, Any]]] = {}
    for action, payload in csms.station(STATION_ID).messages:
        if action == "TransactionEvent":
            events.setdefault(payload["transactionInfo"]["transactionId"], []).append(payload)
    reached = [
        _register_wh(tx[-1]) - _register_wh(tx[0])
        for tx in events.values()
        if tx[-1]["eventType"] == "Ended"
        and any(e["triggerReason"] == "EnergyLimitReached" for e in tx)
    ]
    assert reached, "no transaction reached its limit: the scenario no longer tests anything"
    assert reached == [pytest.approx(MAX_ENERGY_WH, abs=0.05)] * len(reached)
