"""Property-based: 2,000 generated frames thrown at running stations over a memory link.

Each example boots a station against the embedded CSMS, then a tap on the CSMS's end of the
connection sends the station generated frames, each followed by a valid GetVariables probe.
The station must answer every frame that could be a CALL before it answers the probe, with a
valid OCPP-J frame (`fuzz_frames.check_answer`); it must answer the probe; and afterwards it
must still answer the CSMS's GetVariables and send the Heartbeat a TriggerMessage asks for, on
the same connection, still Accepted.  Both OCPP versions are tried.
"""

from __future__ import annotations

import orjson
import trio
from hypothesis import given
from hypothesis import strategies as st
from trio.testing import MockClock

from fleetsim.ev_models import load_catalogue
from fleetsim.simulator.clock import SimClock
from fleetsim.simulator.csms import Csms, CsmsConfig
from fleetsim.simulator.des import EventPump
from fleetsim.simulator.link import TextChannel
from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.run import station_config
from fleetsim.simulator.station import Station
from fleetsim.simulator.stats import RunStats
from fleetsim.simulator.transport import open_memory_link
from fleetsim.simulator.world import World
from tests.helpers import STATION_ID, T0, one_station_scenario
from tests.ocpp.fuzz_frames import (
    FRAMES,
    GET_VARIABLES,
    check_answer,
    fuzz_settings,
    may_go_unanswered,
    readable_head,
)

FRAMES_PER_EXAMPLE = 50
EXAMPLES = 40  # 2,000 frames
WAIT_S = 600  # simulated seconds; MockClock jumps over them


class TapChannel:
    """The CSMS's end of the connection, with a tap: the test may send the station frames of
    its own, and while `capturing` the station's answers (CALLRESULT, CALLERROR) go to the test
    instead of the CSMS, which has no CALL of its own in flight then."""

    def __init__(self, inner: TextChannel) -> None:
        self.inner = inner
        self.capturing = False
        self.answers_in, self.answers = trio.open_memory_channel[str](100)

    async def send_text(self, text: str) -> None:
        await self.inner.send_text(text)

    async def receive_text(self) -> str | bytes:
        while True:
            text = await self.inner.receive_text()
            if self.capturing and orjson.loads(text)[0] in (3, 4):
                await self.answers_in.send(text if isinstance(text, str) else text.decode())
                continue
            return text

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _throw(version: OcppVersion, frames: list[str | bytes]) -> None:
    built = one_station_scenario(ocpp_version=version)
    clock = SimClock(T0, 1.0)
    clock.start()
    csms = Csms(CsmsConfig(), clock=clock.epoch_s)
    stats = RunStats()
    station = Station(STATION_ID, 1, station_config(built), clock, stats)
    pump = EventPump(clock)
    world = World(built, clock, pump, {1: station}, load_catalogue(built.ev_fleet.extra_models))
    taps: list[TapChannel] = []

    async def serve(station_id: str, channel: TextChannel, ocpp_version: OcppVersion) -> None:
        tap = TapChannel(channel)
        taps.append(tap)
        await csms.attach(station_id, tap, ocpp_version)

    def connect(s: Station):  # type: ignore[no-untyped-def]
        return open_memory_link(
            s.id, serve, s.handle, spawn=s.spawn, observer=stats, ocpp_version=version
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump.run)
        await nursery.start(station.run, connect)
        world.start()
        with trio.fail_after(WAIT_S):
            await station.wait_synced()
        tap = taps[-1]
        tap.capturing = True
        for number, text in enumerate(frames):
            probe_id = f"probe-{number}"
            await tap.inner.send_text(text)  # type: ignore[arg-type]
            await tap.inner.send_text(
                orjson.dumps([2, probe_id, "GetVariables", GET_VARIABLES]).decode()
            )
            replies: list[str] = []
            with trio.fail_after(WAIT_S):
                while True:
                    answer = await tap.answers.receive()
                    if orjson.loads(answer)[1] == probe_id:
                        break
                    replies.append(answer)
            check_answer(
                orjson.dumps([2, probe_id, "GetVariables", GET_VARIABLES]).decode(), answer
            )
            assert len(replies) <= 1, (text, replies)
            if replies:
                check_answer(text, replies[0])
            else:
                assert may_go_unanswered(text), f"no answer to {text!r}"
        tap.capturing = False
        with trio.fail_after(WAIT_S):
            answer = await csms.call(STATION_ID, "GetVariables", GET_VARIABLES)
            assert answer["getVariableResult"][0]["attributeStatus"] == "Accepted"
            seen = csms.station(STATION_ID).messages_received
            trigger = await csms.call(
                STATION_ID, "TriggerMessage", {"requestedMessage": "Heartbeat"}
            )
            assert trigger["status"] == "Accepted"
            await csms.wait_for_message(STATION_ID, "Heartbeat", since=seen)
        assert csms.station(STATION_ID).connections == 1
        assert station.registration == "Accepted"
        # Every frame that is not even a JSON array with a type and an id is counted.
        unreadable = sum(readable_head(text) is None for text in frames)
        assert sum(stats.malformed_frames_by_kind.values()) >= unreadable
        nursery.cancel_scope.cancel()


def test_a_running_station_answers_every_generated_frame_and_goes_on() -> None:
    thrown = 0

    @fuzz_settings(EXAMPLES)
    @given(
        version=st.sampled_from(["2.1", "2.0.1"]),
        frames=st.lists(FRAMES, min_size=FRAMES_PER_EXAMPLE, max_size=FRAMES_PER_EXAMPLE),
    )
    def throw(version: OcppVersion, frames: list[str | bytes]) -> None:
        nonlocal thrown
        trio.run(_throw, version, frames, clock=MockClock(autojump_threshold=0))
        thrown += len(frames)

    throw()
    assert thrown >= 2_000
