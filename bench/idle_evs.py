"""10,000 plugged-in, idle EVs: what they cost while nothing happens.

Builds 5,000 stations with two EVSEs each on the embedded CSMS over in-memory links (trio's
MockClock: simulated time only), plugs an EV into every EVSE at the start -- already at its
target state of charge, so it idles in SuspendedEV with its transaction open -- and then lets
24 simulated hours pass.  Heartbeats are set to once a day and periodic meter values are off,
so the only work left would be per-EV polling, if there were any.  It prints the CPU time
and the trio and simpy wake-ups spent on the idle day, per run and as the median of the runs.

With --profiles the embedded CSMS installs a daily TxDefaultProfile of several periods on every
station after its boot (as `embedded_csms.tx_default_profile` does), so every EV is under a
profile: each EVSE then wakes at the profile's period boundaries only, and the idle day costs
a few wake-ups per EV per day more, nothing between them.

    python bench/idle_evs.py --evs 10000 --runs 3 [--profiles]
    python bench/idle_evs.py --stations 50 --runs 1 --profiles     # a smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import statistics
from contextlib import AbstractAsyncContextManager
from typing import Any

import trio
from trio.testing import MockClock

from fleetsim.ev_models import EvArrival, load_catalogue
from fleetsim.simulator.clock import SimClock
from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.csms.charging_profiles import (
    TxDefaultProfilePush,
    tx_default_profile_reactions,
)
from fleetsim.simulator.des import EventPump
from fleetsim.simulator.link import Link
from fleetsim.simulator.run import station_config
from fleetsim.simulator.scenario import Scenario
from fleetsim.simulator.station import Station
from fleetsim.simulator.station.ev_driver import ev_arrives
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import open_memory_link
from fleetsim.simulator.world import World

START = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
#: The --profiles day: full power at night, lower in the morning and evening peaks.
DAILY_PROFILE = TxDefaultProfilePush(
    [
        (0, 11_000.0),
        (7 * 3600, 7_400.0),
        (10 * 3600, 11_000.0),
        (17 * 3600, 3_700.0),
        (21 * 3600, 7_400.0),
        (23 * 3600, 11_000.0),
    ]
)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _idle_day(evs: int, plug_in: bool, profiles: bool = False) -> dict[str, float]:
    stations_count = evs // 2
    scenario = Scenario.model_validate(
        {
            "name": "idle",
            "start": START.isoformat(),
            "stations": {
                "count": stations_count,
                "heartbeat_interval_s": 86_400,
                "evses": [{"max_power_w": 11_000}, {"max_power_w": 11_000}],
            },
            "sites": [{"name": "car-park", "arrivals_per_evse_per_day": 0}],
            "grid": {"sigma_hz": 0},
        }
    )
    clock = SimClock(START)
    clock.start()
    stats = RunStats()
    reactions = tx_default_profile_reactions(DAILY_PROFILE if profiles else None)
    csms = Csms(
        CsmsConfig(heartbeat_interval_s=86_400, record_messages=False, reactions=reactions),
        clock=clock.epoch_s,
    )
    config = station_config(scenario)
    stations = {
        index: Station(scenario.stations.station_id(index), index, config, clock, stats)
        for index in scenario.stations.station_indices
    }
    pump = EventPump(clock)
    catalogue = load_catalogue()
    world = World(scenario, clock, pump, stations, catalogue)
    model = catalogue["vw-id3-pro-58kwh"]

    def connect(station: Station) -> AbstractAsyncContextManager[Link]:
        return open_memory_link(
            station.id, csms.attach, station.handle, spawn=station.spawn, observer=stats
        )

    result: dict[str, float] = {}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump.run)
        for station in stations.values():
            station.device_model.changed[
                ("SampledDataCtrlr", None, None, None, "TxUpdatedInterval", None)
            ] = "0"
            await nursery.start(station.run, connect)
        world.start()
        for station in stations.values():
            await station.wait_synced()
        if plug_in:
            for station in stations.values():
                for evse in station.evses:
                    ev_arrives(station, evse, _idle_ev(model, clock.sim_now()))
        await clock.sleep(3600)  # every EV plugs in, authorizes and finds itself full
        idle = sum(
            1
            for station in stations.values()
            for evse in station.evses
            if evse.transaction is not None and evse.transaction.charging_state == "SuspendedEV"
        )
        profiled = csms.statistics().pushes.get("tx_default_profile_set", 0)
        if profiles and profiled != len(stations):
            raise SystemExit(f"only {profiled} of {len(stations)} stations took the profile")
        trio_stats = trio.lowlevel.current_statistics()
        messages_before = stats.messages_sent + stats.messages_received
        steps_before = pump.steps
        cpu_before = _cpu_s()
        await clock.sleep(24 * 3600)
        result = {
            "idle_evs": idle,
            "cpu_s_per_idle_day": _cpu_s() - cpu_before,
            "messages_during_idle_day": stats.messages_sent
            + stats.messages_received
            - messages_before,
            "simpy_steps_during_idle_day": pump.steps - steps_before,
            "tasks": trio_stats.tasks_living,
        }
        nursery.cancel_scope.cancel()
    return result


def _idle_ev(model: Any, now_s: float) -> EvArrival:
    return EvArrival(
        arrival_s=now_s,
        model=model,
        soc_start=0.8,
        target_soc=0.8,
        min_soc=0.2,
        departure_s=now_s + 7 * 86_400,
        id_token="IDLE",
        id_token_type="ISO14443",
        id_token_first=False,
        uses_iso15118_20=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evs", type=int, default=10_000)
    parser.add_argument(
        "--stations", type=int, default=None, help="stations of two EVSEs (overrides --evs)"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--profiles",
        action="store_true",
        help="every station gets a daily TxDefaultProfile of six periods after boot",
    )
    args = parser.parse_args()
    if args.stations is not None:
        args.evs = 2 * args.stations
    runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for number in range(1, args.runs + 1):
        for plug_in in (False, True):
            result = trio.run(
                _idle_day,
                args.evs,
                plug_in,
                args.profiles,
                clock=MockClock(autojump_threshold=0),
            )
            runs[plug_in].append(result)
            print(
                f"run {number} {'with' if plug_in else 'without'} EVs: "
                f"{result['idle_evs']:.0f} idle EVs, "
                f"{result['cpu_s_per_idle_day'] * 1000:.1f} ms CPU over 24 simulated hours, "
                f"{result['messages_during_idle_day']:.0f} messages, "
                f"{result['simpy_steps_during_idle_day']:.0f} simpy steps, "
                f"{result['tasks']:.0f} trio tasks"
            )
    with_ms = statistics.median(r["cpu_s_per_idle_day"] for r in runs[True]) * 1000
    without_ms = statistics.median(r["cpu_s_per_idle_day"] for r in runs[False]) * 1000
    print(
        f"median of {args.runs}: {with_ms:.1f} ms CPU per simulated day with {args.evs} idle EVs"
        f"{' under daily profiles' if args.profiles else ''}, "
        f"{without_ms:.1f} ms without them (the stations' heartbeats): the EVs add "
        f"{with_ms - without_ms:.1f} ms"
    )


if __name__ == "__main__":
    main()
