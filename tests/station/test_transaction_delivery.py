"""E11-E13: every TransactionEvent reaches the CSMS exactly once, in order, through any number of
dropped connections; one the CSMS refuses or never answers is retried per MessageAttempts and
MessageAttemptInterval, then dropped and counted.

The drop test puts a cutter between the stations and the embedded CSMS: it cuts connections at
random (seeded) moments of simulated time, right after a TransactionEvent arrives (so the CSMS
has it but the station never hears back), and right after the CSMS answered one.  From the
frames it saw it then checks, per transaction: every event the station made was acknowledged
exactly once; an event was only ever sent again when the copy before it went unanswered on a
connection that was then cut; all copies of an event are the same; seqNo runs from 0 without a
gap; `offline` is true exactly for the events made while the station was offline; the Ended
event comes last.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import orjson
import pytest
import trio
from trio.testing import MockClock

from fleetsim.ev_models import load_catalogue
from fleetsim.simulator.clock import SimClock
from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.des import EventPump
from fleetsim.simulator.link import TextChannel
from fleetsim.simulator.ocpp import ErrorCode, LinkClosed, OcppVersion, RpcError
from fleetsim.simulator.run import station_config
from fleetsim.simulator.station import Station
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import open_memory_link
from fleetsim.simulator.world import World
from tests.helpers import STATION_ID, T0, busy_site, one_station_scenario, station_on_memory_link

STATIONS = 5
TRANSACTIONS = 200
#: Chances, per TransactionEvent, that the cutter cuts the connection right after it arrives
#: and right after the CSMS answered it; and the mean simulated seconds between timed cuts.
CUT_ON_ARRIVAL = 0.04
CUT_AFTER_ANSWER = 0.04
MEAN_S_BETWEEN_CUTS = 600.0

#: (transactionId, seqNo): one TransactionEvent.
Key = tuple[str, int]


class RecordingStation(Station):
    """A station that notes, for each TransactionEvent it makes, whether it was online then."""

    made: dict[Key, bool]

    async def send_transaction_event(self, payload: dict[str, Any]) -> None:
        key = (payload["transactionInfo"]["transactionId"], payload["seqNo"])
        assert key not in self.made, f"{key} was made twice"
        self.made[key] = self.online
        await super().send_transaction_event(payload)


class Cutter:
    """Sits on the CSMS's end of every connection: records what passes and cuts connections."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        #: Per station, per connection: ("call", id, payload) and ("answer", id) in order.
        self.log: dict[str, list[list[tuple[Any, ...]]]] = defaultdict(list)
        self.open: dict[str, CutChannel] = {}
        self.cuts = 0
        self.cutting = True

    async def cut(self, channel: CutChannel) -> None:
        if self.open.get(channel.station_id) is channel:
            del self.open[channel.station_id]
        if not channel.cut:
            channel.cut = True
            self.cuts += 1
            await channel.inner.aclose()

    async def cut_at_random_moments(self, clock: SimClock) -> None:
        while True:
            await trio.sleep(clock.trio_duration(self.rng.expovariate(1 / MEAN_S_BETWEEN_CUTS)))
            if self.cutting and self.open:
                station_id = self.rng.choice(sorted(self.open))
                await self.cut(self.open[station_id])


class CutChannel:
    """One connection's CSMS end, as the cutter sees it."""

    def __init__(self, cutter: Cutter, station_id: str, inner: TextChannel) -> None:
        self.cutter = cutter
        self.station_id = station_id
        self.inner = inner
        self.cut = False
        self.frames: list[tuple[Any, ...]] = []
        self.actions: dict[str, str] = {}
        cutter.log[station_id].append(self.frames)
        cutter.open[station_id] = self

    async def receive_text(self) -> str | bytes:
        text = await self.inner.receive_text()
        frame = orjson.loads(text)
        if frame[0] == 2:
            self.frames.append(("call", frame[1], frame[2], frame[3]))
            self.actions[frame[1]] = frame[2]
            cutter = self.cutter
            if (
                frame[2] == "TransactionEvent"
                and cutter.cutting
                and cutter.rng.random() < CUT_ON_ARRIVAL
            ):
                await cutter.cut(self)
                raise LinkClosed("cut on arrival")
        return text

    async def send_text(self, text: str) -> None:
        frame = orjson.loads(text)
        if frame[0] not in (3, 4):
            await self.inner.send_text(text)
            return
        # Noted before it is sent: once in the channel the station may read it at once.
        self.frames.append(("answer", frame[1], frame[0]))
        try:
            await self.inner.send_text(text)
        except LinkClosed:
            self.frames.pop()  # cut before it went: the station never gets it
            raise
        cutter = self.cutter
        if (
            self.actions.get(frame[1]) == "TransactionEvent"
            and cutter.cutting
            and cutter.rng.random() < CUT_AFTER_ANSWER
        ):
            await cutter.cut(self)

    async def aclose(self) -> None:
        if self.cutter.open.get(self.station_id) is self:
            del self.cutter.open[self.station_id]
        await self.inner.aclose()


def _check_station(station: RecordingStation, connections: list[list[tuple[Any, ...]]]) -> int:
    """Check one station's TransactionEvents as the CSMS saw them; return how many were sent
    again (after a copy that went unanswered)."""
    copies: dict[Key, list[tuple[int, bool, Mapping[str, Any]]]] = defaultdict(list)
    acknowledged_order: list[Key] = []
    for number, frames in enumerate(connections):
        answered = {frame[1] for frame in frames if frame[0] == "answer" and frame[2] == 3}
        calls = [frame for frame in frames if frame[0] == "call"]
        for position, (_, message_id, action, payload) in enumerate(calls):
            if action != "TransactionEvent":
                continue
            key = (payload["transactionInfo"]["transactionId"], payload["seqNo"])
            acknowledged = message_id in answered
            if not acknowledged:
                # Unanswered: the station waits for the answer, so nothing may follow it on
                # this connection, which must have been cut.
                assert position == len(calls) - 1, f"{key} unanswered but the station went on"
            else:
                acknowledged_order.append(key)
            copies[key].append((number, acknowledged, payload))
    resent = 0
    for key, sent in copies.items():
        assert [acked for _, acked, _ in sent] == [False] * (len(sent) - 1) + [True], (
            f"{key}: acknowledged {sum(acked for _, acked, _ in sent)} times in {len(sent)} copies"
        )
        assert all(payload == sent[0][2] for _, _, payload in sent), f"{key} changed when resent"
        resent += len(sent) - 1
    # Nothing lost: every event made was acknowledged, and nothing else was.
    assert set(copies) == set(station.made), set(copies) ^ set(station.made)
    by_transaction: dict[str, list[int]] = defaultdict(list)
    for transaction_id, seq_no in acknowledged_order:
        by_transaction[transaction_id].append(seq_no)
    ongoing = {evse.transaction.id for evse in station.evses if evse.transaction is not None}
    for transaction_id, seq_nos in by_transaction.items():
        assert seq_nos == list(range(len(seq_nos))), f"{transaction_id}: seqNos {seq_nos}"
        types = [copies[(transaction_id, n)][-1][2]["eventType"] for n in seq_nos]
        assert types[0] == "Started"
        if transaction_id in ongoing:
            assert "Ended" not in types
        else:
            assert types[-1] == "Ended" and types.count("Ended") == 1, (transaction_id, types)
    for key, sent in copies.items():
        assert sent[-1][2].get("offline", False) is not station.made[key], (
            f"{key}: offline={sent[-1][2].get('offline')} but made while "
            f"{'online' if station.made[key] else 'offline'}"
        )
    return resent


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
async def test_drop_test_every_event_arrives_exactly_once_in_order(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    site = busy_site(dwell_s=600, soc_start=0.2, target_soc=0.9, arrivals_per_evse_per_day=96)
    built = one_station_scenario(
        {**site, "stations": {"count": STATIONS}}, ocpp_version=version, seed=11
    )
    config = dataclasses.replace(
        station_config(built),
        meter_interval_s=300,
        retry_backoff_wait_minimum_s=60,
        retry_backoff_random_range_s=120,
    )
    clock = SimClock(T0, 1.0)
    clock.start()
    csms = Csms(CsmsConfig(), clock=clock.epoch_s)
    stats = RunStats()
    cutter = Cutter(seed=14)
    stations: dict[int, RecordingStation] = {}
    for index in range(1, STATIONS + 1):
        station = RecordingStation(f"CP{index:05d}", index, config, clock, stats)
        station.made = {}
        stations[index] = station
    pump = EventPump(clock)
    world = World(built, clock, pump, dict(stations), load_catalogue(built.ev_fleet.extra_models))

    async def serve(station_id: str, channel: TextChannel, ocpp_version: OcppVersion) -> None:
        await csms.attach(station_id, CutChannel(cutter, station_id, channel), ocpp_version)

    def connect(s: Station):  # type: ignore[no-untyped-def]
        return open_memory_link(
            s.id, serve, s.handle, spawn=s.spawn, observer=stats, ocpp_version=version
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump.run)
        for station in stations.values():
            await nursery.start(station.run, connect)
        world.start()
        nursery.start_soon(cutter.cut_at_random_moments, clock)
        with trio.fail_after(7 * 24 * 3600):
            while stats.transactions_ended_acknowledged < TRANSACTIONS:
                await trio.sleep(60)
            cutter.cutting = False
            while any(station.tx_queue or not station.online for station in stations.values()):
                await trio.sleep(1)
        resent = sum(
            _check_station(station, cutter.log[station.id]) for station in stations.values()
        )
        nursery.cancel_scope.cancel()
    assert stats.transaction_events_dropped == 0
    # The test is only worth something if it cut a lot, resent, and queued offline.
    # (seed 14: 122 cuts, 39 events sent again, 88 made offline)
    assert cutter.cuts >= 50, cutter.cuts
    assert resent >= 10, resent
    assert stats.transaction_events_queued_offline >= 40, stats.transaction_events_queued_offline


# -- retried per MessageAttempts / MessageAttemptInterval, then dropped --------------------------


async def _set(csms: Csms, variable: str, value: int) -> None:
    answer = await csms.call(
        STATION_ID,
        "SetVariables",
        {
            "setVariableData": [
                {
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": variable, "instance": "TransactionEvent"},
                    "attributeValue": str(value),
                }
            ]
        },
    )
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
@pytest.mark.parametrize(("refusals", "delivered"), [(0, True), (3, True), (4, False), (9, False)])
async def test_a_refused_event_is_retried_per_the_variables_then_dropped_and_counted(
    autojump_clock: MockClock, version: OcppVersion, refusals: int, delivered: bool
) -> None:
    """E13: with MessageAttempts 4 and MessageAttemptInterval 7 s, a Started event the CSMS
    answers with CALLERROR `refusals` times is sent again 7, 14, 21 s after the failures, and
    dropped after the fourth; the events behind it go out in order either way."""
    attempts_s: list[float] = []
    clocks: list[SimClock] = []

    def refuse_started(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        if payload["eventType"] == "Started":
            attempts_s.append(clocks[0].sim_now())
            if len(attempts_s) <= refusals:
                raise RpcError(ErrorCode.INTERNAL_ERROR, "database is down")
        return {}

    config = CsmsConfig(response_overrides={"TransactionEvent": refuse_started})
    scenario = busy_site(dwell_s=1800, soc_start=0.2, target_soc=0.8)
    async with station_on_memory_link(
        csms_config=config, scenario=scenario, ocpp_version=version
    ) as (station, csms):
        clocks.append(station.clock)
        with trio.fail_after(60):
            await _set(csms, "MessageAttempts", 4)
            await _set(csms, "MessageAttemptInterval", 7)
        with trio.fail_after(6 * 3600):
            updated = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Updated"
            )
        dropped = station.stats.transaction_events_dropped
        acknowledged_started = station.stats.transactions_started_acknowledged
    assert len(attempts_s) == min(refusals + 1, 4)
    gaps_s = [later - earlier for earlier, later in itertools.pairwise(attempts_s)]
    assert gaps_s == pytest.approx([7 * n for n in range(1, len(attempts_s))])
    assert dropped == (0 if delivered else 1)
    assert acknowledged_started == (1 if delivered else 0)
    assert updated["seqNo"] == 1  # nothing renumbered


class _SilentTap:
    """The CSMS's end of a connection that swallows the first `silent` TransactionEvents:
    the CSMS never sees them, so they are never answered."""

    def __init__(self, inner: TextChannel, silent: int, swallowed: list[float], clock: Any):
        self.inner = inner
        self.silent = silent
        self.swallowed = swallowed
        self.clock = clock

    async def receive_text(self) -> str | bytes:
        while True:
            text = await self.inner.receive_text()
            frame = orjson.loads(text)
            if frame[0] == 2 and frame[2] == "TransactionEvent" and self.silent > 0:
                self.silent -= 1
                self.swallowed.append(self.clock.sim_now())
                continue
            return text

    async def send_text(self, text: str) -> None:
        await self.inner.send_text(text)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize(("silent", "delivered"), [(2, True), (3, False)])
async def test_an_event_never_answered_is_retried_after_its_timeout_then_dropped(
    autojump_clock: MockClock, silent: int, delivered: bool
) -> None:
    """E13: no answer at all counts as a failed attempt too (after the CALL's timeout); with
    the default MessageAttempts (3) the third silence drops the event."""
    scenario = busy_site(dwell_s=1800, soc_start=0.2, target_soc=0.8)
    built = one_station_scenario(scenario)
    clock = SimClock(T0, 1.0)
    clock.start()
    csms = Csms(CsmsConfig(), clock=clock.epoch_s)
    stats = RunStats()
    station = Station(STATION_ID, 1, station_config(built), clock, stats)
    pump = EventPump(clock)
    world = World(built, clock, pump, {1: station}, load_catalogue(built.ev_fleet.extra_models))
    swallowed: list[float] = []

    async def serve(station_id: str, channel: TextChannel, ocpp_version: OcppVersion) -> None:
        await csms.attach(station_id, _SilentTap(channel, silent, swallowed, clock), ocpp_version)

    def connect(s: Station):  # type: ignore[no-untyped-def]
        return open_memory_link(s.id, serve, s.handle, spawn=s.spawn, observer=stats)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump.run)
        await nursery.start(station.run, connect)
        world.start()
        with trio.fail_after(6 * 3600):
            updated = await csms.wait_for_message(
                STATION_ID, "TransactionEvent", lambda p: p["eventType"] == "Updated"
            )
        nursery.cancel_scope.cancel()
    timeout_s = station.config.message_timeout_s
    gaps_s = [later - earlier for earlier, later in itertools.pairwise(swallowed)]
    # Each retry follows the timeout plus MessageAttemptInterval (60 s) times the attempt.
    assert gaps_s == pytest.approx([timeout_s + 60 * n for n in range(1, len(swallowed))], abs=1.0)
    assert stats.transaction_events_dropped == (0 if delivered else 1)
    started = csms.station(STATION_ID).messages
    assert started is not None
    started_seen = [
        m for m in started if m.action == "TransactionEvent" and m.payload["seqNo"] == 0
    ]
    assert len(started_seen) == (1 if delivered else 0)
    assert updated["seqNo"] == 1


async def test_a_retry_waiting_through_a_reconnect_goes_out_on_the_new_connection(
    autojump_clock: MockClock,
) -> None:
    """A refused Ended event waits MessageAttemptInterval (60 s) for its next attempt; when the
    connection drops and comes back meanwhile, the attempt goes out on the new connection at
    its time, not only when the station next makes an event (the next EV, hours later)."""
    attempts_s: list[float] = []
    clocks: list[SimClock] = []
    refused = trio.Event()

    def refuse_first_ended(station_id: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        if payload["eventType"] == "Ended":
            attempts_s.append(clocks[0].sim_now())
            if len(attempts_s) == 1:
                refused.set()
                raise RpcError(ErrorCode.INTERNAL_ERROR, "database is down")
        return {}

    config = dataclasses.replace(
        station_config(one_station_scenario()),
        meter_interval_s=1800,
        retry_backoff_wait_minimum_s=5,
        retry_backoff_random_range_s=0,
    )
    csms_config = CsmsConfig(response_overrides={"TransactionEvent": refuse_first_ended})
    scenario = busy_site(dwell_s=1200, soc_start=0.2, target_soc=0.9, arrivals_per_evse_per_day=2)
    async with station_on_memory_link(config, csms_config, scenario) as (station, csms):
        clocks.append(station.clock)
        with trio.fail_after(7 * 24 * 3600):
            await refused.wait()
        await csms.disconnect(STATION_ID)
        with trio.fail_after(30):
            await csms.wait_disconnected(STATION_ID)
            await csms.wait_connected(STATION_ID)
        with trio.fail_after(120):
            while len(attempts_s) < 2:
                await trio.sleep(1)
        assert station.stats.transactions_ended_acknowledged == 1
        assert not station.tx_queue
    assert attempts_s[1] - attempts_s[0] == pytest.approx(60, abs=2)
