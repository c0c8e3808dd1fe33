"""The embedded CSMS's reactions run in a task of their own only for the requests they want.

A reaction to the last TransactionEvent of a transaction (the final cost check, the AFRR
bookkeeping) used to cost every event of the transaction a task that returned at once; on a
priced depot day that was a task per meter value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import trio
from trio.testing import MockClock

from fleetsim.simulator.csms import Csms
from fleetsim.simulator.csms.boot_pushes import combine_reactions
from fleetsim.simulator.csms.processes import csms_config_for
from fleetsim.simulator.csms.reactions import ON_ENDED, ON_STARTED, Selective, wanted_by
from tests.helpers import STATION_ID, one_station_scenario, station_on_memory_link
from tests.station.steps import REMOTE_DRIVERS, running_transaction, updated_events

PRICED: dict[str, Any] = {
    **REMOTE_DRIVERS,
    "embedded_csms": {"default_tariff": {"currency": "EUR", "price_kwh": 0.3}},
}


class _SpawnCounter(trio.abc.Instrument):
    def __init__(self) -> None:
        self.spawned = 0

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.spawned += 1


async def test_meter_values_under_a_tariff_start_no_task_at_the_csms(
    autojump_clock: MockClock,
) -> None:
    config = dataclasses.replace(
        csms_config_for(one_station_scenario(PRICED)), record_messages=True
    )
    assert isinstance(config.reactions["TransactionEvent"], Selective)
    async with station_on_memory_link(csms_config=config, scenario=PRICED) as (_, csms):
        with trio.fail_after(12 * 3600):
            await running_transaction(csms, charging=True)
            counter = _SpawnCounter()
            trio.lowlevel.add_instrument(counter)
            try:
                before = updated_events(csms)
                for _ in range(5):
                    await csms.wait_for_message(
                        STATION_ID,
                        "TransactionEvent",
                        lambda p: p["eventType"] == "Updated",
                        since=csms.station(STATION_ID).messages_received,
                    )
                updates = updated_events(csms) - before
            finally:
                trio.lowlevel.remove_instrument(counter)
    # Updated events, each answered: none of them started a task (the station's own timers
    # are long-lived tasks already running).
    assert updates >= 5
    assert counter.spawned == 0


def test_combined_reactions_want_what_either_wants_and_run_only_those() -> None:
    ran: list[str] = []

    def reaction(name: str) -> Any:
        async def react(
            csms: Csms, station_id: str, request: Mapping[str, Any], response: Mapping[str, Any]
        ) -> None:
            ran.append(name)

        return react

    both = combine_reactions(
        {"TransactionEvent": Selective(ON_STARTED, reaction("start"))},
        {"TransactionEvent": Selective(ON_ENDED, reaction("end"))},
    )["TransactionEvent"]
    updated, ended = {"eventType": "Updated"}, {"eventType": "Ended"}
    assert not wanted_by(both, updated)
    assert wanted_by(both, ended)
    trio.run(both, None, STATION_ID, ended, {})
    assert ran == ["end"]
    # With a reaction that wants everything, the combination wants everything too.
    everything = combine_reactions(
        {"TransactionEvent": Selective(ON_ENDED, reaction("end"))},
        {"TransactionEvent": reaction("all")},
    )["TransactionEvent"]
    assert wanted_by(everything, updated)
    trio.run(everything, None, STATION_ID, updated, {})
    assert ran == ["end", "all"]
