"""A CSMS that takes connections and never answers: CALLs time out and are counted, the
station retries its boot, reconnects after drops, heartbeats on, keeps its transaction events,
and neither its tasks nor its per-station state grow over many simulated hours.

The CSMS here is a loopback test CSMS on an in-memory link that reads every frame and answers
none (or, for the heartbeat case, only the first BootNotification).  The station's link times
its CALLs out through a `CallDeadlines` sweeper, as a WebSocket fleet does, on trio's MockClock:
twelve simulated hours take a second of wall time.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.ev_models import load_catalogue
from fleetsim.simulator.clock import SimClock
from fleetsim.simulator.des import EventPump
from fleetsim.simulator.link import Link, TextChannel
from fleetsim.simulator.metrics import walk_trio_tasks
from fleetsim.simulator.ocpp import LinkClosed, OcppVersion, RpcSession, schema_set
from fleetsim.simulator.ocpp.actions import CSMS_INITIATED
from fleetsim.simulator.run import station_config
from fleetsim.simulator.station import Station
from fleetsim.simulator.station.blocks.provisioning import BOOT_RETRY_S
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import CallDeadlines, RpcLink
from fleetsim.simulator.transport.memory import memory_channel_pair
from fleetsim.simulator.world import World

from .helpers import T0, busy_site, one_station_scenario

CALL_TIMEOUT_S = 30.0
HOUR_S = 3600.0
#: The sweeper's resolution: a CALL times out between its timeout and this much later.
SWEEP_S = 0.5
VERSIONS: tuple[OcppVersion, ...] = ("2.1", "2.0.1")
TEST_EV_MODELS = one_station_scenario().ev_fleet.extra_models


@dataclass
class SilentCsms:
    """Accepts every connection, reads every frame, answers no CALL -- except, with
    `accept_first_boot`, the first BootNotification (a CSMS that goes silent after it)."""

    accept_first_boot: bool = False
    #: (trio time, action, payload) of every CALL received, in order.
    calls: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    #: trio time of each connection opened.
    connections: list[float] = field(default_factory=list)

    async def serve(self, station_id: str, channel: TextChannel, version: OcppVersion) -> None:
        self.connections.append(trio.current_time())
        try:
            while True:
                frame = json.loads(await channel.receive_text())
                if frame[0] != 2:
                    continue
                self.calls.append((trio.current_time(), frame[2], frame[3]))
                if self.accept_first_boot and frame[2] == "BootNotification":
                    self.accept_first_boot = False
                    answer = {"status": "Accepted", "interval": 300, "currentTime": T0.isoformat()}
                    await channel.send_text(json.dumps([3, frame[1], answer]))
        except LinkClosed:
            pass

    def times(self, action: str) -> list[float]:
        return [at for at, name, _ in self.calls if name == action]


@dataclass
class Run:
    station: Station
    stats: RunStats
    deadlines: CallDeadlines
    links: list[RpcLink]


@asynccontextmanager
async def silent_run(
    csms: SilentCsms, version: OcppVersion, arrivals_per_evse_per_day: float = 6
) -> AsyncIterator[Run]:
    """One station on a busy site (an EV every few hours), connected to `csms`."""
    scenario = one_station_scenario(
        busy_site(
            dwell_s=2 * HOUR_S,
            soc_start=0.2,
            target_soc=0.8,
            arrivals_per_evse_per_day=arrivals_per_evse_per_day,
        ),
        ocpp_version=version,
    )
    clock = SimClock(T0, 1.0)
    clock.start()
    stats = RunStats()
    station = Station("CP00001", 1, station_config(scenario), clock, stats)
    pump = EventPump(clock)
    world = World(scenario, clock, pump, {1: station}, load_catalogue(TEST_EV_MODELS))
    deadlines = CallDeadlines(SWEEP_S)
    links: list[RpcLink] = []

    @asynccontextmanager
    async def connect(s: Station) -> AsyncIterator[Link]:
        station_end, csms_end = memory_channel_pair()
        link = RpcLink(
            station_end,
            RpcSession(schema_set(version), CSMS_INITIATED),
            s.handle,
            spawn=s.spawn,
            call_timeout_s=CALL_TIMEOUT_S,
            observer=stats,
            peer_name=s.id,
            deadlines=deadlines,
        )
        links.append(link)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(csms.serve, s.id, csms_end, version)
            nursery.start_soon(link.run)
            try:
                yield link
            finally:
                await link.aclose()
                nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(deadlines.run)
        nursery.start_soon(pump.run)
        await nursery.start(station.run, connect)
        world.start()
        yield Run(station, stats, deadlines, links)
        nursery.cancel_scope.cancel()


@dataclass
class Sample:
    """What one station holds at one moment, for the leak checks."""

    tasks: int
    deadlines_pending: int
    turn_waiting: int
    abandoned_ids: int
    queued_events: int


def sample(run: Run) -> Sample:
    link = run.links[-1]
    return Sample(
        tasks=walk_trio_tasks(),
        deadlines_pending=len(run.deadlines._pending),
        turn_waiting=link._call_turn.waiting,
        abandoned_ids=len(link.session._abandoned),
        queued_events=len(run.station.tx_queue),
    )


async def sample_hourly(run: Run, hours: int, each_hour: Any = None) -> list[Sample]:
    samples = []
    for hour in range(hours):
        await trio.sleep(HOUR_S)
        if each_hour is not None:
            each_hour(hour)
        samples.append(sample(run))
    return samples


def assert_bounded(samples: list[Sample], warm_up: int = 2) -> None:
    """After the warm-up, nothing per station grows: tasks stay within the few an EV visit and
    a pending CALL start and stop; one CALL at most is in flight and nothing queues for it."""
    settled = samples[warm_up:]
    tasks = [s.tasks for s in settled]
    assert max(tasks) - min(tasks) <= 4, tasks
    assert max(tasks) <= samples[warm_up].tasks + 4, tasks
    assert all(s.deadlines_pending <= 1 for s in samples), samples
    assert all(s.turn_waiting <= 2 for s in samples), samples
    assert all(s.abandoned_ids <= 16 for s in samples), samples


def assert_queue_kept(queue: list[dict[str, Any]]) -> None:
    """The queued TransactionEvents: each once, all offline, in seqNo order without a gap."""
    by_transaction: dict[str, list[int]] = {}
    for event in queue:
        assert event["offline"] is True
        by_transaction.setdefault(event["transactionInfo"]["transactionId"], []).append(
            event["seqNo"]
        )
    for seq_nos in by_transaction.values():
        assert seq_nos == list(range(seq_nos[0], seq_nos[0] + len(seq_nos))), seq_nos
    assert by_transaction, "no transaction happened: the test proves nothing about the queue"


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_csms_that_never_answers_gets_boot_retries_and_nothing_leaks(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    csms = SilentCsms()
    async with silent_run(csms, version) as run:
        samples = await sample_hourly(run, 12)
        station = run.station

        # B01.FR.08: nothing but BootNotification before an Accepted boot, ever.
        assert {action for _, action, _ in csms.calls} == {"BootNotification"}
        boots = csms.times("BootNotification")
        # Each boot times out after csms.call_timeout_s (within the sweeper's resolution), and
        # the next follows BOOT_RETRY_S later: never earlier, so no flood (B02.FR.04/07).
        gaps = [later - earlier for earlier, later in itertools.pairwise(boots)]
        assert gaps, boots
        for gap in gaps:
            assert CALL_TIMEOUT_S + BOOT_RETRY_S <= gap <= CALL_TIMEOUT_S + BOOT_RETRY_S + SWEEP_S
        assert len(boots) >= 12 * HOUR_S // (CALL_TIMEOUT_S + BOOT_RETRY_S + SWEEP_S)
        # Every one that timed out is counted as a timeout; at most the last is still waiting.
        counted = run.stats.calls["BootNotification"]
        assert counted.timeouts == counted.count
        assert len(boots) - 1 <= counted.timeouts <= len(boots)
        assert station.state == "booting" and station.registration != "Accepted"
        assert len(csms.connections) == 1  # the connection stays open: nothing to reconnect

        # The transactions that happened meanwhile are kept, not lost and not doubled.
        assert_queue_kept(station.tx_queue)
        assert run.stats.transaction_events_dropped == 0
        assert_bounded(samples)


@pytest.mark.parametrize("version", VERSIONS)
async def test_dropped_connections_to_a_silent_csms_reconnect_and_boot_at_once(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    csms = SilentCsms()
    async with silent_run(csms, version) as run:
        station = run.station

        def drop(hour: int) -> None:
            assert station.drop_connection()

        samples = await sample_hourly(run, 12, drop)
        # Every drop is followed by a new connection (after the RetryBackOff wait), whose
        # first CALL is a BootNotification: a station never accepted boots again at once.
        await trio.sleep(HOUR_S)
        assert len(csms.connections) == 13
        assert run.stats.connection_attempts_by_outcome == {"ok": 13}
        for opened in csms.connections:
            first = min(at for at in csms.times("BootNotification") if at >= opened)
            assert first - opened < 1.0
        counted = run.stats.calls["BootNotification"]
        # A boot cut short by a drop ends "closed", not as a timeout; every other timed out.
        assert counted.timeouts + counted.errors == counted.count
        assert counted.errors <= 12
        assert_queue_kept(station.tx_queue)
        assert_bounded(samples)
        # The links the drops closed hold nothing: no CALL waiting, no deadline kept.
        for link in run.links[:-1]:
            assert link.closed and not link.call_in_flight
        assert len(run.deadlines._pending) <= 1


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_csms_gone_silent_after_the_boot_gets_heartbeats_and_dropped_events(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    csms = SilentCsms(accept_first_boot=True)
    async with silent_run(csms, version) as run:
        samples = await sample_hourly(run, 12)
        station = run.station
        assert station.registration == "Accepted"
        beats = csms.times("Heartbeat")
        # HeartbeatInterval (300 s from the boot's answer) after the last one timed out, or
        # one call timeout more when the Heartbeat had to wait for a TransactionEvent in
        # flight (one CALL at a time).
        gaps = [later - earlier for earlier, later in itertools.pairwise(beats)]
        assert len(beats) >= 12 * HOUR_S // (300 + 2 * CALL_TIMEOUT_S + SWEEP_S) - 2
        for gap in gaps:
            assert 300 <= gap <= 300 + 2 * (CALL_TIMEOUT_S + SWEEP_S) + 1, gaps
        usual = 300 + CALL_TIMEOUT_S
        assert sum(usual <= gap <= usual + SWEEP_S + 1 for gap in gaps) >= len(gaps) * 3 // 4
        heartbeats = run.stats.calls["Heartbeat"]
        assert heartbeats.count >= len(beats) - 1 and heartbeats.timeouts == heartbeats.count
        # TransactionEvents are tried MessageAttempts times (3), then dropped and counted (E13).
        events = csms.times("TransactionEvent")
        assert events, "no transaction happened"
        assert run.stats.transaction_events_dropped >= len(events) // 3 - 1
        transaction_events = run.stats.calls["TransactionEvent"]
        assert transaction_events.timeouts == transaction_events.count
        assert_bounded(samples)
        assert len(csms.connections) == 1
